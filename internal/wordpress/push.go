package wordpress

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// The headers of a push. The plugin (infra/wordpress/broadsheet-push.php)
// signs each request: the signature is "sha256=" and the lower-case hex
// HMAC-SHA256, keyed with the shared secret, of the timestamp (Unix
// seconds, as sent), a full stop and the raw body.
const (
	TimestampHeader = "X-Broadsheet-Timestamp"
	SignatureHeader = "X-Broadsheet-Signature"
)

// MinSecretLength is the shortest shared secret accepted: 32 characters,
// what `openssl rand -hex 16` prints.
const MinSecretLength = 32

// MaxSkew is how far a push's timestamp may be from the receiver's clock,
// either way: a captured request stops working after it.
const MaxSkew = 5 * time.Minute

// MaxPushBytes bounds a push's body: one post with its embeds is a few
// KB; an excerpt may be long.
const MaxPushBytes = 256 << 10

// Events a push names.
const (
	EventPublish = "publish" // the post went from another status to publish
	EventUpdate  = "update"  // a published post was saved
)

// Push is the body the plugin sends: the event and the post, as the REST
// API would give it with _embed.
type Push struct {
	Event string `json:"event"`
	Post  Post   `json:"post"`
}

// Sign returns the signature header value of a push of body at timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a push's signature and timestamp against now. It returns
// EUNAUTHORIZED, saying which check failed, when either header is
// missing, the timestamp is more than MaxSkew from now, or the signature
// is not the body's. The signature is compared in constant time.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time) error {
	if len(secret) == 0 {
		return errors.New("wordpress: no push secret configured")
	}
	if timestamp == "" || signature == "" {
		return newsletter.Errorf(newsletter.EUNAUTHORIZED, "The request is not signed: send %s and %s.", TimestampHeader, SignatureHeader)
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || strings.TrimLeft(timestamp, "0123456789") != "" {
		return newsletter.Errorf(newsletter.EUNAUTHORIZED, "%s must be Unix seconds.", TimestampHeader)
	}
	if skew := now.Sub(time.Unix(sec, 0)); skew > MaxSkew || skew < -MaxSkew {
		return newsletter.Errorf(newsletter.EUNAUTHORIZED, "The request's timestamp is stale: it must be within %s of the server's clock.", MaxSkew)
	}
	if !hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature)) {
		return newsletter.Errorf(newsletter.EUNAUTHORIZED, "The signature does not match the request.")
	}
	return nil
}

// ParsePush decodes a verified push. EINVALID for a body that is not a
// push of a published post.
func ParsePush(body []byte) (*Push, error) {
	var p Push
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, newsletter.Errorf(newsletter.EINVALID, "The push is not valid JSON: %s.", jsonProblem(err).Error())
	}
	switch {
	case p.Event != EventPublish && p.Event != EventUpdate:
		return nil, newsletter.Errorf(newsletter.EINVALID, "The push's event must be %q or %q.", EventPublish, EventUpdate)
	case p.Post.ID <= 0:
		return nil, newsletter.Errorf(newsletter.EINVALID, "The push carries no post.")
	case p.Post.Status != "" && p.Post.Status != "publish":
		return nil, newsletter.Errorf(newsletter.EINVALID, "Only published posts are taken, not %q.", p.Post.Status)
	case p.Post.Type != "" && p.Post.Type != "post":
		return nil, newsletter.Errorf(newsletter.EINVALID, "Only posts are taken, not %q.", p.Post.Type)
	}
	return &p, nil
}

// jsonProblem describes a JSON decoding error without echoing the input:
// where it went wrong, not what was there.
func jsonProblem(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q has the wrong type", typ.Field)
	}
	return errors.New("malformed JSON")
}
