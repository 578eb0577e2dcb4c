// Package journal is the laptop's record of the digest emails an SMTP
// server accepted: an append-only file per digest, one line per reader,
// written the moment the server answers 250 to the message and before the
// next message goes on that connection. SMTP keeps no record Broadsheet
// can ask, so this is the one the delivery engine reconciles against (it
// is a delivery.Reconciler) when a sender died between a message and the
// ledger write that records it. A crash can then cost a second copy only
// to readers whose message was on a connection at that moment: one per
// connection.
//
// A line is handed to the kernel in one write(2) before Accepted returns
// (about 3 µs), so it survives the process being killed; a background
// loop fsyncs the files written since its last round, every SyncEvery, so
// that lines also survive the machine stopping, at most that much later.
// The connection does not wait for the fsync: on the development
// machine's disk one takes about 0.5 ms, as long as a message takes on its
// connection, so waiting would about halve SMTP throughput.
package journal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// The message tags that name the digest and reader of a digest email, as
// the delivery engine sets them.
const (
	TagDigest     = "digest"
	TagSubscriber = "subscriber"
)

// Retain is how long a digest's journal is kept after its last line:
// Open removes older ones. A digest's uncertain copies are settled within
// minutes of a restart; the rest is for an operator's questions.
const Retain = 30 * 24 * time.Hour

// SyncEvery is the least time between two rounds of fsyncs: lines
// written meanwhile wait for the next round, so that a fast send costs a
// hundred fsyncs a second, not one per message.
const SyncEvery = 10 * time.Millisecond

// maxOpen is how many digests' files stay open for appending at once.
const maxOpen = 16

// Log is a folder of journals, one per digest. It is safe for concurrent
// use; Close it when done.
type Log struct {
	dir string

	mu      sync.Mutex
	open    map[string]*os.File // by digest ID, for appending
	dirty   map[*os.File]bool   // written since their last fsync
	indexes map[string]*index   // by digest ID, read for Sent
	syncErr error               // the last fsync's failure, returned by the next Accepted
	closed  bool

	wake chan struct{} // a line was written: the syncer has work
	done chan struct{} // closed when the syncer has stopped
}

// index is what Sent has read of a digest's journal.
type index struct {
	read int64             // bytes of the file read, up to a line's end
	sent map[string]string // subscriber ID → Message-ID
}

// Open opens the journals in dir, creating it (mode 0700) if needed, and
// removes those last written more than Retain before now.
func Open(dir string, now time.Time) (*Log, error) {
	if dir == "" {
		return nil, errors.New("journal: no folder given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create journal folder %s: %w", dir, err)
	}
	if err := prune(dir, now.Add(-Retain)); err != nil {
		return nil, err
	}
	l := &Log{dir: dir, open: map[string]*os.File{}, dirty: map[*os.File]bool{}, indexes: map[string]*index{},
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go l.syncLoop()
	return l, nil
}

// prune removes the journals last written before cutoff.
func prune(dir string, cutoff time.Time) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read journal folder: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

// Accepted records that the server accepted msg, a digest email tagged
// with its digest and reader; other messages (confirmations, test sends)
// are not recorded. It returns once the line is written: a process killed
// after that keeps it. An error means the line may not be there, and the
// caller should send nothing more until it is (smtp stops the call).
func (l *Log) Accepted(msg *eml.Message) error {
	digestID, subscriberID := msg.Tags[TagDigest], msg.Tags[TagSubscriber]
	if digestID == "" || subscriberID == "" {
		return nil
	}
	if !newsletter.ValidDigestID(digestID) || !plain(subscriberID) || !plain(msg.MessageID) {
		return fmt.Errorf("journal: cannot record digest %q, reader %q, message ID %q", digestID, subscriberID, msg.MessageID)
	}
	line := make([]byte, 0, len(subscriberID)+len(msg.MessageID)+2)
	line = append(append(append(append(line, subscriberID...), '\t'), msg.MessageID...), '\n')

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("journal closed")
	}
	if err := l.syncErr; err != nil {
		l.syncErr = nil
		return err
	}
	f, err := l.file(digestID)
	if err != nil {
		return err
	}
	// One write(2) of a whole line to a file opened O_APPEND.
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("journal %s: %w", digestID, err)
	}
	l.dirty[f] = true
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// plain reports whether s can stand in a journal line: not empty, and no
// tab, line break or other control character.
func plain(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// file returns the digest's journal, open for appending. l.mu is held.
func (l *Log) file(digestID string) (*os.File, error) {
	if f, ok := l.open[digestID]; ok {
		return f, nil
	}
	if len(l.open) >= maxOpen {
		// Digests go out one or two at a time: close the others.
		for id, f := range l.open {
			l.closeFile(f)
			delete(l.open, id)
		}
	}
	f, err := os.OpenFile(l.path(digestID), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	// A line cut short (the disk filled, the machine stopped) is ended,
	// so that the next one stands on its own.
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				f.Close()
				return nil, fmt.Errorf("open journal: %w", err)
			}
		}
	}
	l.open[digestID] = f
	return f, nil
}

// closeFile syncs and closes f. l.mu is held.
func (l *Log) closeFile(f *os.File) error {
	var err error
	if l.dirty[f] {
		err = f.Sync()
		delete(l.dirty, f)
	}
	return errors.Join(err, f.Close())
}

func (l *Log) path(digestID string) string { return filepath.Join(l.dir, digestID+".log") }

// syncLoop fsyncs the files written since the last round, a round at
// most every SyncEvery while lines come in: every line written meanwhile
// is synced by the next round (group commit), and nobody waits for it.
func (l *Log) syncLoop() {
	defer close(l.done)
	var last time.Time
	for range l.wake {
		if wait := SyncEvery - time.Since(last); wait > 0 {
			time.Sleep(wait)
		}
		last = time.Now()
		l.mu.Lock()
		files := make([]*os.File, 0, len(l.dirty))
		for f := range l.dirty {
			files = append(files, f)
		}
		clear(l.dirty)
		l.mu.Unlock()
		for _, f := range files {
			// A file closed meanwhile was synced by closeFile.
			if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
				l.mu.Lock()
				l.syncErr = fmt.Errorf("journal fsync: %w", err)
				l.mu.Unlock()
			}
		}
	}
}

// Sent reports whether the journal holds a line for the digest's email
// to the reader, and its Message-ID. It reads, on each call, only what
// was written to the journal since the last. A message not in the journal
// was not accepted, or was still on its connection when the process that
// sent it died.
func (l *Log) Sent(ctx context.Context, digestID, subscriberID string) (messageID string, found bool, err error) {
	if err := ctx.Err(); err != nil {
		return "", false, fmt.Errorf("journal sent: %w", err)
	}
	if !newsletter.ValidDigestID(digestID) {
		return "", false, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ix := l.indexes[digestID]
	if ix == nil {
		if len(l.indexes) >= maxOpen {
			clear(l.indexes)
		}
		ix = &index{sent: map[string]string{}}
		l.indexes[digestID] = ix
	}
	if err := ix.readFrom(l.path(digestID)); err != nil {
		return "", false, err
	}
	id, ok := ix.sent[subscriberID]
	return id, ok, nil
}

// readFrom reads the lines written to path since the last call.
func (ix *index) readFrom(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(ix.read, io.SeekStart); err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, io.EOF) {
			return nil // a line not ended yet is read next time
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("read journal %s: a line over 64 KiB", filepath.Base(path))
		}
		if err != nil {
			return fmt.Errorf("read journal: %w", err)
		}
		ix.read += int64(len(line))
		sub, id, ok := bytes.Cut(bytes.TrimSuffix(line, []byte("\n")), []byte("\t"))
		if ok && len(sub) > 0 {
			ix.sent[string(sub)] = string(id)
		}
	}
}

// Close syncs and closes the journals; Accepted fails after it.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.wake)
	l.mu.Unlock()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for id, f := range l.open {
		errs = append(errs, l.closeFile(f))
		delete(l.open, id)
	}
	return errors.Join(errs...)
}
