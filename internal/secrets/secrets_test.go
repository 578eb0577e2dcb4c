package secrets_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

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
	targets  []string
	answer   func(w http.ResponseWriter, name string)
}

func (f *fakeSSM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, in)
	f.targets = append(f.targets, r.Header.Get("X-Amz-Target"))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	name, _ := in["Name"].(string)
	f.answer(w, name)
}

func parameter(value string) func(http.ResponseWriter, string) {
	return func(w http.ResponseWriter, name string) {
		fmt.Fprintf(w, `{"Parameter":{"Name":%q,"Type":"SecureString","Value":%q,"Version":3,"ARN":"arn:aws:ssm:us-east-1:111122223333:parameter%s","DataType":"text","LastModifiedDate":1.7e9}}`, name, value, name)
	}
}

func ssmClient(t *testing.T, f *fakeSSM) *ssm.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return ssm.New(ssm.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(srv.URL),
	})
}

func TestSigningKeyFromEnvironment(t *testing.T) {
	f := &fakeSSM{answer: parameter(strings.Repeat("00", 32))}
	got, err := secrets.SigningKey(context.Background(), env(map[string]string{
		secrets.SigningKeyEnv:      " " + hex.EncodeToString(key) + "\n",
		secrets.SigningKeyParamEnv: "/broadsheet/signing-key",
	}), ssmClient(t, f))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("SigningKey = %x, %v; want %x", got, err, key)
	}
	if len(f.requests) != 0 {
		t.Errorf("%d SSM requests, want none when the key is in the environment", len(f.requests))
	}
}

func TestSigningKeyFromSSM(t *testing.T) {
	f := &fakeSSM{answer: parameter(hex.EncodeToString(key) + "\n")}
	got, err := secrets.SigningKey(context.Background(), env(map[string]string{
		secrets.SigningKeyParamEnv: "/broadsheet/prod/signing-key",
	}), ssmClient(t, f))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("SigningKey = %x, %v; want %x", got, err, key)
	}
	if len(f.requests) != 1 {
		t.Fatalf("%d SSM requests, want 1", len(f.requests))
	}
	if f.targets[0] != "AmazonSSM.GetParameter" {
		t.Errorf("X-Amz-Target = %q, want AmazonSSM.GetParameter", f.targets[0])
	}
	if got := f.requests[0]["Name"]; got != "/broadsheet/prod/signing-key" {
		t.Errorf("parameter name = %v, want /broadsheet/prod/signing-key", got)
	}
	if got := f.requests[0]["WithDecryption"]; got != true {
		t.Errorf("WithDecryption = %v, want true", got)
	}
}

func TestSigningKeyParameterNotFound(t *testing.T) {
	f := &fakeSSM{answer: func(w http.ResponseWriter, name string) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"ParameterNotFound","message":""}`)
	}}
	_, err := secrets.SigningKey(context.Background(), env(map[string]string{
		secrets.SigningKeyParamEnv: "/broadsheet/missing",
	}), ssmClient(t, f))
	var notFound *types.ParameterNotFound
	if !errors.As(err, &notFound) || !strings.Contains(err.Error(), "/broadsheet/missing") {
		t.Fatalf("SigningKey error = %v, want ParameterNotFound naming the parameter", err)
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
			got, err := secrets.SigningKey(context.Background(), env(tt.vars), ssmClient(t, f))
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

func TestSigningKeyNoClient(t *testing.T) {
	_, err := secrets.SigningKey(context.Background(), env(map[string]string{secrets.SigningKeyParamEnv: "/k"}), nil)
	if err == nil || !strings.Contains(err.Error(), "no SSM client") {
		t.Fatalf("SigningKey error = %v, want one saying there is no SSM client", err)
	}
}
