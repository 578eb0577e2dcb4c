package secrets

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Environment variables WordPressSecret reads: the api function's only.
const (
	// WordPressSecretEnv holds the push secret itself. For `sam local`
	// and tests only, as SigningKeyEnv.
	WordPressSecretEnv = "BROADSHEET_WORDPRESS_SECRET"
	// WordPressSecretParamEnv names the SSM parameter (a SecureString)
	// that holds the secret the WordPress plugin signs pushes with.
	WordPressSecretParamEnv = "BROADSHEET_WORDPRESS_SECRET_PARAM"
)

// minWordPressSecret is the shortest push secret accepted
// (wordpress.MinSecretLength, not imported here to keep this package's
// imports to the SDK's core).
const minWordPressSecret = 32

// WordPressSecret returns the secret the WordPress plugin signs pushes to
// POST /hooks/wordpress with: BROADSHEET_WORDPRESS_SECRET when set, else
// the SSM parameter BROADSHEET_WORDPRESS_SECRET_PARAM names, read as
// SigningKey reads its own. Neither set means the push is off: nil and no
// error. Errors never include the secret.
func WordPressSecret(ctx context.Context, getenv func(string) string, cfg aws.Config) ([]byte, error) {
	v := strings.TrimSpace(getenv(WordPressSecretEnv))
	source := WordPressSecretEnv
	if v == "" {
		name := strings.TrimSpace(getenv(WordPressSecretParamEnv))
		if name == "" {
			return nil, nil
		}
		value, err := getParameter(ctx, getenv, cfg, name)
		if err != nil {
			return nil, fmt.Errorf("wordpress secret: %w", err)
		}
		v, source = strings.TrimSpace(value), "SSM parameter "+name
	}
	if len(v) < minWordPressSecret {
		return nil, fmt.Errorf("wordpress secret in %s: %d characters, want at least %d", source, len(v), minWordPressSecret)
	}
	return []byte(v), nil
}
