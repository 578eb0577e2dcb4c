// Package outbox is the laptop-mode mailer: instead of sending, it writes
// each message as an .eml file into a folder, where a mail client or a test
// can open it.
package outbox

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
)

// fileTime names files by UTC time to the nanosecond, so they sort in the
// order they were written.
const fileTime = "20060102T150405.000000000Z"

// maxRecipientLen caps the recipient part of a file name.
const maxRecipientLen = 64

// Mailer writes messages into a folder as .eml files. It is safe for
// concurrent use.
type Mailer struct {
	dir string
	// Now returns the current time; tests may replace it.
	Now func() time.Time

	mu sync.Mutex
	// index finds digest emails by ledger key (file name), once Sent has
	// listed the folder; Send adds what it writes after that.
	index map[string]string
}

// New returns a Mailer that writes into dir, creating it (mode 0700) if
// needed.
func New(dir string) (*Mailer, error) {
	if dir == "" {
		return nil, errors.New("outbox: no folder given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create outbox %s: %w", dir, err)
	}
	return &Mailer{dir: dir, Now: time.Now}, nil
}

// Dir returns the folder the Mailer writes into.
func (m *Mailer) Dir() string { return m.dir }

// Send writes msg to <dir>/<UTC time>-<recipient>.eml, mode 0600, and
// returns its Message-ID. A digest email (one tagged with TagDigest and
// TagSubscriber, as the delivery engine tags them) is named
// <UTC time>-<recipient>-<key>.eml instead, where key is derived from the
// two tags, so that Sent can find it. When msg.MessageID is empty one is generated (the
// caller's msg is not changed; the file and the return value carry it). The
// file appears whole or not at all. A message that cannot be built returns
// an error wrapping eml.ErrRejected; any other error means no file was
// written.
func (m *Mailer) Send(ctx context.Context, msg *eml.Message) (messageID string, err error) {
	if msg == nil {
		return "", fmt.Errorf("outbox: nil message: %w", eml.ErrRejected)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("outbox send: %w", err)
	}
	if err := msg.Validate(); err != nil {
		return "", fmt.Errorf("outbox: invalid message: %w: %w", eml.ErrRejected, err)
	}
	out := *msg
	if out.MessageID == "" {
		out.MessageID = eml.NewMessageID(out.From)
	}
	data, err := out.Bytes()
	if err != nil {
		return "", fmt.Errorf("outbox: build message: %w: %w", eml.ErrRejected, err)
	}
	name := sanitize(out.To)
	key := ""
	if d, s := msg.Tags[TagDigest], msg.Tags[TagSubscriber]; d != "" && s != "" {
		key = ledgerKey(d, s)
		name += "-" + key
	}
	file, err := m.write(name, data)
	if err != nil {
		return "", err
	}
	if key != "" {
		m.mu.Lock()
		if m.index != nil {
			m.index[key] = file
		}
		m.mu.Unlock()
	}
	return out.MessageID, nil
}

// write stores data under a new name, which it returns: a temporary file
// is written and synced, then linked to its final name, which never
// replaces an existing file.
func (m *Mailer) write(recipient string, data []byte) (file string, err error) {
	tmp, err := os.CreateTemp(m.dir, ".partial-*")
	if err != nil {
		return "", fmt.Errorf("outbox write: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("outbox write: %w", err)
	}
	for attempt := 0; ; attempt++ {
		name := m.Now().UTC().Format(fileTime) + "-" + recipient
		if attempt > 0 {
			// Two sends to one reader in the same nanosecond (or a coarse
			// clock): tell them apart.
			var b [4]byte
			rand.Read(b[:])
			name += "-" + hex.EncodeToString(b[:])
		}
		err := os.Link(tmp.Name(), filepath.Join(m.dir, name+".eml"))
		if err == nil {
			return name + ".eml", nil
		}
		if !errors.Is(err, os.ErrExist) || attempt >= 3 {
			return "", fmt.Errorf("outbox write %s: %w", name, err)
		}
	}
}

// sanitize turns an address into a safe file-name part: letters, digits and
// . @ + - _ are kept, anything else becomes _, and it is cut to
// maxRecipientLen bytes.
func sanitize(addr string) string {
	if a, err := mail.ParseAddress(addr); err == nil {
		addr = a.Address
	}
	var b strings.Builder
	for _, r := range addr {
		if b.Len() >= maxRecipientLen {
			break
		}
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9',
			r == '.', r == '@', r == '+', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), ".")
	if s == "" {
		return "unknown"
	}
	return s
}

// The message tags that name the digest and reader of a digest email.
const (
	TagDigest     = "digest"
	TagSubscriber = "subscriber"
)

// ledgerKey names the messages of one digest to one reader in file names:
// 16 hex digits of a SHA-256 of the two IDs.
func ledgerKey(digestID, subscriberID string) string {
	h := sha256.Sum256([]byte(digestID + "\x00" + subscriberID))
	return hex.EncodeToString(h[:8])
}

// Sent reports whether the outbox holds the email of a digest to a reader,
// and its Message-ID: the mailer's own record, which the delivery engine
// consults (as a delivery.Reconciler) before sending again a copy whose
// outcome it did not record. A file appears whole or not at all, so a
// message either is here or never left.
//
// The first call lists the folder (once, whatever its size) and keeps an
// index of its digest emails, to which Send adds each one it writes: a
// crash leaves hundreds of copies to reconcile, and a listing each would
// cost seconds. So while the Mailer is open it must be the folder's only
// writer, as the laptop's is: bbolt's lock keeps a second process off the
// data folder.
func (m *Mailer) Sent(ctx context.Context, digestID, subscriberID string) (messageID string, found bool, err error) {
	if err := ctx.Err(); err != nil {
		return "", false, fmt.Errorf("outbox sent: %w", err)
	}
	m.mu.Lock()
	if m.index == nil {
		// Send waits for the listing to end, then adds to the index: a
		// file it links meanwhile is listed or added.
		if m.index, err = m.list(); err != nil {
			m.mu.Unlock()
			return "", false, fmt.Errorf("outbox sent: %w", err)
		}
	}
	name, ok := m.index[ledgerKey(digestID, subscriberID)]
	m.mu.Unlock()
	if !ok {
		return "", false, nil
	}
	id, err := readMessageID(filepath.Join(m.dir, name))
	if err != nil {
		return "", false, fmt.Errorf("outbox sent: %w", err)
	}
	return id, true, nil
}

// list returns the folder's digest emails by ledger key.
func (m *Mailer) list() (map[string]string, error) {
	f, err := os.Open(m.dir)
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	index := make(map[string]string, len(names))
	for _, name := range names {
		base, ok := strings.CutSuffix(name, ".eml")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		// <time>-<recipient>-<key>, perhaps with a collision suffix
		// -<8 hex digits> after the key.
		parts := strings.Split(base, "-")
		for i := len(parts) - 1; i >= max(1, len(parts)-2); i-- {
			if isKey(parts[i]) {
				index[parts[i]] = name
				break
			}
		}
	}
	return index, nil
}

// isKey reports whether s looks like a ledger key: 16 hex digits.
func isKey(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// readMessageID returns the Message-ID header of an .eml file.
func readMessageID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	msg, err := mail.ReadMessage(io.LimitReader(f, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return msg.Header.Get("Message-Id"), nil
}
