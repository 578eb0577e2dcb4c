// Package awsenv builds what every Lambda function takes from the
// environment Lambda gives it: the aws.Config its SDK clients are made
// from, its JSON logger and its DynamoDB store. It is the part of the
// wiring that the feedback function, which is not built by package
// awsapp, shares with the others.
//
// Config stands in for config.LoadDefaultConfig. That loader's chain of
// credential sources (shared files, SSO, web identity, containers, IMDS)
// links the STS, SSO, SSO OIDC and Sign-In clients and the shared-config
// parser, about 1.9 MB of each bootstrap, with initialisation every cold
// start pays, for sources a function never uses: Lambda puts the role's
// credentials, the region and everything else in environment variables.
// Config reads those variables as LoadDefaultConfig does (the SDK's own
// names and values) and hands the service clients the per-service
// endpoint and FIPS and dual-stack settings through aws.Config's
// ConfigSources, which is where the clients look for them.
package awsenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"

	"github.com/broadsheet-news/broadsheet/internal/dynamo"
)

const (
	// EnvTable names the DynamoDB table: every function.
	EnvTable = "BROADSHEET_TABLE"
	// EnvLogLevel is the application log level Lambda sets from the
	// function's LoggingConfig (DEBUG, INFO, WARN, ERROR); INFO when unset.
	EnvLogLevel = "AWS_LAMBDA_LOG_LEVEL"
)

// Store returns the DynamoDB store on the table BROADSHEET_TABLE names,
// with cfg's client.
func Store(cfg aws.Config, getenv func(string) string) (*dynamo.Store, error) {
	table := strings.TrimSpace(getenv(EnvTable))
	if table == "" {
		return nil, fmt.Errorf("%s is required", EnvTable)
	}
	return dynamo.New(dynamodb.NewFromConfig(cfg), table), nil
}

// NewLogger returns a JSON logger to w at the level AWS_LAMBDA_LOG_LEVEL
// names, INFO by default: what CloudWatch reads best, and what a function
// whose LoggingConfig says LogFormat: JSON must write.
func NewLogger(getenv func(string) string, w io.Writer) *slog.Logger {
	var level slog.Level
	if v := getenv(EnvLogLevel); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			level = slog.LevelInfo
		}
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// Config returns the AWS configuration in the environment getenv reads,
// with the SDK's names and meanings:
//
//   - the region, AWS_REGION or else AWS_DEFAULT_REGION (required);
//   - the credentials, AWS_ACCESS_KEY_ID (or AWS_ACCESS_KEY),
//     AWS_SECRET_ACCESS_KEY (or AWS_SECRET_KEY), AWS_SESSION_TOKEN and
//     AWS_ACCOUNT_ID (required: Lambda always sets the first three);
//   - endpoints, AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> (such
//     as AWS_ENDPOINT_URL_DYNAMODB), unless
//     AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true; AWS_USE_FIPS_ENDPOINT,
//     AWS_USE_DUALSTACK_ENDPOINT and AWS_ENABLE_ENDPOINT_DISCOVERY;
//   - AWS_MAX_ATTEMPTS, AWS_RETRY_MODE, AWS_DEFAULTS_MODE (not auto,
//     which probes IMDS), AWS_ACCOUNT_ID_ENDPOINT_MODE,
//     AWS_REQUEST_CHECKSUM_CALCULATION, AWS_RESPONSE_CHECKSUM_VALIDATION,
//     AWS_SDK_UA_APP_ID and AWS_CA_BUNDLE.
//
// Shared config and credentials files, profiles and the other credential
// sources are not read. A value the SDK would refuse is an error.
func Config(getenv func(string) string) (aws.Config, error) {
	e := env{getenv}
	cfg := aws.Config{
		Region:                      first(getenv, "AWS_REGION", "AWS_DEFAULT_REGION"),
		Logger:                      logging.NewStandardLogger(os.Stderr),
		ConfigSources:               []any{e},
		AppID:                       getenv("AWS_SDK_UA_APP_ID"),
		DefaultsMode:                aws.DefaultsModeLegacy,
		AccountIDEndpointMode:       aws.AccountIDEndpointModePreferred,
		RequestChecksumCalculation:  aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation:  aws.ResponseChecksumValidationWhenSupported,
		RequestMinCompressSizeBytes: 10240, // the SDK's default
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("AWS region: AWS_REGION is unset")
	}
	creds := aws.Credentials{
		AccessKeyID:     first(getenv, "AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"),
		SecretAccessKey: first(getenv, "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY"),
		SessionToken:    getenv("AWS_SESSION_TOKEN"),
		AccountID:       getenv("AWS_ACCOUNT_ID"),
		Source:          "EnvConfigCredentials", // what the SDK's loader names them
	}
	if !creds.HasKeys() {
		return aws.Config{}, errors.New("AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are unset (Lambda sets them from the function's role; no other source is read)")
	}
	cfg.Credentials = credentials.StaticCredentialsProvider{Value: creds}

	ignore, _, err := e.GetIgnoreConfiguredEndpoints(context.Background())
	if err != nil {
		return aws.Config{}, err
	}
	if v := getenv("AWS_ENDPOINT_URL"); v != "" && !ignore {
		cfg.BaseEndpoint = aws.String(v)
	}
	// The settings the clients read from ConfigSources: refused here,
	// where the error can be returned, rather than ignored there.
	if _, _, err := e.GetUseFIPSEndpoint(context.Background()); err != nil {
		return aws.Config{}, err
	}
	if _, _, err := e.GetUseDualStackEndpoint(context.Background()); err != nil {
		return aws.Config{}, err
	}
	if _, _, err := e.GetEnableEndpointDiscovery(context.Background()); err != nil {
		return aws.Config{}, err
	}

	if v := getenv("AWS_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return aws.Config{}, fmt.Errorf("AWS_MAX_ATTEMPTS=%s: want a whole number from 1", v)
		}
		cfg.RetryMaxAttempts = n
	}
	if v := getenv("AWS_RETRY_MODE"); v != "" {
		if cfg.RetryMode, err = aws.ParseRetryMode(v); err != nil {
			return aws.Config{}, fmt.Errorf("AWS_RETRY_MODE: %w", err)
		}
	}
	if v := getenv("AWS_DEFAULTS_MODE"); v != "" {
		if !cfg.DefaultsMode.SetFromString(v) || cfg.DefaultsMode == aws.DefaultsModeAuto {
			return aws.Config{}, fmt.Errorf("AWS_DEFAULTS_MODE=%s: want standard, in-region, cross-region, mobile or legacy", v)
		}
	}
	if v := getenv("AWS_ACCOUNT_ID_ENDPOINT_MODE"); v != "" {
		switch m := aws.AccountIDEndpointMode(strings.ToLower(v)); m {
		case aws.AccountIDEndpointModePreferred, aws.AccountIDEndpointModeRequired, aws.AccountIDEndpointModeDisabled:
			cfg.AccountIDEndpointMode = m
		default:
			return aws.Config{}, fmt.Errorf("AWS_ACCOUNT_ID_ENDPOINT_MODE=%s: want preferred, required or disabled", v)
		}
	}
	switch v := getenv("AWS_REQUEST_CHECKSUM_CALCULATION"); strings.ToLower(v) {
	case "", "when_supported":
	case "when_required":
		cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	default:
		return aws.Config{}, fmt.Errorf("AWS_REQUEST_CHECKSUM_CALCULATION=%s: want when_supported or when_required", v)
	}
	switch v := getenv("AWS_RESPONSE_CHECKSUM_VALIDATION"); strings.ToLower(v) {
	case "", "when_supported":
	case "when_required":
		cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	default:
		return aws.Config{}, fmt.Errorf("AWS_RESPONSE_CHECKSUM_VALIDATION=%s: want when_supported or when_required", v)
	}
	if path := getenv("AWS_CA_BUNDLE"); path != "" {
		if cfg.HTTPClient, err = caBundleClient(path); err != nil {
			return aws.Config{}, err
		}
	}
	return cfg, nil
}

// caBundleClient is the SDK's HTTP client trusting only the certificates
// in the PEM file at path, as the SDK's loader makes it.
func caBundleClient(path string) (aws.HTTPClient, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("AWS_CA_BUNDLE %s: no PEM certificate in it", path)
	}
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.RootCAs = pool
	}), nil
}

// ServiceEndpoint returns the base endpoint cfg gives the service whose
// SDK ID is sdkID (such as "Lambda"), as the SDK's clients resolve it:
// AWS_ENDPOINT_URL_<SERVICE> when set, else cfg.BaseEndpoint
// (AWS_ENDPOINT_URL), else "" for the service's public endpoint. It is
// for calls made without the service's client.
func ServiceEndpoint(cfg aws.Config, sdkID string) string {
	for _, s := range cfg.ConfigSources {
		if e, ok := s.(env); ok {
			if ignore, _, _ := e.GetIgnoreConfiguredEndpoints(context.Background()); ignore {
				return ""
			}
			if v, ok, _ := e.GetServiceBaseEndpoint(context.Background(), sdkID); ok {
				return v
			}
		}
	}
	return aws.ToString(cfg.BaseEndpoint)
}

// FIPS reports whether cfg asks for the services' FIPS endpoints
// (AWS_USE_FIPS_ENDPOINT), for calls made without the service's client.
func FIPS(cfg aws.Config) bool {
	for _, s := range cfg.ConfigSources {
		if e, ok := s.(env); ok {
			v, _, _ := e.GetUseFIPSEndpoint(context.Background())
			return v == aws.FIPSEndpointStateEnabled
		}
	}
	return false
}

// DualStack reports whether cfg asks for the services' dual-stack
// endpoints (AWS_USE_DUALSTACK_ENDPOINT), for calls made without the
// service's client.
func DualStack(cfg aws.Config) bool {
	for _, s := range cfg.ConfigSources {
		if e, ok := s.(env); ok {
			v, _, _ := e.GetUseDualStackEndpoint(context.Background())
			return v == aws.DualStackEndpointStateEnabled
		}
	}
	return false
}

// env is the environment as a configuration source of the SDK's clients:
// they find the per-service endpoints, and the FIPS, dual-stack and
// endpoint discovery settings, through these methods (the interfaces of
// the SDK's internal/configsources, which config.EnvConfig implements).
type env struct{ getenv func(string) string }

// GetServiceBaseEndpoint returns AWS_ENDPOINT_URL_<sdkID>, upper case,
// spaces as underscores ("SESv2" reads AWS_ENDPOINT_URL_SESV2).
func (e env) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	v := e.getenv("AWS_ENDPOINT_URL_" + strings.ReplaceAll(strings.ToUpper(sdkID), " ", "_"))
	return v, v != "", nil
}

// GetIgnoreConfiguredEndpoints reads AWS_IGNORE_CONFIGURED_ENDPOINT_URLS.
func (e env) GetIgnoreConfiguredEndpoints(context.Context) (bool, bool, error) {
	return e.boolean("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
}

// GetUseFIPSEndpoint reads AWS_USE_FIPS_ENDPOINT.
func (e env) GetUseFIPSEndpoint(context.Context) (aws.FIPSEndpointState, bool, error) {
	v, ok, err := e.boolean("AWS_USE_FIPS_ENDPOINT")
	switch {
	case !ok || err != nil:
		return aws.FIPSEndpointStateUnset, false, err
	case v:
		return aws.FIPSEndpointStateEnabled, true, nil
	}
	return aws.FIPSEndpointStateDisabled, true, nil
}

// GetUseDualStackEndpoint reads AWS_USE_DUALSTACK_ENDPOINT.
func (e env) GetUseDualStackEndpoint(context.Context) (aws.DualStackEndpointState, bool, error) {
	v, ok, err := e.boolean("AWS_USE_DUALSTACK_ENDPOINT")
	switch {
	case !ok || err != nil:
		return aws.DualStackEndpointStateUnset, false, err
	case v:
		return aws.DualStackEndpointStateEnabled, true, nil
	}
	return aws.DualStackEndpointStateDisabled, true, nil
}

// GetEnableEndpointDiscovery reads AWS_ENABLE_ENDPOINT_DISCOVERY.
func (e env) GetEnableEndpointDiscovery(context.Context) (aws.EndpointDiscoveryEnableState, bool, error) {
	switch v := e.getenv("AWS_ENABLE_ENDPOINT_DISCOVERY"); strings.ToLower(v) {
	case "":
		return aws.EndpointDiscoveryUnset, false, nil
	case "true":
		return aws.EndpointDiscoveryEnabled, true, nil
	case "false":
		return aws.EndpointDiscoveryDisabled, true, nil
	case "auto":
		return aws.EndpointDiscoveryAuto, true, nil
	default:
		return aws.EndpointDiscoveryUnset, false, fmt.Errorf("AWS_ENABLE_ENDPOINT_DISCOVERY=%s: want true, false or auto", v)
	}
}

// boolean reads the variable name as true or false, in any case.
func (e env) boolean(name string) (v, ok bool, err error) {
	switch s := e.getenv(name); {
	case s == "":
		return false, false, nil
	case strings.EqualFold(s, "true"):
		return true, true, nil
	case strings.EqualFold(s, "false"):
		return false, true, nil
	default:
		return false, false, fmt.Errorf("%s=%s: want true or false", name, s)
	}
}

// first returns the first of the variables names that is set.
func first(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := getenv(n); v != "" {
			return v
		}
	}
	return ""
}
