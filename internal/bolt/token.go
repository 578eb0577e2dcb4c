package bolt

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// tokenRecord is an editor token as stored: EditorToken.Hash is left out
// of the token's JSON so that it never reaches a client, but the store
// must keep it.
type tokenRecord struct {
	newsletter.EditorToken
	Hash string `json:"hash"`
}

// CreateEditorToken stores an editor token. ECONFLICT when its ID or hash
// exists; EINVALID without an ID or a hash.
func (s *Store) CreateEditorToken(ctx context.Context, t *newsletter.EditorToken) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t == nil || t.ID == "" || t.Hash == "" {
		return newsletter.Errorf(newsletter.EINVALID, "Editor token ID and hash are required.")
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, hashes := tx.Bucket(bucketEditorTokens), tx.Bucket(bucketEditorTokensByHash)
		if b.Get([]byte(t.ID)) != nil || hashes.Get([]byte(t.Hash)) != nil {
			return newsletter.Errorf(newsletter.ECONFLICT, "This editor token exists.")
		}
		if err := put(b, t.ID, tokenRecord{EditorToken: *t, Hash: t.Hash}); err != nil {
			return fmt.Errorf("create editor token: %w", err)
		}
		if err := hashes.Put([]byte(t.Hash), []byte(t.ID)); err != nil {
			return fmt.Errorf("create editor token %s: index hash: %w", t.ID, err)
		}
		return nil
	})
}

// EditorTokenByHash returns the token whose secret hashes to hash.
// ENOTFOUND.
func (s *Store) EditorTokenByHash(ctx context.Context, hash string) (*newsletter.EditorToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var t *newsletter.EditorToken
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		id := tx.Bucket(bucketEditorTokensByHash).Get([]byte(hash))
		if id == nil {
			return notFound("Editor token")
		}
		t, err = editorToken(tx, string(id))
		if newsletter.ErrorCode(err) == newsletter.ENOTFOUND {
			return fmt.Errorf("editor token by hash: index names missing token %s", id)
		}
		return err
	})
	return t, err
}

// EditorTokens lists every editor token, oldest first (ties by ID). There
// are a handful, so they are sorted in memory rather than indexed.
func (s *Store) EditorTokens(ctx context.Context) ([]*newsletter.EditorToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*newsletter.EditorToken
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketEditorTokens).ForEach(func(k, v []byte) error {
			var rec tokenRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("list editor tokens: decode %q: %w", k, err)
			}
			t := rec.EditorToken
			t.Hash = rec.Hash
			out = append(out, &t)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *newsletter.EditorToken) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// DeleteEditorToken revokes a token. ENOTFOUND.
func (s *Store) DeleteEditorToken(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		t, err := editorToken(tx, id)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketEditorTokens).Delete([]byte(id)); err != nil {
			return fmt.Errorf("delete editor token %s: %w", id, err)
		}
		hashes := tx.Bucket(bucketEditorTokensByHash)
		if string(hashes.Get([]byte(t.Hash))) == id {
			if err := hashes.Delete([]byte(t.Hash)); err != nil {
				return fmt.Errorf("delete editor token %s: unindex hash: %w", id, err)
			}
		}
		return nil
	})
}

// editorToken reads the token with the ID. ENOTFOUND.
func editorToken(tx *bbolt.Tx, id string) (*newsletter.EditorToken, error) {
	var rec tokenRecord
	if ok, err := get(tx.Bucket(bucketEditorTokens), "editor token", id, &rec); err != nil {
		return nil, err
	} else if !ok {
		return nil, notFound("Editor token")
	}
	t := rec.EditorToken
	t.Hash = rec.Hash
	return &t, nil
}
