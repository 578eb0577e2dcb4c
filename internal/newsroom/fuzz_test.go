package newsroom_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"slices"
	"strings"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// FuzzImportSubscribers feeds arbitrary files to the subscriber import. It
// checks that the import never panics; that a refused file is refused with
// EINVALID and changes nothing; and that every reader a file added comes
// back out of an export, which imports into an empty list as the same
// readers.
func FuzzImportSubscribers(f *testing.F) {
	for _, s := range []string{
		"email\na@example.com\n",
		"email,status,sections\na@example.com,,politics sport\nb@example.com,unsubscribed,\n",
		"\ufeffEmail,Frequency,Format\r\nA@Example.COM,weekly,lite\r\n",
		"email,frequency\nok@example.com,daily\nnot-an-email,daily\nother@example.com,hourly\n",
		"email,email\na@example.com,a@example.com\n",
		"email,consent_user_agent,consent_ip,consent_source\na@example.com,'=HYPERLINK(\"x\"),1.2.3.4,'+form\n",
		"email,created_at,confirmed_at,unsubscribed_at,consent_time\na@example.com,2026-11-26T07:00:00Z,2026-11-26T07:00:00+01:00,,2026-11-26T07:00:00.5Z\n",
		"email\n\"a@example.com\nb@example.com\"\n",
		"email\na@example.com\nA@example.com\n",
		"\"email\na@example.com\n", "email\n\"a\"b\"\n", "", "\n", ",\n,", "nope\nx\n",
		"email,status\na@example.com,bounced\nb@example.com,COMPLAINED\nc@example.com,pending\n",
		"email,sections\na@example.com,news;sport;;\nb@example.com,Gardening\n",
		"email\n\x00@example.com\n\xff@example.com\n",
	} {
		f.Add([]byte(s))
	}
	ctx := context.Background()
	in, out := newFixture(f), newFixture(f)
	f.Fuzz(func(t *testing.T, file []byte) {
		defer clearReaders(t, in)
		defer clearReaders(t, out)
		res, err := in.svc.ImportSubscribers(ctx, bytes.NewReader(file))
		if err != nil {
			if code := newsletter.ErrorCode(err); code != newsletter.EINVALID {
				t.Fatalf("ImportSubscribers(%q): error %v with code %q, want %q", file, err, code, newsletter.EINVALID)
			}
			if n := count(t, in); n != 0 {
				t.Fatalf("ImportSubscribers(%q) failed but stored %d readers", file, n)
			}
			return
		}
		if res.Updated != 0 || res.Unchanged != 0 {
			t.Fatalf("ImportSubscribers(%q) into an empty list: got %+v, want only additions", file, res)
		}
		first := export(t, in)
		if len(first)-1 != res.Added {
			t.Fatalf("ImportSubscribers(%q) added %d readers, export has %d rows", file, res.Added, len(first)-1)
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.WriteAll(first)
		again, err := out.svc.ImportSubscribers(ctx, &buf)
		if err != nil {
			t.Fatalf("re-import of the export of %q: %v\n%s", file, err, buf.String())
		}
		if again.Added != res.Added {
			t.Fatalf("re-import of the export of %q: added %d, want %d", file, again.Added, res.Added)
		}
		if second := export(t, out); !slices.EqualFunc(first, second, slices.Equal) {
			t.Fatalf("export after re-import of %q:\n got %q\nwant %q", file, second, first)
		}
	})
}

// export returns the CSV export's records, the header first and the rest
// sorted, since readers come out in ID order.
func export(t *testing.T, f *fixture) [][]string {
	t.Helper()
	var buf bytes.Buffer
	if err := f.svc.ExportSubscribers(context.Background(), &buf); err != nil {
		t.Fatalf("export: %v", err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("export is not CSV: %v\n%s", err, buf.String())
	}
	slices.SortFunc(recs[1:], func(a, b []string) int { return strings.Compare(strings.Join(a, "\x00"), strings.Join(b, "\x00")) })
	return recs
}

// count returns how many readers f's store holds.
func count(t *testing.T, f *fixture) int {
	t.Helper()
	subs, _, err := f.store.Subscribers(context.Background(), newsletter.SubscriberFilter{}, newsletter.Page{Limit: newsletter.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return len(subs)
}

// clearReaders deletes every reader in f's store.
func clearReaders(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	for {
		subs, _, err := f.store.Subscribers(ctx, newsletter.SubscriberFilter{}, newsletter.Page{Limit: newsletter.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		if len(subs) == 0 {
			return
		}
		for _, s := range subs {
			if err := f.store.DeleteSubscriber(ctx, s.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
}
