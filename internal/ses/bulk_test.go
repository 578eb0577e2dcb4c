package ses_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/ses"
)

// The placeholders render.Edition uses.
const (
	phUnsubscribe = "BSxUNSUBSCRIBExURL"
	phPreferences = "BSxPREFERENCESxURL"
)

// hostileLayout is an edition whose article text is full of what SES
// templates read as syntax: "{{" in the headline, a triple mustache, an
// escaped mustache, CSS braces, backslashes.
func hostileLayout(t testing.TB) *eml.Layout {
	t.Helper()
	l, err := eml.NewLayout(
		`The Ledger: {{budget}} passes, {{{raw}}} \{{x}} }} \ {`,
		[]byte(`<html><head><style>p { color: #333 } a{color:red}</style></head><body>`+
			`<h1>Template {{name}} bug &amp; {{#if x}}fix{{/if}}</h1><p>C:\{{dir}}\{{{x}}}</p>`+
			`<p><a href="`+phUnsubscribe+`">Unsubscribe</a> · <a href="`+phPreferences+`">Preferences</a></p>`+
			`<p>{`+phUnsubscribe+`}</p></body></html>`),
		[]byte("Template {{name}} bug & {{#if x}}fix{{/if}}\nC:\\{{dir}}\\{{{x}}}}\n\n"+
			"Unsubscribe: "+phUnsubscribe+"\nPreferences: "+phPreferences+"\n{"+phUnsubscribe+"}\n"),
		phUnsubscribe, phPreferences)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// textLayout is a text-only edition with a plain subject.
func textLayout(t testing.TB) *eml.Layout {
	t.Helper()
	l, err := eml.NewLayout("The Ledger: Thursday (text)", nil,
		[]byte("Budget passes\nhttps://ledger.example.com/budget\n\nUnsubscribe: "+phUnsubscribe+"\nPreferences: "+phPreferences+"\n"),
		phUnsubscribe, phPreferences)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// readerMessage is the digest message of one reader, as the engine makes
// it from a layout: the reader's own links as values and in
// List-Unsubscribe, the shared list headers, the digest and reader tags.
func readerMessage(l *eml.Layout, to, subscriberID string) *eml.Message {
	unsub := "https://news.example.com/unsubscribe?token=" + subscriberID + ".sig&k=1"
	return &eml.Message{
		From:      "The Ledger <news@example.com>",
		To:        to,
		ReplyTo:   "Desk <desk@example.com>",
		MessageID: "<daily-2026-11-26." + subscriberID + "@example.com>",
		Date:      time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC),
		Headers: []eml.Header{
			{Name: "List-Unsubscribe", Value: "<" + unsub + ">, <mailto:unsubscribe@example.com?subject=unsubscribe%20" + subscriberID + ".sig>"},
			{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
			{Name: "List-Id", Value: "<ledger.example.com>"},
			{Name: "Precedence", Value: "bulk"},
		},
		Layout: l,
		Values: []string{unsub, "https://news.example.com/preferences?token=" + subscriberID + `.sig&x="{{y}}"`},
		Tags:   map[string]string{"digest": "daily-2026-11-26", "subscriber": subscriberID},
	}
}

// cleanLinks gives msg's reader links that HTML escaping leaves as they
// are, as real readers' signed links are.
func cleanLinks(msg *eml.Message) *eml.Message {
	id := msg.Tags["subscriber"]
	unsub := "https://news.example.com/unsubscribe?token=AQAAAABt" + id
	msg.Values = []string{unsub, "https://news.example.com/preferences?token=AQAAAABt" + id}
	msg.Headers[0].Value = "<" + unsub + ">"
	return msg
}

func TestSendBulkReachesSES(t *testing.T) {
	m := ses.New(awstest.SESClient(t), "")
	a, b, c := hostileLayout(t), textLayout(t), hostileLayout(t)
	prefix := awstest.UniqueName(t, "bulk")
	var msgs []*eml.Message
	for i := range 7 {
		id := fmt.Sprintf("r%04d", i)
		switch i % 3 {
		case 0:
			msgs = append(msgs, readerMessage(a, prefix+"-"+id+"@example.com", id))
		case 1:
			msgs = append(msgs, readerMessage(b, prefix+"-"+id+"@example.com", id))
		case 2: // links that need no escaping: one variable each
			msgs = append(msgs, cleanLinks(readerMessage(c, prefix+"-"+id+"@example.com", id)))
		}
	}
	res := m.SendBulk(awstest.Context(t), msgs)
	if len(res) != len(msgs) {
		t.Fatalf("%d results for %d messages", len(res), len(msgs))
	}
	for i, msg := range msgs {
		if res[i].Err != nil || res[i].MessageID == "" {
			t.Errorf("message %d: %+v, want a message ID", i, res[i])
			continue
		}
		got := sent(t, msg.To)
		if len(got) != 1 {
			t.Errorf("%d messages to %s in the store, want 1", len(got), msg.To)
			continue
		}
		e := got[0]
		htmlBody, text := msg.Bodies()
		if e.ID != res[i].MessageID {
			t.Errorf("message %d: ID %q, store has %q", i, res[i].MessageID, e.ID)
		}
		if e.Subject != msg.Layout.Subject {
			t.Errorf("message %d: subject = %q, want %q", i, e.Subject, msg.Layout.Subject)
		}
		if e.Body.Text != string(text) {
			t.Errorf("message %d: text body =\n%s\nwant\n%s", i, e.Body.Text, text)
		}
		if e.Body.HTML != string(htmlBody) {
			t.Errorf("message %d: HTML body =\n%s\nwant\n%s", i, e.Body.HTML, htmlBody)
		}
		// The reader's own link, in both parts (escaped in the HTML).
		if !strings.Contains(e.Body.Text, msg.Values[0]) || (msg.Layout != b && !strings.Contains(e.Body.HTML, `href="`+strings.ReplaceAll(msg.Values[0], "&", "&amp;")+`"`)) {
			t.Errorf("message %d: the reader's unsubscribe link is missing from a part", i)
		}
		for _, h := range msg.Headers {
			if got := e.Header(h.Name); got != h.Value {
				t.Errorf("message %d: header %s = %q, want %q", i, h.Name, got, h.Value)
			}
		}
		if !strings.Contains(e.From, "news@example.com") || !reflect.DeepEqual(e.ReplyTo, []string{`"Desk" <desk@example.com>`}) {
			t.Errorf("message %d: from %q, reply-to %q", i, e.From, e.ReplyTo)
		}
	}
}

// bulkRequest is the SendBulkEmail request JSON as the SES v2 API
// reference shapes it.
type bulkRequest struct {
	FromEmailAddress     string
	ReplyToAddresses     []string
	ConfigurationSetName string
	DefaultEmailTags     []nameValue
	DefaultContent       struct {
		Template struct {
			TemplateName    *string
			TemplateArn     *string
			TemplateContent struct {
				Subject string
				Html    *string
				Text    string
			}
			TemplateData string
			Headers      []nameValue
		}
	}
	BulkEmailEntries []struct {
		Destination struct {
			ToAddresses  []string
			CcAddresses  []string
			BccAddresses []string
		}
		ReplacementEmailContent struct {
			ReplacementTemplate struct{ ReplacementTemplateData string }
		}
		ReplacementHeaders []nameValue
		ReplacementTags    []nameValue
	}
}

type nameValue struct{ Name, Value string }

// decodeBulk decodes a SendBulkEmail request, refusing fields the API
// does not have.
func decodeBulk(t *testing.T, body []byte) bulkRequest {
	t.Helper()
	var r bulkRequest
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		t.Fatalf("bulk request %s: %v", body, err)
	}
	return r
}

// answerBulk answers each entry with status(j), numbering the message IDs
// of the call n.
func answerBulk(status func(j int) (string, string)) func(http.ResponseWriter, *http.Request, []byte) {
	var calls atomic.Int32
	return func(w http.ResponseWriter, _ *http.Request, body []byte) {
		n := calls.Add(1)
		var req struct{ BulkEmailEntries []json.RawMessage }
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		type result struct {
			Status    string
			MessageId string `json:",omitempty"`
			Error     string `json:",omitempty"`
		}
		var out struct{ BulkEmailEntryResults []result }
		for j := range req.BulkEmailEntries {
			s, e := status(j)
			r := result{Status: s, Error: e}
			if s == "SUCCESS" {
				r.MessageId = fmt.Sprintf("bulk-%d-%d", n, j)
			}
			out.BulkEmailEntryResults = append(out.BulkEmailEntryResults, r)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

func success(int) (string, string) { return "SUCCESS", "" }

// answerByAddress answers every entry with success and the ID "id-" and
// its address, whatever order the calls come in.
func answerByAddress(w http.ResponseWriter, _ *http.Request, body []byte) {
	var req struct {
		BulkEmailEntries []struct {
			Destination struct{ ToAddresses []string }
		}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var results []string
	for _, e := range req.BulkEmailEntries {
		results = append(results, fmt.Sprintf(`{"Status":"SUCCESS","MessageId":"id-%s"}`, strings.Join(e.Destination.ToAddresses, ",")))
	}
	fmt.Fprintf(w, `{"BulkEmailEntryResults":[%s]}`, strings.Join(results, ","))
}

var mustache = regexp.MustCompile(`\{\{([A-Za-z0-9]+)\}\}`)

// renderAsSES renders an SES inline template for one bulk entry as AWS
// documents it, not as the stand-in does (which merges the two data sets
// key by key and renders a missing variable as empty text):
//
//   - the entry's ReplacementTemplateData is the data; the call's
//     TemplateData is used only "when replacement data is not specified";
//   - inline templates take "only simple substitutions", so anything
//     else Handlebars reads as syntax ({{{, }}}, \{{, {{#if}}) fails;
//   - a variable the data lacks is a rendering failure: SES "validates
//     that the template data you send includes the required variables".
//
// The error is what a Rendering Failure event would say.
func renderAsSES(tmpl, entryData, defaultData string) (string, error) {
	raw := entryData
	if raw == "" {
		raw = defaultData
	}
	data := map[string]string{}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &data); err != nil {
			return "", fmt.Errorf("template data %q: %v", raw, err)
		}
	}
	if rest := mustache.ReplaceAllString(tmpl, ""); strings.ContainsAny(rest, `{}\`) {
		return "", fmt.Errorf("template holds syntax besides simple variables: %q", rest)
	}
	var missing []string
	out := mustache.ReplaceAllStringFunc(tmpl, func(m string) string {
		v, ok := data[m[2:len(m)-2]]
		if !ok {
			missing = append(missing, m)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("rendering failure: no value for %v in %s", missing, raw)
	}
	return out, nil
}

// checkEntriesRender renders each entry of a SendBulkEmail request with
// its own data, as SES would, and compares the result with the message it
// was made from.
func checkEntriesRender(t *testing.T, r bulkRequest, message func(to string) *eml.Message) {
	t.Helper()
	tmpl := r.DefaultContent.Template
	for _, e := range r.BulkEmailEntries {
		to := e.Destination.ToAddresses[0]
		msg := message(to)
		own := e.ReplacementEmailContent.ReplacementTemplate.ReplacementTemplateData
		if own == "" {
			t.Errorf("%s: no ReplacementTemplateData", to)
			continue
		}
		htmlBody, text := msg.Bodies()
		parts := []struct {
			name, tmpl, want string
		}{{"subject", tmpl.TemplateContent.Subject, msg.Layout.Subject}, {"text", tmpl.TemplateContent.Text, string(text)}}
		if tmpl.TemplateContent.Html != nil {
			parts = append(parts, struct{ name, tmpl, want string }{"HTML", *tmpl.TemplateContent.Html, string(htmlBody)})
		}
		for _, p := range parts {
			got, err := renderAsSES(p.tmpl, own, tmpl.TemplateData)
			if err != nil {
				t.Errorf("%s: %s: %v", to, p.name, err)
				continue
			}
			if got != p.want {
				t.Errorf("%s: %s renders as\n%s\nwant\n%s", to, p.name, got, p.want)
			}
		}
	}
}

func TestSendBulkRequest(t *testing.T) {
	f := &fakeSES{
		bulk:   answerByAddress,
		answer: func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"MessageId":"single"}`) },
	}
	m := fakeMailer(t, f, "broadsheet-events")
	a, b := hostileLayout(t), textLayout(t)
	var msgs []*eml.Message
	for i := range 120 {
		msgs = append(msgs, readerMessage(a, fmt.Sprintf("r%04d@example.com", i), fmt.Sprintf("r%04d", i)))
	}
	msgs = append(msgs, readerMessage(b, "text1@example.com", "t0001"), readerMessage(b, "text2@example.com", "t0002"))
	c := hostileLayout(t)
	msgs = append(msgs, cleanLinks(readerMessage(c, "clean1@example.com", "c0001")), cleanLinks(readerMessage(c, "clean2@example.com", "c0002")))
	noLayout := digestMessage("plain@example.com")
	msgs = append(msgs, noLayout)
	invalid := readerMessage(a, "not an address", "bad")
	msgs = append(msgs, invalid)

	res := m.SendBulk(context.Background(), msgs)

	// 120 readers of a: 50 + 50 + 20; 2 of b; 2 of c; 1 SendEmail; none
	// for the invalid one. Calls for different layouts run concurrently,
	// in any order.
	var bulkBodies [][]byte
	var singles int
	for i, p := range f.paths {
		if strings.HasSuffix(p, "/outbound-bulk-emails") {
			bulkBodies = append(bulkBodies, f.bodies[i])
		} else {
			singles++
		}
	}
	if len(bulkBodies) != 5 || singles != 1 {
		t.Fatalf("%d bulk and %d single calls, want 5 and 1", len(bulkBodies), singles)
	}
	byAddress := map[string]int{}
	for i, msg := range msgs[:124] {
		byAddress[msg.To] = i
		if res[i].Err != nil || res[i].MessageID != "id-"+msg.To {
			t.Errorf("result %d = %+v, want message ID id-%s", i, res[i], msg.To)
		}
	}
	if res[124].Err != nil || res[124].MessageID != "single" {
		t.Errorf("message without a layout: %+v, want sent by SendEmail", res[124])
	}
	if r := res[125]; !errors.Is(r.Err, eml.ErrRejected) || r.MessageID != "" {
		t.Errorf("invalid message: %+v, want eml.ErrRejected", r)
	}
	if strings.Contains(res[125].Err.Error(), "not an address") {
		t.Errorf("error %q names the recipient", res[125].Err)
	}

	var n int
	var sizes []int
	seen := map[string]bool{}
	for call, body := range bulkBodies {
		r := decodeBulk(t, body)
		sizes = append(sizes, len(r.BulkEmailEntries))
		l := msgs[byAddress[r.BulkEmailEntries[0].Destination.ToAddresses[0]]].Layout
		if r.FromEmailAddress != `"The Ledger" <news@example.com>` || !reflect.DeepEqual(r.ReplyToAddresses, []string{`"Desk" <desk@example.com>`}) {
			t.Errorf("call %d: from %q, reply-to %q", call, r.FromEmailAddress, r.ReplyToAddresses)
		}
		if r.ConfigurationSetName != "broadsheet-events" {
			t.Errorf("call %d: configuration set %q", call, r.ConfigurationSetName)
		}
		tmpl := r.DefaultContent.Template
		if tmpl.TemplateName != nil || tmpl.TemplateArn != nil {
			t.Errorf("call %d: names a stored template, want inline content", call)
		}
		if (tmpl.TemplateContent.Html != nil) != (l.HTML != nil) {
			t.Errorf("call %d: HTML part %v, layout has one: %v", call, tmpl.TemplateContent.Html != nil, l.HTML != nil)
		}
		wantShared := []nameValue{{"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"}, {"List-Id", "<ledger.example.com>"}, {"Precedence", "bulk"}}
		if !reflect.DeepEqual(tmpl.Headers, wantShared) {
			t.Errorf("call %d: template headers = %v, want %v", call, tmpl.Headers, wantShared)
		}
		if want := []nameValue{{"digest", "daily-2026-11-26"}}; !reflect.DeepEqual(r.DefaultEmailTags, want) {
			t.Errorf("call %d: default tags = %v, want %v", call, r.DefaultEmailTags, want)
		}
		for _, e := range r.BulkEmailEntries {
			to := e.Destination.ToAddresses[0]
			msg := msgs[byAddress[to]]
			if msg.Layout != l || seen[to] {
				t.Errorf("call %d: entry for %s: another layout's reader, or a reader sent twice", call, to)
			}
			seen[to] = true
			n++
			if !reflect.DeepEqual(e.Destination.ToAddresses, []string{msg.To}) || e.Destination.CcAddresses != nil || e.Destination.BccAddresses != nil {
				t.Errorf("entry %d: destination %+v", byAddress[to], e.Destination)
			}
			if want := []nameValue{{"List-Unsubscribe", msg.Headers[0].Value}}; !reflect.DeepEqual(e.ReplacementHeaders, want) {
				t.Errorf("entry %d: headers = %v, want %v", byAddress[to], e.ReplacementHeaders, want)
			}
			if want := []nameValue{{"digest", "daily-2026-11-26"}, {"subscriber", msg.Tags["subscriber"]}}; !reflect.DeepEqual(e.ReplacementTags, want) {
				t.Errorf("entry %d: tags = %v, want %v", byAddress[to], e.ReplacementTags, want)
			}
			data := map[string]string{}
			if err := json.Unmarshal([]byte(e.ReplacementEmailContent.ReplacementTemplate.ReplacementTemplateData), &data); err != nil {
				t.Fatalf("entry %d: ReplacementTemplateData: %v", byAddress[to], err)
			}
			// Two variables a placeholder when escaping changes a value
			// of the call, else one; the character variables of a
			// layout whose text has braces or backslashes.
			wantKeys := []string{"bs", "h0", "h1", "lb", "rb", "t0", "t1"}
			switch l {
			case b:
				wantKeys = []string{"t0", "t1"}
			case c:
				wantKeys = []string{"bs", "lb", "rb", "t0", "t1"}
			}
			var keys []string
			for k := range data {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !reflect.DeepEqual(keys, wantKeys) {
				t.Errorf("entry %d: data keys %v, want %v", byAddress[to], keys, wantKeys)
			}
		}
		checkEntriesRender(t, r, func(to string) *eml.Message { return msgs[byAddress[to]] })
	}
	if n != 124 {
		t.Errorf("%d entries in the bulk calls, want 124", n)
	}
	slices.Sort(sizes)
	if want := []int{2, 2, 20, 50, 50}; !reflect.DeepEqual(sizes, want) {
		t.Errorf("calls of %v entries, want %v", sizes, want)
	}
}

func TestSendBulkSize(t *testing.T) {
	f := &fakeSES{bulk: answerBulk(success)}
	m := fakeMailer(t, f, "")
	m.BulkSize = 14 // an account that sends 14 a second
	l := textLayout(t)
	var msgs []*eml.Message
	for i := range 30 {
		msgs = append(msgs, readerMessage(l, fmt.Sprintf("r%d@example.com", i), fmt.Sprintf("r%d", i)))
	}
	for i, r := range m.SendBulk(context.Background(), msgs) {
		if r.Err != nil {
			t.Errorf("message %d: %v", i, r.Err)
		}
	}
	var sizes []int
	for _, body := range f.bodies {
		sizes = append(sizes, len(decodeBulk(t, body).BulkEmailEntries))
	}
	slices.Sort(sizes)
	if want := []int{2, 14, 14}; !reflect.DeepEqual(sizes, want) {
		t.Errorf("calls of %v entries, want %v", sizes, want)
	}
}

func TestSendBulkEntryStatuses(t *testing.T) {
	tests := []struct {
		status string
		want   error // nil: none of the sentinels
	}{
		{"MESSAGE_REJECTED", eml.ErrRejected},
		{"MAIL_FROM_DOMAIN_NOT_VERIFIED", eml.ErrRejected},
		{"INVALID_PARAMETER", eml.ErrRejected},
		{"INVALID_PARAMETER_VALUE", eml.ErrRejected},
		{"ACCOUNT_THROTTLED", eml.ErrThrottled},
		{"ACCOUNT_DAILY_QUOTA_EXCEEDED", eml.ErrPaused},
		{"ACCOUNT_SUSPENDED", eml.ErrPaused},
		{"ACCOUNT_SENDING_PAUSED", eml.ErrPaused},
		{"CONFIGURATION_SET_SENDING_PAUSED", eml.ErrPaused},
		{"TRANSIENT_FAILURE", nil},
		{"FAILED", nil},
		{"TEMPLATE_NOT_FOUND", nil},
		{"CONFIGURATION_SET_NOT_FOUND", nil},
		{"INVALID_SENDING_POOL_NAME", nil},
		{"SOMETHING_NEW", eml.ErrUnknownOutcome},
	}
	// Entry j of one call answers tests[j/2] when j is even, success when odd;
	// the last entry gets no result at all.
	f := &fakeSES{bulk: func(w http.ResponseWriter, _ *http.Request, body []byte) {
		var req struct{ BulkEmailEntries []json.RawMessage }
		_ = json.Unmarshal(body, &req)
		var results []string
		for j := range len(req.BulkEmailEntries) - 1 {
			if j%2 == 0 {
				results = append(results, fmt.Sprintf(`{"Status":%q,"Error":"what SES says"}`, tests[j/2].status))
			} else {
				results = append(results, fmt.Sprintf(`{"Status":"SUCCESS","MessageId":"ok-%d"}`, j))
			}
		}
		fmt.Fprintf(w, `{"BulkEmailEntryResults":[%s]}`, strings.Join(results, ","))
	}}
	m := fakeMailer(t, f, "")
	l := hostileLayout(t)
	var msgs []*eml.Message
	for j := range 2*len(tests) + 1 {
		msgs = append(msgs, readerMessage(l, fmt.Sprintf("r%d@example.com", j), fmt.Sprintf("r%d", j)))
	}
	res := m.SendBulk(context.Background(), msgs)
	sentinels := []error{eml.ErrThrottled, eml.ErrRejected, eml.ErrPaused, eml.ErrUnknownOutcome}
	for j, r := range res {
		switch {
		case j == len(res)-1:
			if !errors.Is(r.Err, eml.ErrUnknownOutcome) {
				t.Errorf("entry without a result: %+v, want eml.ErrUnknownOutcome", r)
			}
		case j%2 == 1:
			if r.Err != nil || r.MessageID != fmt.Sprintf("ok-%d", j) {
				t.Errorf("entry %d: %+v, want success", j, r)
			}
		default:
			tt := tests[j/2]
			if r.Err == nil {
				t.Errorf("%s: no error", tt.status)
				continue
			}
			for _, s := range sentinels {
				if got, want := errors.Is(r.Err, s), s == tt.want; got != want {
					t.Errorf("%s: errors.Is(%v, %v) = %v, want %v", tt.status, r.Err, s, got, want)
				}
			}
			if r.MessageID != "" || strings.Contains(r.Err.Error(), "@") {
				t.Errorf("%s: %+v: want no ID and no address", tt.status, r)
			}
		}
	}
}

func TestSendBulkCallErrors(t *testing.T) {
	tests := []struct {
		name     string
		bulk     func(http.ResponseWriter, *http.Request, []byte)
		want     error // for every entry; nil: none of the sentinels
		requests int32 // that reached SES
	}{
		{"throttled, every attempt", func(w http.ResponseWriter, r *http.Request, _ []byte) {
			sesError(429, "TooManyRequestsException", "Too many requests.")(w, r)
		}, eml.ErrThrottled, 3},
		{"rate exceeded, every attempt", func(w http.ResponseWriter, r *http.Request, _ []byte) {
			sesError(400, "ThrottlingException", "Maximum sending rate exceeded.")(w, r)
		}, eml.ErrThrottled, 3},
		{"daily quota", func(w http.ResponseWriter, r *http.Request, _ []byte) {
			sesError(400, "ThrottlingException", "Daily message quota exceeded.")(w, r)
		}, eml.ErrPaused, 1},
		{"sending paused", func(w http.ResponseWriter, r *http.Request, _ []byte) {
			sesError(400, "SendingPausedException", "Sending paused for this account.")(w, r)
		}, eml.ErrPaused, 1},
		{"internal failure", func(w http.ResponseWriter, r *http.Request, _ []byte) {
			sesError(500, "InternalFailure", "Internal failure.")(w, r)
		}, nil, 1},
		{"connection dropped after the request", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		}, eml.ErrUnknownOutcome, 1},
		{"unreadable success", func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			fmt.Fprint(w, `{"BulkEmailEntryResults":[`)
		}, eml.ErrUnknownOutcome, 1},
	}
	sentinels := []error{eml.ErrThrottled, eml.ErrRejected, eml.ErrPaused, eml.ErrUnknownOutcome}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSES{bulk: tt.bulk}
			m := fakeMailer(t, f, "")
			l := hostileLayout(t)
			msgs := []*eml.Message{readerMessage(l, "a@example.com", "a"), readerMessage(l, "b@example.com", "b")}
			for i, r := range m.SendBulk(context.Background(), msgs) {
				if r.Err == nil {
					t.Fatalf("message %d: %+v, want an error", i, r)
				}
				for _, s := range sentinels {
					if got, want := errors.Is(r.Err, s), s == tt.want; got != want {
						t.Errorf("message %d: errors.Is(%v, %v) = %v, want %v", i, r.Err, s, got, want)
					}
				}
			}
			if n := f.requests.Load(); n != tt.requests {
				t.Errorf("%d requests reached SES, want %d", n, tt.requests)
			}
		})
	}
}

func TestSendBulkThrottledThenSent(t *testing.T) {
	var calls atomic.Int32
	ok := answerBulk(success)
	f := &fakeSES{bulk: func(w http.ResponseWriter, r *http.Request, body []byte) {
		if calls.Add(1) == 1 {
			sesError(429, "TooManyRequestsException", "Too many requests.")(w, r)
			return
		}
		ok(w, r, body)
	}}
	m := fakeMailer(t, f, "")
	l := textLayout(t)
	res := m.SendBulk(context.Background(), []*eml.Message{readerMessage(l, "a@example.com", "a"), readerMessage(l, "b@example.com", "b")})
	for i, r := range res {
		if r.Err != nil || r.MessageID != fmt.Sprintf("bulk-1-%d", i) {
			t.Errorf("message %d: %+v, want sent on the second attempt", i, r)
		}
	}
	if n := f.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestSendBulkBadRequestFallsBackToSend(t *testing.T) {
	var singles atomic.Int32
	f := &fakeSES{
		bulk: func(w http.ResponseWriter, r *http.Request, _ []byte) {
			sesError(400, "BadRequestException", "Template contains unsupported operations.")(w, r)
		},
		answer: func(w http.ResponseWriter, r *http.Request) {
			if singles.Add(1) == 2 {
				sesError(400, "MessageRejected", "Email address is on the suppression list.")(w, r)
				return
			}
			fmt.Fprint(w, `{"MessageId":"single"}`)
		},
	}
	m := fakeMailer(t, f, "")
	l := hostileLayout(t)
	res := m.SendBulk(context.Background(), []*eml.Message{
		readerMessage(l, "a@example.com", "a"), readerMessage(l, "b@example.com", "b"), readerMessage(l, "c@example.com", "c"),
	})
	if res[0].MessageID != "single" || res[0].Err != nil || res[2].MessageID != "single" || res[2].Err != nil {
		t.Errorf("results %+v, want the first and last sent one by one", res)
	}
	if !errors.Is(res[1].Err, eml.ErrRejected) {
		t.Errorf("second: %+v, want its own rejection", res[1])
	}
	if n := f.requests.Load(); n != 4 {
		t.Errorf("%d requests, want 1 bulk and 3 single", n)
	}
}

func TestSendBulkCanceledBeforeIsNotSent(t *testing.T) {
	f := &fakeSES{bulk: answerBulk(success)}
	m := fakeMailer(t, f, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l := textLayout(t)
	for _, r := range m.SendBulk(ctx, []*eml.Message{readerMessage(l, "a@example.com", "a")}) {
		if !errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, eml.ErrUnknownOutcome) {
			t.Errorf("result %+v, want context.Canceled", r)
		}
	}
	if n := f.requests.Load(); n != 0 {
		t.Errorf("%d requests reached SES, want 0", n)
	}
}

// benchSES answers SendEmail and SendBulkEmail after reading every byte,
// as the bench's sink does, counting a bulk call's entries cheaply.
func benchSES(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/v2/email/outbound-emails" {
		fmt.Fprint(w, `{"MessageId":"bench"}`)
		return
	}
	n := bytes.Count(body, []byte(`"Destination":`))
	var b strings.Builder
	b.WriteString(`{"BulkEmailEntryResults":[`)
	for j := range n {
		if j > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"Status":"SUCCESS","MessageId":"bench-%d"}`, j)
	}
	b.WriteString("]}")
	io.WriteString(w, b.String())
}

// BenchmarkSend50 sends 50 readers per iteration to a local SES endpoint:
// of one edition with one SendBulkEmail, of six variants (six calls), and
// with 50 SendEmail calls.
func BenchmarkSend50(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(benchSES))
	defer srv.Close()
	client := sesv2.NewFromConfig(awstest.Config(), func(o *sesv2.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.HTTPClient = awshttp.NewBuildableClient()
	})
	m := ses.New(client, "broadsheet")
	l := benchLayout(b)
	msgs := make([]*eml.Message, 50)
	for i := range msgs {
		msgs[i] = cleanLinks(readerMessage(l, fmt.Sprintf("r%04d@example.com", i), fmt.Sprintf("r%04d", i)))
	}
	// The same 50 readers spread over six variants, as a send task of the
	// bench's digest holds them: six calls of eight or nine.
	var variants [6]*eml.Layout
	for i := range variants {
		variants[i] = benchLayout(b)
	}
	mixed := make([]*eml.Message, 50)
	for i := range mixed {
		mixed[i] = cleanLinks(readerMessage(variants[i%6], fmt.Sprintf("r%04d@example.com", i), fmt.Sprintf("r%04d", i)))
	}
	ctx := context.Background()
	// Wall time per recipient, and the process's CPU time per recipient
	// (the endpoint's included), which a busy machine disturbs less.
	report := func(b *testing.B, cpu0 time.Duration) {
		n := float64(b.N * len(msgs))
		b.ReportMetric(float64(b.Elapsed().Microseconds())/n, "µs/recipient")
		b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/n, "cpu-µs/recipient")
	}
	b.Run("bulk", func(b *testing.B) {
		cpu0 := processCPU()
		for b.Loop() {
			for _, r := range m.SendBulk(ctx, msgs) {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
		report(b, cpu0)
	})
	b.Run("bulk-6-variants", func(b *testing.B) {
		cpu0 := processCPU()
		for b.Loop() {
			for _, r := range m.SendBulk(ctx, mixed) {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
		report(b, cpu0)
	})
	b.Run("single", func(b *testing.B) {
		cpu0 := processCPU()
		for b.Loop() {
			for _, msg := range msgs {
				if _, err := m.Send(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
		}
		report(b, cpu0)
	})
}

// processCPU returns the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchLayout is an edition of about the bench's size: ten articles,
// 13 KB of HTML and text.
func benchLayout(tb testing.TB) *eml.Layout {
	var h, t strings.Builder
	h.WriteString(`<html><head><style>body{font-family:Georgia,serif} p{margin:0 0 1em}</style></head><body>`)
	for i := range 10 {
		fmt.Fprintf(&h, `<h2><a href="https://ledger.example.com/2026/11/26/article-%d">Article %d: the council votes on the budget</a></h2>`, i, i)
		fmt.Fprintf(&h, `<p>%s</p>`, strings.Repeat("The council met on Thursday and voted on the budget. ", 12))
		fmt.Fprintf(&t, "Article %d: the council votes on the budget\nhttps://ledger.example.com/2026/11/26/article-%d\n%s\n\n", i, i, strings.Repeat("The council met on Thursday and voted on the budget. ", 6))
	}
	h.WriteString(`<p><a href="` + phUnsubscribe + `">Unsubscribe</a> · <a href="` + phPreferences + `">Preferences</a></p></body></html>`)
	t.WriteString("Unsubscribe: " + phUnsubscribe + "\nPreferences: " + phPreferences + "\n")
	l, err := eml.NewLayout("The Ledger: Thursday — budget passes", []byte(h.String()), []byte(t.String()), phUnsubscribe, phPreferences)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// TestSendBulkTemplateSyntaxInText sends editions whose text holds what
// SES templates read as syntax through the stand-in, which renders with
// Handlebars: each must arrive as it was written, and the reader's link
// spliced in beside it.
func TestSendBulkTemplateSyntaxInText(t *testing.T) {
	texts := []string{
		"{{name}}",
		"{{{name}}}",
		"{{#if x}}y{{/if}}",
		`\{{name}}`,
		`\\{{name}}`,
		"}}}",
		"{{!-- comment --}}",
		"{{> partial}}",
		"{" + phUnsubscribe + "}",
		"{{" + phUnsubscribe + "}}",
		`\` + phUnsubscribe,
	}
	m := ses.New(awstest.SESClient(t), "")
	prefix := awstest.UniqueName(t, "syntax")
	var msgs []*eml.Message
	for i, s := range texts {
		l, err := eml.NewLayout("Subject "+s, []byte("<p>"+s+"</p><a href=\""+phUnsubscribe+"\">u</a>"), []byte(s+"\n"+phUnsubscribe+"\n"), phUnsubscribe)
		if err != nil {
			t.Fatal(err)
		}
		msg := readerMessage(l, fmt.Sprintf("%s-%d@example.com", prefix, i), fmt.Sprintf("r%d", i))
		msg.Values = msg.Values[:1]
		msgs = append(msgs, msg)
	}
	for i, r := range m.SendBulk(awstest.Context(t), msgs) {
		msg := msgs[i]
		if r.Err != nil {
			t.Errorf("%q: %v", texts[i], r.Err)
			continue
		}
		got := sent(t, msg.To)
		if len(got) != 1 {
			t.Errorf("%q: %d messages in the store, want 1", texts[i], len(got))
			continue
		}
		htmlBody, text := msg.Bodies()
		if got[0].Subject != msg.Layout.Subject || got[0].Body.Text != string(text) || got[0].Body.HTML != string(htmlBody) {
			t.Errorf("%q arrived as subject %q, text %q, HTML %q; want %q, %q, %q",
				texts[i], got[0].Subject, got[0].Body.Text, got[0].Body.HTML, msg.Layout.Subject, text, htmlBody)
		}
	}
}

func TestSendBulkVariantsAtOnce(t *testing.T) {
	var inFlight, most atomic.Int32
	four := make(chan struct{})
	var once sync.Once
	ok := answerBulk(success)
	f := &fakeSES{bulk: func(w http.ResponseWriter, r *http.Request, body []byte) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n == 4 {
			once.Do(func() { close(four) })
		}
		select { // hold each call until four are in flight
		case <-four:
		case <-time.After(2 * time.Second):
		}
		ok(w, r, body)
	}}
	m := fakeMailer(t, f, "")
	var variants [6]*eml.Layout
	for i := range variants {
		variants[i] = textLayout(t)
	}
	var msgs []*eml.Message
	for i := range 12 { // two readers of each variant
		msgs = append(msgs, readerMessage(variants[i%6], fmt.Sprintf("r%d@example.com", i), fmt.Sprintf("r%d", i)))
	}
	for i, r := range m.SendBulk(context.Background(), msgs) {
		if r.Err != nil {
			t.Errorf("message %d: %v", i, r.Err)
		}
	}
	if n := f.requests.Load(); n != 6 {
		t.Errorf("%d calls, want 6 (one a variant)", n)
	}
	if n := most.Load(); n != 4 {
		t.Errorf("at most %d calls at once, want 4", n)
	}
}

// TestSendBulkEachEntryRendersAlone sends editions whose headlines hold
// what SES templates read as syntax, "{{", "}}", "\" and "{{{", and
// renders each entry of each call with its own ReplacementTemplateData
// alone, as SES does: every variable the template names must be there,
// and the result must be the reader's message exactly. Readers whose
// links need HTML escaping and readers whose links do not are both sent,
// since they make different templates.
func TestSendBulkEachEntryRendersAlone(t *testing.T) {
	headlines := []string{
		"Budget {{passes}}",
		"Closing }} braces",
		`C:\newsroom\{{x}}`,
		"Triple {{{raw}}} mustache",
		`\{{escaped}} and \\{{double}}`,
		"{ lone } braces {{",
	}
	f := &fakeSES{bulk: answerByAddress}
	m := fakeMailer(t, f, "")
	var msgs []*eml.Message
	byAddress := map[string]*eml.Message{}
	for i, h := range headlines {
		htmlBody := []byte("<h1>" + h + "</h1><p>" + h + `</p><a href="` + phUnsubscribe + `">Unsubscribe</a> <a href="` + phPreferences + `">Preferences</a>`)
		text := []byte(h + "\n\nUnsubscribe: " + phUnsubscribe + "\nPreferences: " + phPreferences + "\n")
		for _, withHTML := range []bool{true, false} {
			hb := htmlBody
			if !withHTML {
				hb = nil
			}
			l, err := eml.NewLayout("The Ledger: "+h, hb, text, phUnsubscribe, phPreferences)
			if err != nil {
				t.Fatal(err)
			}
			for k := range 3 {
				id := fmt.Sprintf("h%d%v%d", i, withHTML, k)
				msg := readerMessage(l, id+"@example.com", id)
				if k == 2 {
					msg = cleanLinks(msg)
				}
				msgs = append(msgs, msg)
				byAddress[msg.To] = msg
			}
		}
	}
	for i, r := range m.SendBulk(context.Background(), msgs) {
		if r.Err != nil {
			t.Errorf("message %d: %v", i, r.Err)
		}
	}
	calls := 0
	for i, p := range f.paths {
		if !strings.HasSuffix(p, "/outbound-bulk-emails") {
			t.Errorf("a %s call; every message has a layout", p)
			continue
		}
		calls++
		checkEntriesRender(t, decodeBulk(t, f.bodies[i]), func(to string) *eml.Message { return byAddress[to] })
	}
	if calls != 2*len(headlines) {
		t.Errorf("%d bulk calls, want %d (one a layout)", calls, 2*len(headlines))
	}
}

// TestRenderAsSES checks the model of SES the bulk tests render with:
// an entry's data is not merged with the defaults, and a missing variable
// fails.
func TestRenderAsSES(t *testing.T) {
	for _, tc := range []struct {
		tmpl, entry, defaults, want string
		fails                       bool
	}{
		{"{{a}}{{lb}}", `{"a":"x","lb":"{"}`, "", "x{", false},
		{"{{a}}{{lb}}", `{"a":"x"}`, `{"lb":"{"}`, "", true}, // the stand-in would render "x{"
		{"{{a}}", "", `{"a":"d"}`, "d", false},
		{"{{{a}}}", `{"a":"x"}`, "", "", true},
		{`\{{a}}`, `{"a":"x"}`, "", "", true},
	} {
		got, err := renderAsSES(tc.tmpl, tc.entry, tc.defaults)
		if (err != nil) != tc.fails || got != tc.want {
			t.Errorf("%q with %s (defaults %s): %q, %v; want %q, failure %v", tc.tmpl, tc.entry, tc.defaults, got, err, tc.want, tc.fails)
		}
	}
}
