// Package secrets loads the secrets Broadsheet's Lambda functions need at
// cold start: the key that signs reader tokens, from the environment when
// set there (sam local, tests) and otherwise from SSM Parameter Store.
package secrets

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/broadsheet-news/broadsheet/internal/token"
)

// Environment variables SigningKey reads.
const (
	// SigningKeyEnv holds the signing key itself, as hex. For `sam local`
	// and tests only: in AWS the key lives in SSM, not in the function's
	// configuration.
	SigningKeyEnv = "BROADSHEET_SIGNING_KEY"
	// SigningKeyParamEnv names the SSM parameter (a SecureString) that
	// holds the signing key as hex.
	SigningKeyParamEnv = "BROADSHEET_SIGNING_KEY_PARAM"
)

// SigningKey returns the token signing key: the hex in BROADSHEET_SIGNING_KEY
// when set, which makes no AWS call, else the hex value of the SSM
// parameter named by BROADSHEET_SIGNING_KEY_PARAM, read with decryption
// with cfg's region, credentials and HTTP client, at the endpoint
// AWS_ENDPOINT_URL_SSM or AWS_ENDPOINT_URL names when set (see ssm.go).
// An error SSM answers with is an *SSMError. Surrounding white space is
// ignored. The key must hold at
// least token.KeySize bytes. Errors never include the key or any part of
// it.
func SigningKey(ctx context.Context, getenv func(string) string, cfg aws.Config) ([]byte, error) {
	if v := getenv(SigningKeyEnv); v != "" {
		return decode(SigningKeyEnv, v)
	}
	name := getenv(SigningKeyParamEnv)
	if name == "" {
		return nil, fmt.Errorf("signing key: set %s to the SSM parameter holding it (or %s to the key, for local runs)", SigningKeyParamEnv, SigningKeyEnv)
	}
	value, err := getParameter(ctx, getenv, cfg, name)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return decode("SSM parameter "+name, value)
}

// decode reads a hex key from source, saying what is wrong without
// repeating any of it.
func decode(source, v string) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(v))
	switch {
	case errors.Is(err, hex.ErrLength):
		return nil, fmt.Errorf("signing key in %s: odd number of hex digits", source)
	case err != nil:
		return nil, fmt.Errorf("signing key in %s: not hex", source)
	case len(key) < token.KeySize:
		return nil, fmt.Errorf("signing key in %s: %d bytes, want at least %d", source, len(key), token.KeySize)
	}
	return key, nil
}
