package ses

import (
	"context"
	"errors"
	"fmt"
	"html"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/broadsheet-news/broadsheet/internal/eml"
)

// Limits of one SendBulkEmail call.
const (
	// maxBulkEntries is the most entries SES takes in one call.
	maxBulkEntries = 50
	// maxHeaders is the most headers SES takes in Template.Headers, in an
	// entry's ReplacementHeaders and in simple content.
	maxHeaders = 15
	// An inline-template request may be 1 MB of JSON in all. A layout
	// whose template is larger than maxTemplateBytes goes out by Send;
	// a call's entries stop at maxEntriesBytes. Both are estimates of
	// the unescaped text, with room left for JSON escaping.
	maxTemplateBytes = 256 << 10
	maxEntriesBytes  = 384 << 10
)

// SendBulk sends msgs and returns what became of each, in order, as Send
// would have. It implements delivery.BulkMailer.
//
// Messages made from a layout go out by SendBulkEmail, one call for up to
// 50 (BulkSize) messages that share a layout, From and Reply-To: the
// layout is the call's inline template (DefaultContent.Template.TemplateContent) and
// each message is an entry carrying only the reader's address, the
// reader's values (and the template's character variables, see
// bulkTemplate) as replacement template data, the headers that differ
// between the call's messages (List-Unsubscribe, with the reader's own
// links) as ReplacementHeaders and its tags as ReplacementTags. Headers
// every message of the call shares go once, in Template.Headers; tags they
// share, in DefaultEmailTags. Messages without a layout go out by Send, one
// call each.
//
// SES builds a bulk message's headers itself, so as with Send, msg.MessageID
// and msg.Date are not sent: SES writes its own Message-ID and Date. The
// deterministic Message-ID that would let a mail client fold two copies
// sent after an unknown outcome is lost, and the only ID that identifies a
// message is the one SES returns for its entry, which its send, delivery,
// bounce and complaint events carry: that is the MessageID of each Sent,
// and what the ledger must keep.
//
// Calls for different layouts are made concurrently, up to
// MaxParallelCalls at once.
// Per-entry statuses map to the eml sentinels (see entryError). An error
// of the call as a whole applies to every entry of the call: throttling is
// retried as for Send and then is ErrThrottled for all 50, an answer lost
// after the request was written is ErrUnknownOutcome for all of them. A
// call SES refuses as a bad request is sent again message by message with
// Send, so that one malformed message cannot fail 49 others.
func (m *Mailer) SendBulk(ctx context.Context, msgs []*eml.Message) []eml.Sent {
	out := make([]eml.Sent, len(msgs))
	type key struct {
		layout        *eml.Layout
		from, replyTo string
	}
	var order []key
	groups := map[key][]bulkEntry{}
	for i, msg := range msgs {
		switch {
		case msg == nil:
			out[i].Err = fmt.Errorf("ses bulk send: no message: %w", eml.ErrRejected)
			continue
		case msg.Layout == nil:
			out[i].MessageID, out[i].Err = m.Send(ctx, msg)
			continue
		}
		e, err := newBulkEntry(i, msg)
		if err != nil {
			out[i].Err = fmt.Errorf("ses bulk send: %v: %w", err, eml.ErrRejected)
			continue
		}
		k := key{msg.Layout, msg.From, msg.ReplyTo}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], e)
	}
	var calls []func()
	for _, k := range order {
		calls = m.groupCalls(ctx, calls, k.layout, groups[k], out)
	}
	if len(calls) == 1 {
		calls[0]()
		return out
	}
	// Messages of several variants make several calls: make them at once,
	// a few at a time, so that a task waits for about one round trip to
	// SES rather than one per variant. Each call writes its own results.
	var wg sync.WaitGroup
	limit := make(chan struct{}, MaxParallelCalls)
	for _, call := range calls {
		limit <- struct{}{}
		wg.Go(func() {
			defer func() { <-limit }()
			call()
		})
	}
	wg.Wait()
	return out
}

// MaxParallelCalls is the most SES calls one SendBulk makes at once: an
// HTTP client that keeps that many idle connections per sender does not
// open new ones.
const MaxParallelCalls = 4

// bulkEntry is one message of a SendBulk call, ready to be an entry.
type bulkEntry struct {
	i    int // index in the messages and results
	msg  *eml.Message
	to   string // formatted for SES
	tags []types.MessageTag
	size int // estimated bytes of the entry in the request
}

func newBulkEntry(i int, msg *eml.Message) (bulkEntry, error) {
	if err := msg.Validate(); err != nil {
		return bulkEntry{}, err
	}
	if len(msg.Headers) > maxHeaders {
		return bulkEntry{}, fmt.Errorf("message has %d extra headers, SES takes %d", len(msg.Headers), maxHeaders)
	}
	to := msg.To
	if !plainAddress(to) {
		var err error
		if to, err = address(msg.To); err != nil {
			return bulkEntry{}, fmt.Errorf("to: %w", err)
		}
	}
	e := bulkEntry{i: i, msg: msg, to: to, tags: tags(msg.Tags)}
	e.size = 200 + len(e.to) + dataLen(msg.Values)
	for _, h := range msg.Headers {
		e.size += 32 + len(h.Name) + len(h.Value)
	}
	for _, t := range e.tags {
		e.size += 32 + len(*t.Name) + len(*t.Value)
	}
	return e, nil
}

// plainAddress reports whether s, which parses as an address, is a bare
// addr-spec that address would return as it is: printable ASCII with no
// space, quote, comment, angle bracket or domain literal. Readers'
// addresses are, and parsing one again costs more than its whole entry.
func plainAddress(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`"()<>[]\,;:`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// groupCalls appends to calls those that send the entries of one layout,
// From and Reply-To: SendBulkEmail calls of up to 50 (BulkSize).
func (m *Mailer) groupCalls(ctx context.Context, calls []func(), l *eml.Layout, entries []bulkEntry, out []eml.Sent) []func() {
	t := m.templates.get(l)
	if t.size > maxTemplateBytes {
		// Too large to repeat in every call (and for SES's 1 MB request).
		return append(calls, func() {
			for _, e := range entries {
				out[e.i].MessageID, out[e.i].Err = m.Send(ctx, e.msg)
			}
		})
	}
	// Validate has parsed both addresses already.
	first := entries[0].msg
	from, _ := address(first.From)
	var replyTo []string
	if first.ReplyTo != "" {
		r, _ := address(first.ReplyTo)
		replyTo = []string{r}
	}
	most := m.BulkSize
	if most <= 0 || most > maxBulkEntries {
		most = maxBulkEntries
	}
	extra := len(t.syntax) + 1 // each entry's copy of the character variables
	for len(entries) > 0 {
		n, size := 1, entries[0].size+extra
		for n < len(entries) && n < most && size+entries[n].size+extra <= maxEntriesBytes {
			size += entries[n].size + extra
			n++
		}
		chunk := entries[:n]
		calls = append(calls, func() { m.sendChunk(ctx, t, from, replyTo, chunk, out) })
		entries = entries[n:]
	}
	return calls
}

// sendChunk makes one SendBulkEmail call and records its results.
func (m *Mailer) sendChunk(ctx context.Context, t *bulkTemplate, from string, replyTo []string, chunk []bulkEntry, out []eml.Sent) {
	shared, own := splitHeaders(chunk)
	content, twoVars := t.content, t.content.Html != nil
	if twoVars && escapeFree(chunk) {
		content.Html, twoVars = t.plainHTML, false
	}
	tmpl := &types.Template{TemplateContent: &content, TemplateData: aws.String(t.data)}
	for _, h := range shared {
		tmpl.Headers = append(tmpl.Headers, header(h))
	}
	in := &sesv2.SendBulkEmailInput{
		FromEmailAddress: aws.String(from),
		ReplyToAddresses: replyTo,
		DefaultContent:   &types.BulkEmailContent{Template: tmpl},
		DefaultEmailTags: sharedTags(chunk),
		BulkEmailEntries: make([]types.BulkEmailEntry, len(chunk)),
	}
	if m.configSet != "" {
		in.ConfigurationSetName = aws.String(m.configSet)
	}
	data := chunkData(chunk, twoVars, t.syntax)
	for j, e := range chunk {
		be := types.BulkEmailEntry{
			Destination: &types.Destination{ToAddresses: []string{e.to}},
			ReplacementEmailContent: &types.ReplacementEmailContent{ReplacementTemplate: &types.ReplacementTemplate{
				ReplacementTemplateData: &data[j],
			}},
			// Every tag, not only those that differ: whether SES adds an
			// entry's tags to DefaultEmailTags or uses them instead is not
			// documented, and the feedback events need both the digest
			// and the reader.
			ReplacementTags: e.tags,
		}
		for _, h := range own[j] {
			be.ReplacementHeaders = append(be.ReplacementHeaders, header(h))
		}
		in.BulkEmailEntries[j] = be
	}

	var res *sesv2.SendBulkEmailOutput
	err := m.do(ctx, func(ctx context.Context) (err error) {
		res, err = m.sendBulkEmail(ctx, in, m.withRetryer)
		return err
	})
	if err != nil {
		var bad *types.BadRequestException
		if errors.As(err, &bad) {
			// Refused as a whole, so nothing was sent: find out which
			// messages SES objects to, one at a time.
			for _, e := range chunk {
				out[e.i].MessageID, out[e.i].Err = m.Send(ctx, e.msg)
			}
			return
		}
		err = fmt.Errorf("ses bulk send: %w", err)
		for _, e := range chunk {
			out[e.i].Err = err
		}
		return
	}
	results := res.BulkEmailEntryResults
	for j, e := range chunk {
		if j >= len(results) {
			out[e.i].Err = fmt.Errorf("ses bulk send: no result for entry %d of %d: %w", j+1, len(chunk), eml.ErrUnknownOutcome)
			continue
		}
		if err := entryError(results[j]); err != nil {
			out[e.i].Err = err
			continue
		}
		out[e.i].MessageID = aws.ToString(results[j].MessageId)
	}
}

// entryError maps the status of one bulk entry to what became of it:
//
//	SUCCESS                                        → nil
//	ACCOUNT_THROTTLED                              → ErrThrottled
//	MESSAGE_REJECTED, MAIL_FROM_DOMAIN_NOT_VERIFIED,
//	INVALID_PARAMETER                              → ErrRejected
//	ACCOUNT_SUSPENDED, ACCOUNT_SENDING_PAUSED,
//	CONFIGURATION_SET_SENDING_PAUSED,
//	ACCOUNT_DAILY_QUOTA_EXCEEDED                   → ErrPaused
//	TRANSIENT_FAILURE, FAILED, TEMPLATE_NOT_FOUND,
//	CONFIGURATION_SET_NOT_FOUND,
//	INVALID_SENDING_POOL_NAME                      → an error wrapping none (not sent)
//	a status this SDK does not know                → ErrUnknownOutcome
//
// as classify maps the errors of a single SendEmail. The error holds the
// status and SES's description, never the recipient.
func entryError(r types.BulkEmailEntryResult) error {
	var sentinel error
	switch r.Status {
	case types.BulkEmailStatusSuccess:
		return nil
	case types.BulkEmailStatusAccountThrottled:
		sentinel = eml.ErrThrottled
	case types.BulkEmailStatusMessageRejected, types.BulkEmailStatusMailFromDomainNotVerified,
		types.BulkEmailStatusInvalidParameter, "INVALID_PARAMETER_VALUE": // the status as the API reference spells it
		sentinel = eml.ErrRejected
	case types.BulkEmailStatusAccountSuspended, types.BulkEmailStatusAccountSendingPaused,
		types.BulkEmailStatusConfigurationSetSendingPaused, types.BulkEmailStatusAccountDailyQuotaExceeded:
		sentinel = eml.ErrPaused
	case types.BulkEmailStatusTransientFailure, types.BulkEmailStatusFailed, types.BulkEmailStatusTemplateNotFound,
		types.BulkEmailStatusConfigurationSetNotFound, types.BulkEmailStatusInvalidSendingPoolName:
		return fmt.Errorf("ses bulk send: entry %s: %s", r.Status, aws.ToString(r.Error))
	default:
		sentinel = eml.ErrUnknownOutcome
	}
	return fmt.Errorf("ses bulk send: entry %s: %s: %w", r.Status, aws.ToString(r.Error), sentinel)
}

// splitHeaders returns the headers every message of chunk has once with the
// same value (List-Unsubscribe-Post, List-Id, Precedence for a digest), and
// for each message the rest of its headers (List-Unsubscribe).
func splitHeaders(chunk []bulkEntry) (shared []eml.Header, own [][]eml.Header) {
	for _, h := range chunk[0].msg.Headers {
		if everyOnce(chunk, h) {
			shared = append(shared, h)
		}
	}
	own = make([][]eml.Header, len(chunk))
	for j, e := range chunk {
		if len(shared) == len(e.msg.Headers) {
			continue
		}
		for _, h := range e.msg.Headers {
			if !named(shared, h.Name) {
				own[j] = append(own[j], h)
			}
		}
	}
	return shared, own
}

// everyOnce reports whether every message of chunk has exactly one header
// named as h is, and with h's value.
func everyOnce(chunk []bulkEntry, h eml.Header) bool {
	for _, e := range chunk {
		n := 0
		for _, g := range e.msg.Headers {
			if strings.EqualFold(g.Name, h.Name) {
				if g.Value != h.Value {
					return false
				}
				n++
			}
		}
		if n != 1 {
			return false
		}
	}
	return true
}

func named(hs []eml.Header, name string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// sharedTags returns the tags every message of chunk carries.
func sharedTags(chunk []bulkEntry) []types.MessageTag {
	var out []types.MessageTag
next:
	for _, t := range chunk[0].tags {
		for _, e := range chunk[1:] {
			if !hasTag(e.tags, *t.Name, *t.Value) {
				continue next
			}
		}
		out = append(out, t)
	}
	return out
}

func hasTag(ts []types.MessageTag, name, value string) bool {
	for _, t := range ts {
		if *t.Name == name && *t.Value == value {
			return true
		}
	}
	return false
}

// bulkTemplate is a layout as an SES inline template.
//
// SES templates are Handlebars, and the inline templates of SendBulkEmail
// take simple substitutions only ({{name}}). A layout's placeholders become
// template variables: placeholder i is {{h<i>}} in the HTML part and
// {{t<i>}} in the text part, because SES does not HTML-escape what it
// substitutes (SES developer guide, "Advanced email personalization"), so
// each entry passes the value HTML-escaped for the HTML part, as
// Message.Bodies splices it, and raw for the text. A call none of whose
// values HTML escaping changes (readers' links are signed base64url) uses
// plainHTML instead, with {{t<i>}} in both parts, and sends each value
// once.
//
// The layout's own text must not be read as template syntax: a "{{" in a
// headline would be a variable, "{{{" or "}}}" a parse error that fails
// every entry, and Handlebars reads "\{{" as an escaped mustache. So every
// "{", "}" and "\" of the subject and bodies becomes a variable too
// ({{lb}}, {{rb}}, {{bs}}) whose value is that character: the template
// then holds no brace or backslash but those of its own variables, and
// renders to the layout's bytes exactly. Values are data, not template, so
// they need no such escaping.
//
// The character variables go in every entry's ReplacementTemplateData, not
// only in the call's TemplateData: SES documents the default data as what
// applies "when replacement data is not specified", not as merged with an
// entry's data key by key, and a variable missing from the data an entry
// renders with is a rendering failure, after SES has accepted the call.
// They go in TemplateData as well, which costs a few bytes.
type bulkTemplate struct {
	content   types.EmailTemplateContent
	plainHTML *string // the HTML part with the text part's variables
	data      string  // TemplateData: the values of the character variables
	syntax    string  // the same as JSON members, for each entry's data
	size      int     // estimated bytes in the request
}

// The variables that stand for the characters SES would read as syntax.
var syntaxVars = [...]struct{ char, name string }{{"{", "lb"}, {"}", "rb"}, {`\`, "bs"}}

func newBulkTemplate(l *eml.Layout) *bulkTemplate {
	var used [len(syntaxVars)]bool
	subject := templateText(l.Subject, nil, "", &used)
	text := templateText(string(l.Text), l.Placeholders, "t", &used)
	t := &bulkTemplate{content: types.EmailTemplateContent{Subject: &subject, Text: &text}}
	t.size = len(subject) + len(text)
	if len(l.HTML) > 0 {
		h := templateText(string(l.HTML), l.Placeholders, "h", &used)
		plain := templateText(string(l.HTML), l.Placeholders, "t", &used)
		t.content.Html, t.plainHTML = &h, &plain
		t.size += len(h)
	}
	b := []byte{'{'}
	for i, v := range syntaxVars {
		if used[i] {
			if len(b) > 1 {
				b = append(b, ',')
			}
			b = appendJSONString(append(appendJSONString(b, v.name), ':'), v.char)
		}
	}
	t.data = string(append(b, '}'))
	t.syntax = t.data[1 : len(t.data)-1]
	t.size += len(t.data)
	return t
}

// templateText returns s as template text: each placeholder replaced by
// its variable, prefix and index, and each character SES reads as syntax
// by its variable, which it marks used.
func templateText(s string, placeholders []string, prefix string, used *[len(syntaxVars)]bool) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/32)
	last := 0
	for i := 0; i < len(s); i++ {
		name, n := "", 1
		switch c := s[i]; c {
		case '{':
			name, used[0] = syntaxVars[0].name, true
		case '}':
			name, used[1] = syntaxVars[1].name, true
		case '\\':
			name, used[2] = syntaxVars[2].name, true
		default:
			for k, p := range placeholders {
				if p[0] == c && strings.HasPrefix(s[i:], p) {
					name, n = prefix+strconv.Itoa(k), len(p)
					break
				}
			}
			if name == "" {
				continue
			}
		}
		b.WriteString(s[last:i])
		b.WriteString("{{")
		b.WriteString(name)
		b.WriteString("}}")
		i += n - 1
		last = i + 1
	}
	b.WriteString(s[last:])
	return b.String()
}

// escapeFree reports whether HTML escaping leaves every value of chunk as
// it is.
func escapeFree(chunk []bulkEntry) bool {
	for _, e := range chunk {
		for _, v := range e.msg.Values {
			if strings.ContainsAny(v, `<>&'"`) {
				return false
			}
		}
	}
	return true
}

// dataLen estimates the length of the template data of values.
func dataLen(values []string) int {
	n := 2
	for _, v := range values {
		n += 2*len(v) + len(v)/4 + 24
	}
	return n
}

// chunkData returns each entry's ReplacementTemplateData, made in one
// buffer: for each placeholder i, the reader's value as t<i> and, when the
// layout has an HTML part, HTML-escaped as h<i>; then syntax, the JSON
// members of the template's character variables.
func chunkData(chunk []bulkEntry, withHTML bool, syntax string) []string {
	n := 0
	for _, e := range chunk {
		n += dataLen(e.msg.Values) + len(syntax) + 1
	}
	b := make([]byte, 0, n)
	ends := make([]int, len(chunk))
	for j, e := range chunk {
		b = appendTemplateData(b, e.msg.Values, withHTML, syntax)
		ends[j] = len(b)
	}
	all, start := string(b), 0
	out := make([]string, len(chunk))
	for j, end := range ends {
		out[j], start = all[start:end], end
	}
	return out
}

// appendTemplateData appends the JSON object of one reader's values and
// the members in syntax.
func appendTemplateData(b []byte, values []string, withHTML bool, syntax string) []byte {
	b = append(b, '{')
	for i, v := range values {
		if i > 0 {
			b = append(b, ',')
		}
		if withHTML {
			b = append(b, `"h`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = appendJSONString(append(b, `":`...), html.EscapeString(v))
			b = append(b, ',')
		}
		b = append(b, `"t`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = appendJSONString(append(b, `":`...), v)
	}
	if syntax != "" {
		if len(values) > 0 {
			b = append(b, ',')
		}
		b = append(b, syntax...)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json writes it.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(append(b, s[last:i]...), `\ufffd`...)
			i++
			last = i
			continue
		}
		b = append(b, s[last:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		last = i
	}
	return append(append(b, s[last:]...), '"')
}

// templateCache keeps the templates of the layouts sent recently: a
// layout serves every reader of its variant, thousands of calls.
type templateCache struct {
	mu sync.Mutex
	m  map[*eml.Layout]*bulkTemplate
}

// maxTemplates bounds the cache: a few digests' variants.
const maxTemplates = 64

func (c *templateCache) get(l *eml.Layout) *bulkTemplate {
	c.mu.Lock()
	t, ok := c.m[l]
	c.mu.Unlock()
	if ok {
		return t
	}
	t = newBulkTemplate(l)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxTemplates {
		c.m = make(map[*eml.Layout]*bulkTemplate)
	}
	c.m[l] = t
	c.mu.Unlock()
	return t
}
