package awsenv_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/broadsheet-news/broadsheet/internal/awsapp/awsenv"
)

// lambda is the AWS part of the environment Lambda gives a function.
var lambda = map[string]string{
	"AWS_REGION":            "eu-west-1",
	"AWS_DEFAULT_REGION":    "eu-west-1",
	"AWS_ACCESS_KEY_ID":     "ASIAEXAMPLE",
	"AWS_SECRET_ACCESS_KEY": "secret",
	"AWS_SESSION_TOKEN":     "token",
}

func with(base map[string]string, kv ...string) func(string) string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// environments are those the parity test loads both ways.
var environments = map[string][]string{
	"lambda":                   nil,
	"default region only":      {"AWS_REGION", ""},
	"one endpoint for all":     {"AWS_ENDPOINT_URL", "http://127.0.0.1:4566"},
	"per-service endpoints":    {"AWS_ENDPOINT_URL", "http://127.0.0.1:1", "AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000", "AWS_ENDPOINT_URL_SESV2", "http://127.0.0.1:8005"},
	"configured ones ignored":  {"AWS_ENDPOINT_URL", "http://127.0.0.1:1", "AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"},
	"FIPS and dual-stack":      {"AWS_USE_FIPS_ENDPOINT", "true", "AWS_USE_DUALSTACK_ENDPOINT", "TRUE"},
	"FIPS off":                 {"AWS_USE_FIPS_ENDPOINT", "false"},
	"retries and modes":        {"AWS_MAX_ATTEMPTS", "5", "AWS_RETRY_MODE", "adaptive", "AWS_DEFAULTS_MODE", "in-region"},
	"account and checksums":    {"AWS_ACCOUNT_ID", "111122223333", "AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled", "AWS_REQUEST_CHECKSUM_CALCULATION", "when_required", "AWS_RESPONSE_CHECKSUM_VALIDATION", "WHEN_REQUIRED"},
	"app ID":                   {"AWS_SDK_UA_APP_ID", "broadsheet"},
	"old credential variables": {"AWS_ACCESS_KEY_ID", "", "AWS_SECRET_ACCESS_KEY", "", "AWS_ACCESS_KEY", "AKIDOLD", "AWS_SECRET_KEY", "old"},
	"endpoint discovery":       {"AWS_ENABLE_ENDPOINT_DISCOVERY", "true"},
}

// TestConfigAsLoadDefaultConfig: in each environment, Config and the
// SDK's config.LoadDefaultConfig give the same settings, and the service
// clients the functions build from them resolve the same endpoint options.
func TestConfigAsLoadDefaultConfig(t *testing.T) {
	ctx := context.Background()
	for name, kv := range environments {
		t.Run(name, func(t *testing.T) {
			getenv := with(lambda, kv...)
			// The SDK reads the process environment: give it exactly this one.
			for _, v := range os.Environ() {
				if k, _, _ := strings.Cut(v, "="); strings.HasPrefix(k, "AWS_") {
					t.Setenv(k, "")
				}
			}
			for k, v := range lambda {
				t.Setenv(k, v)
			}
			for i := 0; i+1 < len(kv); i += 2 {
				t.Setenv(kv[i], kv[i+1])
			}
			dir := t.TempDir()
			t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
			t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

			want, err := config.LoadDefaultConfig(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := awsenv.Config(getenv)
			if err != nil {
				t.Fatal(err)
			}
			wantCreds, err := want.Credentials.Retrieve(ctx)
			if err != nil {
				t.Fatal(err)
			}
			gotCreds, err := got.Credentials.Retrieve(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if gotCreds.AccessKeyID != wantCreds.AccessKeyID || gotCreds.SecretAccessKey != wantCreds.SecretAccessKey ||
				gotCreds.SessionToken != wantCreds.SessionToken || gotCreds.AccountID != wantCreds.AccountID {
				t.Errorf("credentials %+v, want %+v", gotCreds, wantCreds)
			}
			type settings struct {
				Region                       string
				BaseEndpoint                 string
				RetryMaxAttempts             int
				RetryMode                    aws.RetryMode
				DefaultsMode                 aws.DefaultsMode
				AccountIDEndpointMode        aws.AccountIDEndpointMode
				RequestChecksum              aws.RequestChecksumCalculation
				ResponseChecksum             aws.ResponseChecksumValidation
				AppID                        string
				MinCompress                  int64
				DynamoDBEndpoint, SESv2, SQS string
				FIPS                         aws.FIPSEndpointState
				DualStack                    aws.DualStackEndpointState
				Discovery                    aws.EndpointDiscoveryEnableState
			}
			of := func(cfg aws.Config) settings {
				d := dynamodb.NewFromConfig(cfg).Options()
				return settings{
					cfg.Region, aws.ToString(cfg.BaseEndpoint), cfg.RetryMaxAttempts, cfg.RetryMode, cfg.DefaultsMode,
					cfg.AccountIDEndpointMode, cfg.RequestChecksumCalculation, cfg.ResponseChecksumValidation, cfg.AppID,
					cfg.RequestMinCompressSizeBytes,
					aws.ToString(d.BaseEndpoint), aws.ToString(sesv2.NewFromConfig(cfg).Options().BaseEndpoint),
					aws.ToString(sqs.NewFromConfig(cfg).Options().BaseEndpoint),
					d.EndpointOptions.UseFIPSEndpoint, d.EndpointOptions.UseDualStackEndpoint, d.EndpointDiscovery.EnableEndpointDiscovery,
				}
			}
			if g, w := of(got), of(want); g != w {
				t.Errorf("settings\n got %+v\nwant %+v", g, w)
			}
		})
	}
}

func TestConfigRefuses(t *testing.T) {
	for name, kv := range map[string][]string{
		"no region":                 {"AWS_REGION", "", "AWS_DEFAULT_REGION", ""},
		"no credentials":            {"AWS_ACCESS_KEY_ID", "", "AWS_SECRET_ACCESS_KEY", ""},
		"no secret":                 {"AWS_SECRET_ACCESS_KEY", ""},
		"attempts not a number":     {"AWS_MAX_ATTEMPTS", "three"},
		"no attempt":                {"AWS_MAX_ATTEMPTS", "0"},
		"unknown retry mode":        {"AWS_RETRY_MODE", "eager"},
		"auto defaults mode":        {"AWS_DEFAULTS_MODE", "auto"},
		"unknown defaults mode":     {"AWS_DEFAULTS_MODE", "fast"},
		"FIPS maybe":                {"AWS_USE_FIPS_ENDPOINT", "yes"},
		"dual-stack maybe":          {"AWS_USE_DUALSTACK_ENDPOINT", "1"},
		"ignore maybe":              {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "y"},
		"discovery maybe":           {"AWS_ENABLE_ENDPOINT_DISCOVERY", "sometimes"},
		"account mode unknown":      {"AWS_ACCOUNT_ID_ENDPOINT_MODE", "always"},
		"request checksum unknown":  {"AWS_REQUEST_CHECKSUM_CALCULATION", "never"},
		"response checksum unknown": {"AWS_RESPONSE_CHECKSUM_VALIDATION", "never"},
		"CA bundle missing":         {"AWS_CA_BUNDLE", filepath.Join(t.TempDir(), "none.pem")},
		"CA bundle holds no PEM":    {"AWS_CA_BUNDLE", writeFile(t, "not a certificate")},
	} {
		if _, err := awsenv.Config(with(lambda, kv...)); err == nil {
			t.Errorf("%s: no error", name)
		} else if strings.Contains(err.Error(), "secret") && name != "no secret" {
			t.Errorf("%s: the error %q repeats a credential", name, err)
		}
	}
}

func writeFile(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServiceEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   []string
		want string
	}{
		{"public", nil, ""},
		{"all", []string{"AWS_ENDPOINT_URL", "http://127.0.0.1:1"}, "http://127.0.0.1:1"},
		{"the service's", []string{"AWS_ENDPOINT_URL", "http://127.0.0.1:1", "AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:2"}, "http://127.0.0.1:2"},
		{"ignored", []string{"AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:2", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"}, ""},
	} {
		cfg, err := awsenv.Config(with(lambda, tc.kv...))
		if err != nil {
			t.Fatal(err)
		}
		if got := awsenv.ServiceEndpoint(cfg, "Lambda"); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	cfg, _ := awsenv.Config(with(lambda, "AWS_USE_FIPS_ENDPOINT", "true"))
	if !awsenv.FIPS(cfg) || awsenv.DualStack(cfg) {
		t.Errorf("AWS_USE_FIPS_ENDPOINT=true: FIPS %v, dual-stack %v; want true, false", awsenv.FIPS(cfg), awsenv.DualStack(cfg))
	}
}

func TestNewLogger(t *testing.T) {
	for level, want := range map[string]bool{"": false, "DEBUG": true, "debug": true, "INFO": false, "nonsense": false} {
		var buf bytes.Buffer
		awsenv.NewLogger(with(nil, awsenv.EnvLogLevel, level), &buf).Debug("hello")
		if got := buf.Len() > 0; got != want {
			t.Errorf("AWS_LAMBDA_LOG_LEVEL=%q: debug line written %v, want %v", level, got, want)
		}
	}
}
