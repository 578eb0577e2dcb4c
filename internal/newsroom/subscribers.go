package newsroom

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// csvColumns are the columns of an export, and those an import reads.
var csvColumns = []string{
	"email", "status", "frequency", "format", "sections",
	"created_at", "confirmed_at", "unsubscribed_at",
	"consent_time", "consent_ip", "consent_user_agent", "consent_source",
}

// MaxImportRows caps one import.
const MaxImportRows = 200_000

// Subscribers lists readers, by ID.
func (s *Service) Subscribers(ctx context.Context, f newsletter.SubscriberFilter, p newsletter.Page) ([]*newsletter.Subscriber, string, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, "", newsletter.Errorf(newsletter.EINVALID, "Unknown status %q.", f.Status)
	}
	if f.Frequency != "" {
		if _, err := newsletter.ParseFrequency(string(f.Frequency)); err != nil {
			return nil, "", err
		}
	}
	subs, next, err := s.store.Subscribers(ctx, f, p)
	return subs, next, wrap("subscribers", err)
}

// ExportSubscribers writes every reader as CSV, with the columns an import
// reads back. Cells that a spreadsheet would run as a formula are prefixed
// with a quote.
func (s *Service) ExportSubscribers(ctx context.Context, w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvColumns); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	cursor := ""
	for {
		subs, next, err := s.store.Subscribers(ctx, newsletter.SubscriberFilter{}, newsletter.Page{Cursor: cursor, Limit: newsletter.MaxPageSize})
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		for _, sub := range subs {
			row := []string{
				sub.Email, string(sub.Status), string(sub.Frequency), string(sub.Format), strings.Join(sub.Sections, " "),
				csvTime(sub.CreatedAt), csvTime(sub.ConfirmedAt), csvTime(sub.UnsubscribedAt),
				csvTime(sub.Consent.Time), sub.Consent.IP, sub.Consent.UserAgent, sub.Consent.Source,
			}
			for i := range row {
				row[i] = defuse(row[i])
			}
			if err := cw.Write(row); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	cw.Flush()
	return wrap("export", cw.Error())
}

// ImportResult counts what an import did.
type ImportResult struct {
	Added     int `json:"added"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}

// ImportSubscribers adds readers from CSV with a header row naming at least
// the email column (any of the export's columns may follow, in any order).
// The whole file is checked before anything is written: one bad row and the
// import fails with EINVALID naming the bad lines, changing nothing.
// Imported readers are confirmed unless a status column says otherwise. A
// reader who left, bounced or complained is never brought back by an
// import; other existing readers get the file's choices.
func (s *Service) ImportSubscribers(ctx context.Context, r io.Reader) (*ImportResult, error) {
	rows, err := s.parseImport(r)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{}
	for _, row := range rows {
		existing, err := s.store.SubscriberByEmail(ctx, row.Email)
		switch {
		case newsletter.ErrorCode(err) == newsletter.ENOTFOUND:
			row.ID = newID()
			if err := s.store.CreateSubscriber(ctx, row); err != nil {
				return res, fmt.Errorf("import %s: %w", row.Email, err)
			}
			res.Added++
			continue
		case err != nil:
			return res, fmt.Errorf("import: %w", err)
		}
		if existing.Status != newsletter.StatusConfirmed && existing.Status != newsletter.StatusPending ||
			existing.Frequency == row.Frequency && existing.Format == row.Format && slices.Equal(existing.Sections, row.Sections) && existing.Status == row.Status {
			res.Unchanged++
			continue
		}
		if _, err := s.store.UpdateSubscriber(ctx, existing.ID, func(sub *newsletter.Subscriber) error {
			sub.Frequency, sub.Format, sub.Sections, sub.UpdatedAt = row.Frequency, row.Format, row.Sections, s.cfg.Now()
			if sub.Status == newsletter.StatusPending && row.Status == newsletter.StatusConfirmed {
				sub.Status, sub.ConfirmedAt = newsletter.StatusConfirmed, s.cfg.Now()
			}
			return nil
		}); err != nil {
			return res, fmt.Errorf("import %s: %w", row.Email, err)
		}
		res.Updated++
	}
	return res, nil
}

// parseImport reads and checks a whole import file.
func (s *Service) parseImport(r io.Reader) ([]*newsletter.Subscriber, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, newsletter.Errorf(newsletter.EINVALID, "The file is empty; it needs a header row with an email column.")
	} else if err != nil {
		return nil, newsletter.Errorf(newsletter.EINVALID, "The file is not valid CSV: %s.", csvErr(err))
	}
	col := map[string]int{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(csvColumns, name) {
			return nil, newsletter.Errorf(newsletter.EINVALID, "Unknown column %q; columns are: %s.", clean(name, 40), strings.Join(csvColumns, ", "))
		}
		if _, dup := col[name]; dup {
			return nil, newsletter.Errorf(newsletter.EINVALID, "Column %q appears twice.", name)
		}
		col[name] = i
	}
	if _, ok := col["email"]; !ok {
		return nil, newsletter.Errorf(newsletter.EINVALID, "The header row needs an email column.")
	}

	now := s.cfg.Now()
	var rows []*newsletter.Subscriber
	var problems []string
	seen := map[string]int{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, newsletter.Errorf(newsletter.EINVALID, "The file is not valid CSV: %s.", csvErr(err))
		}
		if len(rows) >= MaxImportRows {
			return nil, newsletter.Errorf(newsletter.EINVALID, "At most %d readers can be imported at once.", MaxImportRows)
		}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return undefuse(strings.TrimSpace(rec[i]))
			}
			return ""
		}
		sub, err := s.importRow(get, now)
		if err == nil {
			if first, dup := seen[newsletter.EmailKey(sub.Email)]; dup {
				err = newsletter.Errorf(newsletter.EINVALID, "Same address as line %d.", first)
			}
		}
		if err != nil {
			if len(problems) < 10 {
				problems = append(problems, fmt.Sprintf("line %d: %s", line, newsletter.ErrorMessage(err)))
			} else if len(problems) == 10 {
				problems = append(problems, "…")
			}
			continue
		}
		seen[newsletter.EmailKey(sub.Email)] = line
		rows = append(rows, sub)
	}
	if len(problems) > 0 {
		return nil, newsletter.Errorf(newsletter.EINVALID, "Nothing was imported. %s", strings.Join(problems, "; "))
	}
	return rows, nil
}

func (s *Service) importRow(get func(string) string, now time.Time) (*newsletter.Subscriber, error) {
	email, err := newsletter.NormalizeEmail(get("email"))
	if err != nil {
		return nil, err
	}
	sections, freq, format, err := s.choices(Preferences{Sections: strings.Fields(strings.ReplaceAll(get("sections"), ";", " ")), Frequency: get("frequency"), Format: get("format")})
	if err != nil {
		return nil, err
	}
	status := newsletter.StatusConfirmed
	if v := get("status"); v != "" {
		status = newsletter.SubscriberStatus(strings.ToLower(v))
		if !status.Valid() {
			return nil, newsletter.Errorf(newsletter.EINVALID, "Unknown status %q.", clean(v, 40))
		}
	}
	sub := &newsletter.Subscriber{
		Email: email, Status: status, Sections: sections, Frequency: freq, Format: format,
		CreatedAt: now, UpdatedAt: now,
		Consent: newsletter.Consent{Time: now, IP: clean(get("consent_ip"), 64), UserAgent: clean(get("consent_user_agent"), 512), Source: "import"},
	}
	if src := clean(get("consent_source"), 32); src != "" {
		sub.Consent.Source = src
	}
	for _, f := range []struct {
		col string
		dst *time.Time
	}{{"created_at", &sub.CreatedAt}, {"confirmed_at", &sub.ConfirmedAt}, {"unsubscribed_at", &sub.UnsubscribedAt}, {"consent_time", &sub.Consent.Time}} {
		if v := get(f.col); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return nil, newsletter.Errorf(newsletter.EINVALID, "%s must be an RFC 3339 time such as 2026-11-26T07:00:00Z.", f.col)
			}
			*f.dst = t
		}
	}
	if status == newsletter.StatusConfirmed && sub.ConfirmedAt.IsZero() {
		sub.ConfirmedAt = now
	}
	return sub, nil
}

// EraseSubscriber deletes everything kept about an address. ENOTFOUND.
func (s *Service) EraseSubscriber(ctx context.Context, email string) error {
	email, err := newsletter.NormalizeEmail(email)
	if err != nil {
		return err
	}
	sub, err := s.store.SubscriberByEmail(ctx, email)
	if err != nil {
		return wrap("erase", err)
	}
	return wrap("erase", s.store.DeleteSubscriber(ctx, sub.ID))
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func csvErr(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("line %d: %v", pe.Line, pe.Err)
	}
	return "unreadable"
}

// defuse stops a spreadsheet from running a cell as a formula.
func defuse(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// undefuse reverses defuse.
func undefuse(s string) string {
	if len(s) > 1 && s[0] == '\'' && strings.ContainsRune("=+-@\t\r", rune(s[1])) {
		return s[1:]
	}
	return s
}
