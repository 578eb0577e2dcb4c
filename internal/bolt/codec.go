package bolt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// Ledger rows are the store's most numerous records (one per reader per
// digest) and are read and written three times per send, so they are kept
// in a compact binary form rather than JSON: a version byte, then the
// status, attempts, lease and update times and the message ID and reason.
// The digest and subscriber IDs are the row's bucket and key and are not
// repeated. Rows written as JSON by earlier versions (they start with '{')
// still decode.
const rowV1 = 1

// statusCodes numbers the delivery statuses for the binary form; the
// numbers are stored, so a new status is appended, never inserted.
var statusCodes = map[newsletter.DeliveryStatus]byte{}

func init() {
	for i, s := range newsletter.DeliveryStatuses {
		statusCodes[s] = byte(i + 1)
	}
}

// appendRow appends the binary form of d to b.
func appendRow(b []byte, d *newsletter.Delivery) []byte {
	// A status that is not one of DeliveryStatuses (none is written by
	// Broadsheet, but the store does not judge) is kept as its text.
	code := statusCodes[d.Status]
	b = append(b, rowV1, code)
	if code == 0 {
		b = appendString(b, string(d.Status))
	}
	b = binary.AppendUvarint(b, uint64(max(d.Attempts, 0)))
	b = appendTime(b, d.LeaseUntil)
	b = appendTime(b, d.UpdatedAt)
	b = appendString(b, d.MessageID)
	return appendString(b, d.Reason)
}

// decodeRow decodes a ledger row stored under digestID/subscriberID, in
// either form.
func decodeRow(data []byte, digestID, subscriberID string) (*newsletter.Delivery, error) {
	d := &newsletter.Delivery{DigestID: digestID, SubscriberID: subscriberID}
	if len(data) > 0 && data[0] == '{' {
		if err := json.Unmarshal(data, d); err != nil {
			return nil, err
		}
		return d, nil
	}
	r := rowReader{b: data}
	if v := r.byte(); v != rowV1 {
		return nil, fmt.Errorf("ledger row version %d is not one this store reads", v)
	}
	switch code := int(r.byte()); {
	case code == 0:
		d.Status = newsletter.DeliveryStatus(r.string())
	case code <= len(newsletter.DeliveryStatuses):
		d.Status = newsletter.DeliveryStatuses[code-1]
	default:
		return nil, fmt.Errorf("ledger row status %d is not one this store knows", code)
	}
	d.Attempts = int(r.uvarint())
	d.LeaseUntil = r.time()
	d.UpdatedAt = r.time()
	d.MessageID = r.string()
	d.Reason = r.string()
	if r.err != nil {
		return nil, r.err
	}
	return d, nil
}

// appendTime appends t as seconds and nanoseconds since the Unix epoch (a
// zero time as a single 0 flag), in UTC: the store keeps instants, and
// the contract compares times as instants.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// rowReader reads the binary form; its first error sticks.
type rowReader struct {
	b   []byte
	err error
}

var errShortRow = errors.New("ledger row is cut short")

func (r *rowReader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *rowReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rowReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *rowReader) time() time.Time {
	if r.byte() == 0 || r.err != nil {
		return time.Time{}
	}
	sec := r.varint()
	nsec := r.uvarint()
	if r.err != nil || nsec >= 1e9 {
		r.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (r *rowReader) string() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *rowReader) fail() {
	if r.err == nil {
		r.err = errShortRow
	}
}

// Subscriber records are read twice per reader per digest (at fan-out and
// at the sender's re-read), so they are binary too: a version byte, then
// the fields in a fixed order, times as in ledger rows. The ID is the
// record's key. JSON records of earlier versions still decode, and so do
// version 1 records, which end before ArticlesAfter.
const (
	subscriberV1 = 1
	subscriberV2 = 2 // ArticlesAfter appended
)

// appendSubscriber appends the binary form of s to b.
func appendSubscriber(b []byte, s *newsletter.Subscriber) []byte {
	b = append(b, subscriberV2)
	b = appendString(b, s.Email)
	b = appendString(b, string(s.Status))
	// A nil and an empty Sections both mean every section, but the store
	// hands back what it was given: the flag keeps them apart.
	if s.Sections == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(s.Sections)))
		for _, sec := range s.Sections {
			b = appendString(b, sec)
		}
	}
	b = appendString(b, string(s.Frequency))
	b = appendString(b, string(s.Format))
	b = appendTime(b, s.Consent.Time)
	b = appendString(b, s.Consent.IP)
	b = appendString(b, s.Consent.UserAgent)
	b = appendString(b, s.Consent.Source)
	for _, t := range [...]time.Time{s.CreatedAt, s.UpdatedAt, s.ConfirmedAt, s.UnsubscribedAt, s.ConfirmationSentAt, s.LastSignUpAt, s.ArticlesAfter} {
		b = appendTime(b, t)
	}
	return b
}

// decodeSubscriber decodes the subscriber record stored under id, in
// either form.
func decodeSubscriber(data []byte, id string) (*newsletter.Subscriber, error) {
	s := &newsletter.Subscriber{}
	if len(data) > 0 && data[0] == '{' {
		if err := json.Unmarshal(data, s); err != nil {
			return nil, err
		}
		return s, nil
	}
	r := rowReader{b: data}
	v := r.byte()
	if v != subscriberV1 && v != subscriberV2 {
		return nil, fmt.Errorf("subscriber record version %d is not one this store reads", v)
	}
	s.ID = id
	s.Email = r.string()
	s.Status = newsletter.SubscriberStatus(r.string())
	if r.byte() == 1 {
		n := r.uvarint()
		if n > uint64(len(r.b)) { // each section takes a byte at least
			r.fail()
		} else {
			s.Sections = make([]string, 0, n)
			for range n {
				s.Sections = append(s.Sections, r.string())
			}
		}
	}
	s.Frequency = newsletter.Frequency(r.string())
	s.Format = newsletter.Format(r.string())
	s.Consent.Time = r.time()
	s.Consent.IP = r.string()
	s.Consent.UserAgent = r.string()
	s.Consent.Source = r.string()
	for _, t := range [...]*time.Time{&s.CreatedAt, &s.UpdatedAt, &s.ConfirmedAt, &s.UnsubscribedAt, &s.ConfirmationSentAt, &s.LastSignUpAt} {
		*t = r.time()
	}
	if v >= subscriberV2 {
		s.ArticlesAfter = r.time()
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, errors.New("subscriber record has bytes past its end")
	}
	return s, nil
}
