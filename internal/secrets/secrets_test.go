package secrets_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/broadsheet-news/broadsheet/internal/secrets"
)

var key = bytes.Repeat([]byte{0xab, 0x01}, 16) // 32 bytes

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// fakeSSM answers GetParameter in the SSM JSON protocol (awsJson1.1) and
// records the requests.
type fakeSSM struct {
	mu       sync.Mutex
	requests []map[string]any
	received []*http.Request // clones, with bodies
	answer   func(w http.ResponseWriter, r *http.Request, name string)
}

func (f *fakeSSM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	clone := r.Clone(context.Background())
	clone.Body = io.NopCloser(bytes.NewReader(body))
	f.mu.Lock()
	f.requests = append(f.requests, in)
	f.received = append(f.received, clone)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	name, _ := in["Name"].(string)
	f.answer(w, r, name)
}

func (f *fakeSSM) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func parameter(value string) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, _ *http.Request, name string) {
		fmt.Fprintf(w, `{"Parameter":{"Name":%q,"Type":"SecureString","Value":%q,"Version":3,"ARN":"arn:aws:ssm:us-east-1:111122223333:parameter%s","DataType":"text","LastModifiedDate":1.7e9}}`, name, value, name)
	}
}

func ssmError(status int, body string) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, _ *http.Request, _ string) {
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

// Test credentials and region.
const (
	accessKey    = "AKIDTEST"
	secretKey    = "test-secret"
	sessionToken = "test-session-token"
	region       = "eu-west-3"
)

// ssmServer starts f and returns the AWS config and the environment that
// point SigningKey at it, with vars added.
func ssmServer(t *testing.T, f *fakeSSM, vars map[string]string) (aws.Config, func(string) string) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, sessionToken),
		HTTPClient:  srv.Client(),
	}
	all := map[string]string{"AWS_ENDPOINT_URL_SSM": srv.URL}
	maps.Copy(all, vars)
	return cfg, env(all)
}

func TestSigningKeyFromEnvironment(t *testing.T) {
	f := &fakeSSM{answer: parameter(strings.Repeat("00", 32))}
	cfg, getenv := ssmServer(t, f, map[string]string{
		secrets.SigningKeyEnv:      " " + hex.EncodeToString(key) + "\n",
		secrets.SigningKeyParamEnv: "/broadsheet/signing-key",
	})
	got, err := secrets.SigningKey(context.Background(), getenv, cfg)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("SigningKey = %x, %v; want %x", got, err, key)
	}
	if n := f.count(); n != 0 {
		t.Errorf("%d SSM requests, want none when the key is in the environment", n)
	}
}

func TestSigningKeyFromSSM(t *testing.T) {
	f := &fakeSSM{answer: parameter(hex.EncodeToString(key) + "\n")}
	cfg, getenv := ssmServer(t, f, map[string]string{
		secrets.SigningKeyParamEnv: "/broadsheet/prod/signing-key",
	})
	got, err := secrets.SigningKey(context.Background(), getenv, cfg)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("SigningKey = %x, %v; want %x", got, err, key)
	}
	if n := f.count(); n != 1 {
		t.Fatalf("%d SSM requests, want 1", n)
	}
	r := f.received[0]
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		t.Errorf("request %s %s, want POST /", r.Method, r.URL.Path)
	}
	for h, want := range map[string]string{
		"X-Amz-Target":         "AmazonSSM.GetParameter",
		"Content-Type":         "application/x-amz-json-1.1",
		"X-Amz-Security-Token": sessionToken,
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if got := f.requests[0]["Name"]; got != "/broadsheet/prod/signing-key" {
		t.Errorf("parameter name = %v, want /broadsheet/prod/signing-key", got)
	}
	if got := f.requests[0]["WithDecryption"]; got != true {
		t.Errorf("WithDecryption = %v, want true", got)
	}
	checkSigV4(t, r)
}

// checkSigV4 checks that r carries a SigV4 Authorization header for SSM
// in the test region, signing the target, and that its signature is the
// one the SDK's signer computes for the request as received.
func checkSigV4(t *testing.T, r *http.Request) {
	t.Helper()
	auth := r.Header.Get("Authorization")
	date := r.Header.Get("X-Amz-Date")
	signed, err := time.Parse("20060102T150405Z", date)
	if err != nil {
		t.Fatalf("X-Amz-Date %q: %v", date, err)
	}
	scope := fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s/%s/ssm/aws4_request, ", accessKey, signed.Format("20060102"), region)
	if !strings.HasPrefix(auth, scope) {
		t.Fatalf("Authorization = %q, want it to start %q", auth, scope)
	}
	_, rest, _ := strings.Cut(auth, "SignedHeaders=")
	headers, _, _ := strings.Cut(rest, ",")
	names := strings.Split(headers, ";")
	for _, h := range []string{"host", "x-amz-date", "x-amz-target", "content-type", "x-amz-security-token"} {
		if !slices.Contains(names, h) {
			t.Errorf("SignedHeaders %q lacks %s", headers, h)
		}
	}

	// Sign the request as received again, with only the headers the
	// client signed: the signatures agree only if the name, the target and
	// the body reached the server as signed.
	body, _ := io.ReadAll(r.Body)
	again, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range names {
		if h != "host" {
			again.Header.Set(h, r.Header.Get(h))
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey, SessionToken: sessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), "ssm", region, signed); err != nil {
		t.Fatal(err)
	}
	if want := again.Header.Get("Authorization"); auth != want {
		t.Errorf("Authorization = %q, want %q", auth, want)
	}
}

func TestSigningKeySSMErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		code     string
		requests int
	}{
		{"parameter not found", http.StatusBadRequest, `{"__type":"ParameterNotFound","message":""}`, "ParameterNotFound", 1},
		{"namespaced type", http.StatusBadRequest, `{"__type":"com.amazonaws.ssm#ParameterNotFound","message":"no such parameter"}`, "ParameterNotFound", 1},
		{"access denied", http.StatusBadRequest, `{"__type":"AccessDeniedException","Message":"not allowed"}`, "AccessDeniedException", 1},
		{"throttled throughout", http.StatusBadRequest, `{"__type":"ThrottlingException","message":"Rate exceeded"}`, "ThrottlingException", 3},
		{"server error throughout", http.StatusInternalServerError, `{"__type":"InternalServerError"}`, "InternalServerError", 3},
		{"server error, not JSON", http.StatusBadGateway, `<html>bad gateway</html>`, "", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSSM{answer: ssmError(tt.status, tt.body)}
			cfg, getenv := ssmServer(t, f, map[string]string{secrets.SigningKeyParamEnv: "/broadsheet/missing"})
			_, err := secrets.SigningKey(context.Background(), getenv, cfg)
			var api *secrets.SSMError
			if !errors.As(err, &api) {
				t.Fatalf("SigningKey error = %v, want an *SSMError", err)
			}
			if api.Code != tt.code || api.StatusCode != tt.status {
				t.Errorf("SSMError code %q, status %d; want %q, %d", api.Code, api.StatusCode, tt.code, tt.status)
			}
			if !strings.Contains(err.Error(), "/broadsheet/missing") {
				t.Errorf("error %q does not name the parameter", err)
			}
			if n := f.count(); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
		})
	}
}

func TestSigningKeyRetriesThenSucceeds(t *testing.T) {
	answers := []func(http.ResponseWriter, *http.Request, string){
		ssmError(http.StatusInternalServerError, `{"__type":"InternalServerError","message":"try again"}`),
		ssmError(http.StatusBadRequest, `{"__type":"ThrottlingException","message":"Rate exceeded"}`),
		parameter(hex.EncodeToString(key)),
	}
	var n int
	f := &fakeSSM{}
	f.answer = func(w http.ResponseWriter, r *http.Request, name string) {
		answers[n](w, r, name) // ServeHTTP calls are serial: one request at a time
		n++
	}
	cfg, getenv := ssmServer(t, f, map[string]string{secrets.SigningKeyParamEnv: "/k"})
	got, err := secrets.SigningKey(context.Background(), getenv, cfg)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("SigningKey = %x, %v; want %x", got, err, key)
	}
	if n := f.count(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	for i, r := range f.received {
		if r.Header.Get("Authorization") == "" {
			t.Errorf("request %d is not signed", i+1)
		}
	}
}

func TestSigningKeyBoundedByContext(t *testing.T) {
	f := &fakeSSM{answer: func(_ http.ResponseWriter, r *http.Request, _ string) {
		<-r.Context().Done() // never answers
	}}
	cfg, getenv := ssmServer(t, f, map[string]string{secrets.SigningKeyParamEnv: "/k"})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := secrets.SigningKey(ctx, getenv, cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SigningKey error = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("SigningKey took %v with a 300ms context", d)
	}
}

func TestSigningKeyAnswerNotLeaked(t *testing.T) {
	secret := hex.EncodeToString(key)
	f := &fakeSSM{answer: func(w http.ResponseWriter, _ *http.Request, _ string) {
		fmt.Fprintf(w, `{"Parameter":{"Value":"%s"`, secret) // cut short
	}}
	cfg, getenv := ssmServer(t, f, map[string]string{secrets.SigningKeyParamEnv: "/k"})
	_, err := secrets.SigningKey(context.Background(), getenv, cfg)
	if err == nil {
		t.Fatal("SigningKey = nil error, want one for a truncated answer")
	}
	if strings.Contains(err.Error(), secret[:16]) {
		t.Errorf("error %q repeats the key", err)
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d requests, want 1: a 200 answer is not tried again", n)
	}
}

func TestSigningKeyErrors(t *testing.T) {
	short := hex.EncodeToString(key[:31])
	tests := []struct {
		name  string
		vars  map[string]string
		ssm   string // the SSM parameter's value
		want  string // in the error
		leaks string // must not be in the error
	}{
		{"neither set", nil, "", secrets.SigningKeyParamEnv, ""},
		{"env key short", map[string]string{secrets.SigningKeyEnv: short}, "", "31 bytes, want at least 32", short},
		{"env key not hex", map[string]string{secrets.SigningKeyEnv: "zz" + hex.EncodeToString(key)}, "", "not hex", "zz"},
		{"env key odd length", map[string]string{secrets.SigningKeyEnv: hex.EncodeToString(key) + "a"}, "", "odd number", hex.EncodeToString(key)},
		{"SSM key short", map[string]string{secrets.SigningKeyParamEnv: "/k"}, short, "31 bytes, want at least 32", short},
		{"SSM key not hex", map[string]string{secrets.SigningKeyParamEnv: "/k"}, "secret-password-value-that-is-long-enough", "not hex", "secret-password"},
		{"SSM key empty", map[string]string{secrets.SigningKeyParamEnv: "/k"}, "", "0 bytes", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSSM{answer: parameter(tt.ssm)}
			cfg, getenv := ssmServer(t, f, tt.vars)
			got, err := secrets.SigningKey(context.Background(), getenv, cfg)
			if err == nil {
				t.Fatalf("SigningKey = %x, nil; want an error", got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if tt.leaks != "" && strings.Contains(err.Error(), tt.leaks) {
				t.Errorf("error %q repeats the key", err)
			}
		})
	}
}

func TestSigningKeyNoCredentials(t *testing.T) {
	f := &fakeSSM{answer: parameter(hex.EncodeToString(key))}
	cfg, getenv := ssmServer(t, f, map[string]string{secrets.SigningKeyParamEnv: "/k"})
	cfg.Credentials = nil
	_, err := secrets.SigningKey(context.Background(), getenv, cfg)
	if err == nil || !strings.Contains(err.Error(), "no AWS credentials") {
		t.Fatalf("SigningKey error = %v, want one saying there are no AWS credentials", err)
	}
	if n := f.count(); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
}

func TestSSMEndpoint(t *testing.T) {
	tests := []struct {
		name   string
		region string
		vars   map[string]string
		base   string
		want   string // "" for an error
	}{
		{"public", "us-east-1", nil, "", "https://ssm.us-east-1.amazonaws.com/"},
		{"China", "cn-north-1", nil, "", "https://ssm.cn-north-1.amazonaws.com.cn/"},
		{"SSM's own", "us-east-1", map[string]string{"AWS_ENDPOINT_URL_SSM": "http://localhost:4583/", "AWS_ENDPOINT_URL": "http://localhost:4566"}, "", "http://localhost:4583/"},
		{"every service's", "us-east-1", map[string]string{"AWS_ENDPOINT_URL": "http://localhost:4566"}, "", "http://localhost:4566/"},
		{"config's", "us-east-1", nil, "http://localhost:4566", "http://localhost:4566/"},
		{"ignored", "us-east-1", map[string]string{"AWS_ENDPOINT_URL_SSM": "http://localhost:4583", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "", "https://ssm.us-east-1.amazonaws.com/"},
		{"no region", "", map[string]string{"AWS_ENDPOINT_URL_SSM": "http://localhost:4583"}, "", ""},
		{"not a region", "evil.example/x", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := aws.Config{Region: tt.region}
			if tt.base != "" {
				cfg.BaseEndpoint = aws.String(tt.base)
			}
			got, err := secrets.SSMEndpoint(env(tt.vars), cfg)
			if tt.want == "" {
				if err == nil {
					t.Errorf("SSMEndpoint = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("SSMEndpoint = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
