package apifunc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/broadsheet-news/broadsheet/internal/awsapp"
	"github.com/broadsheet-news/broadsheet/internal/awsapp/awsenv"
)

// LambdaDispatcher is the api function's newsroom.Dispatcher: it invokes
// the digest function asynchronously (InvocationType Event) with an
// awsapp.DigestInvocation, so that an editor's "send" answers at once and
// the fan-out runs for as long as it needs. Lambda keeps the event and
// retries it; fan-out is idempotent.
//
// It speaks the Lambda API's Invoke itself — a SigV4-signed POST made
// with the SDK's core (credentials, signer) — rather than through the
// SDK's Lambda client: importing that client costs 0.7 MB of every api
// bootstrap and 0.7 MB of allocations in its schemas' initialisation at
// every cold start, for one call that most cold starts never make.
// Like the client, it tries a call up to three times (AWS_MAX_ATTEMPTS)
// when Lambda throttles, fails with a 5xx or cannot be reached; an
// asynchronous invocation that is sent twice fans out once.
type LambdaDispatcher struct {
	// FunctionName is the digest function's name, ARN or partial ARN.
	FunctionName string
	// Endpoint is the Lambda API's base URL, such as
	// "https://lambda.eu-west-1.amazonaws.com".
	Endpoint string
	// Region and Credentials sign the requests.
	Region      string
	Credentials aws.CredentialsProvider
	// HTTPClient makes the requests; nil means a client of its own.
	HTTPClient aws.HTTPClient
	// Attempts is how many times a call is tried; 0 means 3.
	Attempts int
	// Backoff is the wait before the second attempt, doubled with jitter
	// before each next one; 0 means 100 ms.
	Backoff time.Duration
}

// Limits of one Invoke.
const (
	invokeAttemptTimeout = 10 * time.Second
	invokeMaxResponse    = 1 << 20
)

// NewLambdaDispatcher returns the dispatcher that invokes functionName
// with cfg's region, credentials and HTTP client, at the endpoint
// AWS_ENDPOINT_URL_LAMBDA or AWS_ENDPOINT_URL names, else Lambda's public
// endpoint in the region (FIPS or dual-stack when AWS_USE_FIPS_ENDPOINT
// or AWS_USE_DUALSTACK_ENDPOINT say so), as the SDK's client resolves it.
func NewLambdaDispatcher(cfg aws.Config, functionName string) (*LambdaDispatcher, error) {
	endpoint, err := lambdaEndpoint(cfg)
	if err != nil {
		return nil, fmt.Errorf("digest function %s: %w", functionName, err)
	}
	return &LambdaDispatcher{
		FunctionName: functionName,
		Endpoint:     endpoint,
		Region:       cfg.Region,
		Credentials:  cfg.Credentials,
		HTTPClient:   cfg.HTTPClient,
		Attempts:     cfg.RetryMaxAttempts,
	}, nil
}

// partitions are the DNS suffixes of Lambda's public endpoints, plain and
// dual-stack, by the region's prefix (the SDK's partitions.json); the
// first whose prefix matches wins, and a region none matches is in the
// aws partition (amazonaws.com, api.aws), as us-gov- regions are too.
var partitions = []struct{ prefix, dns, dualStack string }{
	{"cn-", "amazonaws.com.cn", "api.amazonwebservices.com.cn"},
	{"eusc-", "amazonaws.eu", "api.amazonwebservices.eu"},
	{"us-isob-", "sc2s.sgov.gov", "api.aws.scloud"},
	{"us-isof-", "csp.hci.ic.gov", "api.aws.hci.ic.gov"},
	{"us-iso-", "c2s.ic.gov", "api.aws.ic.gov"},
	{"eu-isoe-", "cloud.adc-e.uk", "api.cloud-aws.adc-e.uk"},
}

// lambdaEndpoint resolves the Lambda API's base URL from cfg.
func lambdaEndpoint(cfg aws.Config) (string, error) {
	region := cfg.Region
	if region == "" || strings.ContainsAny(region, "/?#@:. ") {
		return "", fmt.Errorf("AWS region %q is not a region name", region)
	}
	fips, dualStack := awsenv.FIPS(cfg), awsenv.DualStack(cfg)
	if u := awsenv.ServiceEndpoint(cfg, "Lambda"); u != "" {
		if fips || dualStack {
			// What the SDK's endpoint rules answer too.
			return "", errors.New("a configured Lambda endpoint cannot be FIPS or dual-stack")
		}
		return strings.TrimRight(u, "/"), nil
	}
	host := "lambda"
	if fips {
		host = "lambda-fips"
	}
	dns, dualStackDNS := "amazonaws.com", "api.aws"
	for _, p := range partitions {
		if strings.HasPrefix(region, p.prefix) {
			dns, dualStackDNS = p.dns, p.dualStack
			break
		}
	}
	if dualStack {
		dns = dualStackDNS
	}
	return "https://" + host + "." + region + "." + dns, nil
}

// LambdaError is an error the Lambda API answered with, such as
// ResourceNotFoundException or TooManyRequestsException.
type LambdaError struct {
	StatusCode int
	Code       string // the error type without namespace or suffix
	Message    string
}

// Error says what Lambda answered.
func (e *LambdaError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.StatusCode)
	}
	if e.Message == "" {
		return fmt.Sprintf("Lambda %s (HTTP %d)", code, e.StatusCode)
	}
	return fmt.Sprintf("Lambda %s (HTTP %d): %s", code, e.StatusCode, e.Message)
}

// retryable reports whether trying again may succeed, as for the SDK's
// standard retryer: throttling, or a failure on Lambda's side.
func (e *LambdaError) retryable() bool {
	switch e.Code {
	case "TooManyRequestsException", "ThrottlingException", "Throttling", "EC2ThrottledException",
		"RequestThrottledException", "RequestLimitExceeded", "RequestTimeout", "RequestTimeoutException":
		return true
	}
	switch e.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Dispatch asks the digest function to fan digestID out.
func (d *LambdaDispatcher) Dispatch(ctx context.Context, digestID string) error {
	payload, err := json.Marshal(awsapp.DigestInvocation{DigestID: digestID})
	if err != nil {
		return fmt.Errorf("dispatch %s: %w", digestID, err)
	}
	if err := d.invoke(ctx, payload); err != nil {
		return fmt.Errorf("dispatch %s: invoke %s: %w", digestID, d.FunctionName, err)
	}
	return nil
}

// invoke makes the Event invocation, trying again while that may help.
func (d *LambdaDispatcher) invoke(ctx context.Context, payload []byte) error {
	if d.Credentials == nil {
		return errors.New("no AWS credentials")
	}
	client := d.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: invokeAttemptTimeout}
	}
	attempts, delay := d.Attempts, d.Backoff
	if attempts <= 0 {
		attempts = 3
	}
	if delay <= 0 {
		delay = 100 * time.Millisecond
	}
	target := d.Endpoint + "/2015-03-31/functions/" + url.PathEscape(d.FunctionName) + "/invocations"
	for attempt := 1; ; attempt++ {
		again, err := d.invokeOnce(ctx, client, target, payload)
		if err == nil {
			return nil
		}
		if !again || attempt >= attempts || ctx.Err() != nil {
			return err
		}
		wait := delay/2 + rand.N(delay/2+1)
		delay *= 2
		select {
		case <-ctx.Done():
			return fmt.Errorf("%v, then %w", err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// invokeOnce makes one signed request. again reports whether its error
// is one that trying again may mend.
func (d *LambdaDispatcher) invokeOnce(ctx context.Context, client aws.HTTPClient, target string, payload []byte) (again bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, invokeAttemptTimeout)
	defer cancel()
	// Retrieve per attempt: a provider that caches refreshes what expires.
	creds, err := d.Credentials.Retrieve(ctx)
	if err != nil {
		return true, fmt.Errorf("AWS credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/octet-stream") // Payload is a blob, as the SDK sends it
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	sum := sha256.Sum256(payload)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "lambda", d.Region, time.Now()); err != nil {
		return false, fmt.Errorf("sign: %w", err)
	}
	res, err := client.Do(req)
	if err != nil {
		var dns *net.DNSError
		if errors.As(err, &dns) && dns.IsNotFound {
			return false, err // a wrong endpoint stays wrong
		}
		return true, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, invokeMaxResponse))
	if err != nil {
		return true, fmt.Errorf("read answer: %w", err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		e := lambdaError(res, raw)
		return e.retryable(), e
	}
	if fe := res.Header.Get("X-Amz-Function-Error"); fe != "" {
		return false, errors.New(fe)
	}
	return false, nil
}

// lambdaError reads a restJson1 error answer: the type in the
// X-Amzn-ErrorType header, else in the body's __type or code, with any
// namespace ("aws.lambda#") or suffix (":http://...") removed.
func lambdaError(res *http.Response, raw []byte) *LambdaError {
	var body struct {
		Type         string `json:"__type"`
		Code         string `json:"code"`
		Message      string `json:"message"`
		MessageUpper string `json:"Message"`
	}
	_ = json.Unmarshal(raw, &body) // a body that is not JSON leaves the status alone
	code := res.Header.Get("X-Amzn-ErrorType")
	if code == "" {
		code = body.Type
	}
	if code == "" {
		code = body.Code
	}
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	msg := body.Message
	if msg == "" {
		msg = body.MessageUpper
	}
	return &LambdaError{StatusCode: res.StatusCode, Code: code, Message: msg}
}
