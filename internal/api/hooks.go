package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/wordpress"
)

// hookResult is the answer to a push: what became of the post.
type hookResult struct {
	Status  string `json:"status"` // created, updated or unchanged
	Article string `json:"article"`
}

// wordpressHook takes a post the site pushes when it is published or
// updated (infra/wordpress/broadsheet-push.php). The request must be
// signed with the shared secret within wordpress.MaxSkew of our clock; a
// bad or stale one gets 401 and changes nothing. A replay of a good one is
// answered 200 "unchanged": the newsroom never takes a revision no newer
// than the one it holds, so a push seen twice, or a post both pushed and
// pulled, is one article and one email.
func (h *handler) wordpressHook(w http.ResponseWriter, r *http.Request) {
	if len(h.wpSecret) == 0 {
		h.writeError(w, r, notFound())
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wordpress.MaxPushBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.writeError(w, r, newsletter.Errorf(newsletter.ETOOLARGE, "The push is over %d bytes.", wordpress.MaxPushBytes))
			return
		}
		h.writeError(w, r, newsletter.Errorf(newsletter.EINVALID, "The request body could not be read."))
		return
	}
	err = wordpress.Verify(h.wpSecret, r.Header.Get(wordpress.TimestampHeader), r.Header.Get(wordpress.SignatureHeader), body, h.now())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	push, err := wordpress.ParsePush(body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	in, err := push.Post.Article(h.svc.Sections())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	a, outcome, err := h.svc.IngestArticle(r.Context(), in)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, http.StatusOK, hookResult{Status: string(outcome), Article: a.ID})
}
