package newsroom

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// Authenticate returns the editor token a secret belongs to.
// EUNAUTHORIZED for a missing or unknown secret.
func (s *Service) Authenticate(ctx context.Context, secret string) (*newsletter.EditorToken, error) {
	unauthorized := newsletter.Errorf(newsletter.EUNAUTHORIZED, "A valid editor token is required.")
	if secret == "" || len(secret) > 256 {
		return nil, unauthorized
	}
	hash := token.HashEditorSecret(secret)
	t, err := s.store.EditorTokenByHash(ctx, hash)
	switch {
	case newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
		return nil, unauthorized
	case err != nil:
		return nil, fmt.Errorf("authenticate: %w", err)
	case subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) != 1:
		return nil, unauthorized
	}
	return t, nil
}

// CreateEditorToken makes an editor token and returns its secret, which is
// shown this once: only its hash is kept. No scopes means every scope.
func (s *Service) CreateEditorToken(ctx context.Context, name string, scopes []string) (string, *newsletter.EditorToken, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 || clean(name, 100) != name {
		return "", nil, newsletter.Errorf(newsletter.EINVALID, "A token needs a name of one line, at most 100 characters.")
	}
	if len(scopes) == 0 {
		scopes = []string{newsletter.ScopeEdit, newsletter.ScopeSend}
	}
	for _, sc := range scopes {
		if sc != newsletter.ScopeEdit && sc != newsletter.ScopeSend {
			return "", nil, newsletter.Errorf(newsletter.EINVALID, "Unknown scope %q; scopes are edit and send.", clean(sc, 20))
		}
	}
	secret, hash, err := token.NewEditorSecret()
	if err != nil {
		return "", nil, fmt.Errorf("create editor token: %w", err)
	}
	t := &newsletter.EditorToken{ID: newID(), Name: name, Hash: hash, Scopes: slices.Compact(slices.Sorted(slices.Values(scopes))), CreatedAt: s.cfg.Now()}
	if err := s.store.CreateEditorToken(ctx, t); err != nil {
		return "", nil, fmt.Errorf("create editor token: %w", err)
	}
	return secret, t, nil
}

// EditorTokens lists editor tokens (never their secrets).
func (s *Service) EditorTokens(ctx context.Context) ([]*newsletter.EditorToken, error) {
	ts, err := s.store.EditorTokens(ctx)
	return ts, wrap("editor tokens", err)
}

// EditorSessionTTL is how long a console sign-in lasts.
const EditorSessionTTL = 12 * time.Hour

// StartEditorSession signs an editor in to the console with the secret of
// an editor token and returns the session value for the cookie, with its
// expiry. The session names the token by its hash and carries a random
// nonce, so that each sign-in is a new session. EUNAUTHORIZED as
// Authenticate.
func (s *Service) StartEditorSession(ctx context.Context, secret string) (session string, t *newsletter.EditorToken, expires time.Time, err error) {
	if t, err = s.Authenticate(ctx, secret); err != nil {
		return "", nil, time.Time{}, err
	}
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", nil, time.Time{}, fmt.Errorf("editor session: %w", err)
	}
	expires = s.cfg.Now().Add(EditorSessionTTL)
	return s.signer.Sign(token.EditorSession, t.Hash+"."+hex.EncodeToString(nonce[:]), expires), t, expires, nil
}

// EditorSession returns the editor token a console session belongs to.
// The token is read again each time, so revoking it ends its sessions.
// EUNAUTHORIZED for a malformed, forged or expired session, or a revoked
// token.
func (s *Service) EditorSession(ctx context.Context, session string) (*newsletter.EditorToken, error) {
	ended := newsletter.Errorf(newsletter.EUNAUTHORIZED, "Your session has ended. Please sign in again.")
	id, err := s.signer.Verify(session, token.EditorSession, s.cfg.Now())
	if err != nil {
		return nil, ended
	}
	hash, _, ok := strings.Cut(id, ".")
	if !ok {
		return nil, ended
	}
	t, err := s.store.EditorTokenByHash(ctx, hash)
	switch {
	case newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
		return nil, ended
	case err != nil:
		return nil, fmt.Errorf("editor session: %w", err)
	}
	return t, nil
}

// RevokeEditorToken deletes the editor token with the given name or ID, so
// that its secret and every console session signed in with it stop working
// on their next request. It returns the revoked token. ENOTFOUND for no
// such token; ECONFLICT when a name belongs to more than one token (revoke
// by ID then).
func (s *Service) RevokeEditorToken(ctx context.Context, nameOrID string) (*newsletter.EditorToken, error) {
	nameOrID = strings.TrimSpace(nameOrID)
	ts, err := s.store.EditorTokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("revoke editor token: %w", err)
	}
	var match []*newsletter.EditorToken
	for _, t := range ts {
		if t.ID == nameOrID {
			match = []*newsletter.EditorToken{t}
			break
		}
		if t.Name == nameOrID {
			match = append(match, t)
		}
	}
	switch len(match) {
	case 0:
		return nil, newsletter.Errorf(newsletter.ENOTFOUND, "No editor token is named %q.", clean(nameOrID, 100))
	case 1:
	default:
		return nil, newsletter.Errorf(newsletter.ECONFLICT, "%d tokens are named %q; revoke one by its ID (broadsheet token list).", len(match), clean(nameOrID, 100))
	}
	if err := s.store.DeleteEditorToken(ctx, match[0].ID); err != nil {
		if newsletter.ErrorCode(err) == newsletter.ENOTFOUND {
			return nil, err
		}
		return nil, fmt.Errorf("revoke editor token %s: %w", match[0].ID, err)
	}
	return match[0], nil
}
