package journal_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/journal"
)

const digest = "daily-2026-11-26"

func digestMail(digestID, subscriberID string) *eml.Message {
	return &eml.Message{
		To:        subscriberID + "@example.org",
		MessageID: "<" + digestID + "." + subscriberID + "@example.com>",
		Tags:      map[string]string{journal.TagDigest: digestID, journal.TagSubscriber: subscriberID},
	}
}

// testNow is the journals' clock in these tests. Files written by the test
// carry the machine's time, later than it, so only a file whose time the
// test sets before testNow less Retain is old.
var testNow = time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)

func mustOpen(t *testing.T, dir string) *journal.Log {
	t.Helper()
	l, err := journal.Open(dir, testNow)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// wantSent checks what Sent says of a reader.
func wantSent(t *testing.T, l *journal.Log, digestID, subscriberID string, want bool) {
	t.Helper()
	id, found, err := l.Sent(context.Background(), digestID, subscriberID)
	if err != nil {
		t.Fatal(err)
	}
	if found != want {
		t.Fatalf("Sent(%s, %s): found %v, want %v", digestID, subscriberID, found, want)
	}
	if want && id != digestMail(digestID, subscriberID).MessageID {
		t.Errorf("Sent(%s, %s): Message-ID %q", digestID, subscriberID, id)
	}
}

// TestAcceptedIsSent: what was recorded is found, by this Log as it
// writes and by a Log opened on the folder after a crash; nothing else is.
func TestAcceptedIsSent(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	for _, s := range []string{"r1", "r2"} {
		if err := l.Accepted(digestMail(digest, s)); err != nil {
			t.Fatal(err)
		}
	}
	wantSent(t, l, digest, "r1", true)
	wantSent(t, l, digest, "r3", false)
	// Written after a first read: found by the next.
	if err := l.Accepted(digestMail(digest, "r3")); err != nil {
		t.Fatal(err)
	}
	wantSent(t, l, digest, "r3", true)
	wantSent(t, l, "weekly-2026-W48", "r1", false)
	wantSent(t, l, "../../etc/passwd", "r1", false)

	// A transactional email carries no tags: nothing is recorded.
	if err := l.Accepted(&eml.Message{To: "x@example.org", MessageID: "<x@example.com>"}); err != nil {
		t.Fatal(err)
	}
	// The process dies without Close: a new Log reads what the kernel has.
	again := mustOpen(t, dir)
	for _, s := range []string{"r1", "r2", "r3"} {
		wantSent(t, again, digest, s, true)
	}
	wantSent(t, again, digest, "r4", false)
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 || filepath.Base(files[0]) != digest+".log" {
		t.Errorf("journal folder holds %v, want one file for the digest", files)
	}
}

// TestTornLine: a line cut short by a machine that stopped is ended
// before the next is appended, and a line not yet ended is not read.
func TestTornLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, digest+".log")
	if err := os.WriteFile(path, []byte("r1\t<a@example.com>\nr2\t<daily-2026-"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := mustOpen(t, dir)
	wantSent(t, l, digest, "r2", false)
	if err := l.Accepted(digestMail(digest, "r5")); err != nil {
		t.Fatal(err)
	}
	wantSent(t, l, digest, "r5", true)
	if _, found, _ := l.Sent(context.Background(), digest, "r1"); !found {
		t.Error("r1 not found")
	}
}

// TestRefusesWhatALineCannotHold: IDs with a tab or a line break would
// corrupt the journal, and are refused rather than recorded.
func TestRefusesWhatALineCannotHold(t *testing.T) {
	l := mustOpen(t, t.TempDir())
	for _, m := range []*eml.Message{digestMail(digest, "r\t1"), digestMail(digest, "r\n1"), digestMail("not a digest", "r1")} {
		if err := l.Accepted(m); err == nil {
			t.Errorf("Accepted(%q, %q): no error", m.Tags[journal.TagDigest], m.Tags[journal.TagSubscriber])
		}
	}
	m := digestMail(digest, "r1")
	m.MessageID = ""
	if err := l.Accepted(m); err == nil {
		t.Error("Accepted with no Message-ID: no error")
	}
}

// TestConcurrentConnections: four connections record at once, over
// several digests, and every line is there after Close and a reopen.
func TestConcurrentConnections(t *testing.T) {
	dir := t.TempDir()
	l, err := journal.Open(dir, testNow)
	if err != nil {
		t.Fatal(err)
	}
	digests := []string{"daily-2026-11-26", "weekly-2026-W48", "daily-2026-11-27"}
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				if err := l.Accepted(digestMail(digests[i%3], fmt.Sprintf("c%d-%d", c, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Accepted(digestMail(digest, "late")); err == nil {
		t.Error("Accepted after Close: no error")
	}
	again := mustOpen(t, dir)
	for c := range 4 {
		for i := range 300 {
			wantSent(t, again, digests[i%3], fmt.Sprintf("c%d-%d", c, i), true)
		}
	}
}

// TestPrune: a journal untouched for longer than Retain is removed when
// the folder is opened.
func TestPrune(t *testing.T) {
	dir := t.TempDir()
	old, fresh := filepath.Join(dir, "daily-2026-01-01.log"), filepath.Join(dir, digest+".log")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("r1\t<a@example.com>\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := testNow.Add(-journal.Retain - time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, dir)
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("old journal still there (%v)", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh journal: %v", err)
	}
}

// BenchmarkAccepted is the journal's cost per message SMTP accepts.
func BenchmarkAccepted(b *testing.B) {
	l, err := journal.Open(b.TempDir(), testNow)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	msgs := make([]*eml.Message, 1000)
	for i := range msgs {
		msgs[i] = digestMail(digest, fmt.Sprintf("01JD%08d", i))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.Accepted(msgs[i%len(msgs)]); err != nil {
			b.Fatal(err)
		}
	}
}
