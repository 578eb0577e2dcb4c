package secrets

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
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SSM GetParameter, spoken directly: a SigV4-signed POST in the awsJson1.1
// protocol, made with the SDK's core (credentials, signer, HTTP client).
// Not the SDK's SSM client: importing github.com/aws/aws-sdk-go-v2/service/ssm
// costs about 1.25 MB in every bootstrap that imports it, whatever it calls,
// as its schemas package runs initialisation the linker cannot drop, and
// that alone put the api bootstrap over 16 MB. One call at cold start does
// not need the rest of it.

// Limits of one GetParameter.
const (
	// ssmTimeout bounds the whole call, retries included, unless the
	// caller's context ends sooner: a cold start must not hang on SSM
	// (Lambda gives initialisation 10 seconds).
	ssmTimeout = 8 * time.Second
	// ssmAttemptTimeout bounds one attempt, so that a connection that
	// hangs leaves time to try again.
	ssmAttemptTimeout = 3 * time.Second
	// ssmAttempts is how many times a call is tried when SSM throttles,
	// fails with a 5xx, or cannot be reached.
	ssmAttempts = 3
	// ssmBackoff is the wait before the second attempt; it doubles, with
	// jitter, before each next one.
	ssmBackoff = 100 * time.Millisecond
	// ssmMaxResponse bounds what is read of an answer: a parameter holds
	// at most 8 KB.
	ssmMaxResponse = 1 << 20
)

// SSMError is an error SSM answered with, such as ParameterNotFound or
// AccessDeniedException.
type SSMError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Code is the error's type without its namespace, such as
	// "ParameterNotFound"; empty when the answer names none.
	Code string
	// Message is SSM's explanation, which may be empty.
	Message string
}

// Error says what SSM answered.
func (e *SSMError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.StatusCode)
	}
	if e.Message == "" {
		return fmt.Sprintf("SSM %s (HTTP %d)", code, e.StatusCode)
	}
	return fmt.Sprintf("SSM %s (HTTP %d): %s", code, e.StatusCode, e.Message)
}

// retryable reports whether trying again may succeed: SSM throttled the
// call or failed on its side.
func (e *SSMError) retryable() bool {
	return e.StatusCode >= 500 || e.Code == "ThrottlingException" || e.Code == "Throttling"
}

// getParameter returns the value of the SSM parameter name, decrypted.
// Errors name the parameter but never carry its value.
func getParameter(ctx context.Context, getenv func(string) string, cfg aws.Config, name string) (string, error) {
	endpoint, err := ssmEndpoint(getenv, cfg)
	if err != nil {
		return "", fmt.Errorf("get SSM parameter %s: %w", name, err)
	}
	if cfg.Credentials == nil {
		return "", fmt.Errorf("get SSM parameter %s: no AWS credentials", name)
	}
	body, err := json.Marshal(struct {
		Name           string
		WithDecryption bool
	}{name, true})
	if err != nil {
		return "", fmt.Errorf("get SSM parameter %s: %w", name, err)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: ssmAttemptTimeout}
	}
	ctx, cancel := context.WithTimeout(ctx, ssmTimeout)
	defer cancel()

	delay := ssmBackoff
	for attempt := 1; ; attempt++ {
		value, again, err := getParameterOnce(ctx, client, cfg, endpoint, body)
		if err == nil {
			return value, nil
		}
		if !again || attempt == ssmAttempts || ctx.Err() != nil {
			return "", fmt.Errorf("get SSM parameter %s: %w", name, err)
		}
		wait := delay/2 + rand.N(delay/2+1)
		delay *= 2
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("get SSM parameter %s: %v, then %w", name, err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// getParameterOnce makes one signed GetParameter request. again reports
// whether an error is one that trying again may mend: no credentials yet,
// no answer, throttling or a 5xx.
func getParameterOnce(ctx context.Context, client aws.HTTPClient, cfg aws.Config, endpoint string, body []byte) (value string, again bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, ssmAttemptTimeout)
	defer cancel()
	// Retrieve per attempt: the provider caches, and refreshes what expires.
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return "", true, fmt.Errorf("AWS credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ssm", cfg.Region, time.Now()); err != nil {
		return "", false, fmt.Errorf("sign: %w", err)
	}
	res, err := client.Do(req)
	if err != nil {
		return "", true, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, ssmMaxResponse))
	if err != nil {
		return "", true, fmt.Errorf("read answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		e := ssmError(res, raw)
		return "", e.retryable(), e
	}
	var out struct {
		Parameter *struct{ Value *string }
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		// The answer may hold the value: say nothing of its content.
		return "", false, errors.New("answer is not GetParameter's JSON")
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return "", false, errors.New("parameter has no value")
	}
	return *out.Parameter.Value, false, nil
}

// ssmError reads an awsJson1.1 error answer: the type in the body's
// __type (or code), else in the X-Amzn-ErrorType header, with any
// namespace ("com.amazonaws.ssm#") or suffix (":http://...") removed.
func ssmError(res *http.Response, raw []byte) *SSMError {
	var body struct {
		Type         string `json:"__type"`
		Code         string `json:"code"`
		Message      string `json:"message"`
		MessageUpper string `json:"Message"`
	}
	_ = json.Unmarshal(raw, &body) // a body that is not JSON leaves the status alone
	code := body.Type
	if code == "" {
		code = body.Code
	}
	if code == "" {
		code = res.Header.Get("X-Amzn-ErrorType")
	}
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	msg := body.Message
	if msg == "" {
		msg = body.MessageUpper
	}
	return &SSMError{StatusCode: res.StatusCode, Code: code, Message: msg}
}

// ssmEndpoint returns the URL GetParameter is posted to: the endpoint
// AWS_ENDPOINT_URL_SSM names, else AWS_ENDPOINT_URL, else the config's
// base endpoint, else SSM's public endpoint in cfg.Region, which the
// request is signed for in every case. Like the SDK,
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true ignores the configured ones.
//
// FIPS and dual-stack endpoints (AWS_USE_FIPS_ENDPOINT,
// AWS_USE_DUALSTACK_ENDPOINT) are not handled: that takes the SDK's
// endpoint rules, which come with the SSM client this file exists to
// avoid (1.25 MB per bootstrap, measured). A deployment that needs them
// sets AWS_ENDPOINT_URL_SSM.
func ssmEndpoint(getenv func(string) string, cfg aws.Config) (string, error) {
	region := cfg.Region
	switch {
	case region == "":
		return "", errors.New("no AWS region")
	case strings.ContainsAny(region, "/?#@:. "):
		return "", fmt.Errorf("AWS region %q is not a region name", region)
	}
	if !strings.EqualFold(strings.TrimSpace(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")), "true") {
		for _, u := range []string{getenv("AWS_ENDPOINT_URL_SSM"), getenv("AWS_ENDPOINT_URL"), aws.ToString(cfg.BaseEndpoint)} {
			if u = strings.TrimSpace(u); u != "" {
				return strings.TrimRight(u, "/") + "/", nil
			}
		}
	}
	if strings.HasPrefix(region, "cn-") {
		return "https://ssm." + region + ".amazonaws.com.cn/", nil
	}
	return "https://ssm." + region + ".amazonaws.com/", nil
}
