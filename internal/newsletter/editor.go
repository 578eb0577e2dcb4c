package newsletter

import (
	"slices"
	"time"
)

// Editor token scopes.
const (
	ScopeEdit = "edit" // articles, digests (build, preview, test) and subscribers
	ScopeSend = "send" // start sending a digest to readers
)

// EditorToken is an editor's API credential. Only a hash of the secret is
// kept; the secret itself is shown once, when the token is created.
type EditorToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Hash      string    `json:"-"` // hex SHA-256 of the secret
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"createdAt"`
}

// Can reports whether the token carries scope.
func (t *EditorToken) Can(scope string) bool {
	return slices.Contains(t.Scopes, scope)
}
