package ses_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/ses"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.StopAll()
	os.Exit(code)
}

func digestMessage(to string) *eml.Message {
	return &eml.Message{
		From:      "The Ledger <news@example.com>",
		To:        to,
		ReplyTo:   "Desk <desk@example.com>",
		Subject:   "The Ledger: Thursday — budget passes",
		MessageID: "<daily-2026-11-26.r0001@example.com>",
		Date:      time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC),
		Headers: []eml.Header{
			{Name: "List-Unsubscribe", Value: "<https://news.example.com/unsubscribe?token=abc.def>, <mailto:unsubscribe@example.com?subject=unsubscribe%20abc.def>"},
			{Name: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
			{Name: "List-Id", Value: "<ledger.example.com>"},
		},
		Text: []byte("Budget passes\nhttps://ledger.example.com/budget\n\nUnsubscribe: https://news.example.com/unsubscribe?token=abc.def\n"),
		HTML: []byte(`<p><a href="https://ledger.example.com/budget">Budget passes</a></p>`),
		Tags: map[string]string{"digest": "daily-2026-11-26", "subscriber": "r0001"},
	}
}

// sent returns the messages in the SES stand-in's store addressed to to.
func sent(t *testing.T, to string) []awstest.SentEmail {
	t.Helper()
	var out []awstest.SentEmail
	for _, e := range awstest.SESStore(t) {
		if reflect.DeepEqual(e.Destination.To, []string{to}) {
			out = append(out, e)
		}
	}
	return out
}

func TestSendDigestReachesSES(t *testing.T) {
	m := ses.New(awstest.SESClient(t), "")
	to := awstest.UniqueName(t, "digest") + "@example.com"
	msg := digestMessage(to)
	id, err := m.Send(awstest.Context(t), msg)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	got := sent(t, to)
	if len(got) != 1 {
		t.Fatalf("%d messages to %s in the store, want 1", len(got), to)
	}
	e := got[0]
	if id == "" || e.ID != id {
		t.Errorf("message ID = %q, store has %q", id, e.ID)
	}
	if e.Subject != msg.Subject {
		t.Errorf("subject = %q, want %q", e.Subject, msg.Subject)
	}
	if e.Body.Text != string(msg.Text) {
		t.Errorf("text body = %q, want %q", e.Body.Text, msg.Text)
	}
	if e.Body.HTML != string(msg.HTML) {
		t.Errorf("HTML body = %q, want %q", e.Body.HTML, msg.HTML)
	}
	if !strings.Contains(e.From, "news@example.com") || !strings.Contains(e.From, "The Ledger") {
		t.Errorf("from = %q, want The Ledger <news@example.com>", e.From)
	}
	if !reflect.DeepEqual(e.ReplyTo, []string{`"Desk" <desk@example.com>`}) {
		t.Errorf("reply-to = %q, want the desk", e.ReplyTo)
	}
	for _, h := range msg.Headers {
		if got := e.Header(h.Name); got != h.Value {
			t.Errorf("header %s = %q, want %q", h.Name, got, h.Value)
		}
	}
}

func TestSendTextOnly(t *testing.T) {
	m := ses.New(awstest.SESClient(t), "")
	to := awstest.UniqueName(t, "text") + "@example.com"
	msg := digestMessage(to)
	msg.HTML, msg.Headers, msg.ReplyTo = nil, nil, ""
	if _, err := m.Send(awstest.Context(t), msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	got := sent(t, to)
	if len(got) != 1 {
		t.Fatalf("%d messages to %s in the store, want 1", len(got), to)
	}
	if got[0].Body.Text != string(msg.Text) || got[0].Body.HTML != "" {
		t.Errorf("body = text %q, HTML %q; want the text only", got[0].Body.Text, got[0].Body.HTML)
	}
}

func TestMaxSendRate(t *testing.T) {
	rate, err := ses.MaxSendRate(awstest.Context(t), awstest.SESClient(t))
	if err != nil || rate != 200 {
		t.Fatalf("MaxSendRate = %v, %v; want 200", rate, err)
	}
}

// fakeSES is an SES v2 endpoint that answers SendEmail and SendBulkEmail
// as the test says and records the requests that reached it.
type fakeSES struct {
	requests atomic.Int32
	mu       sync.Mutex
	bodies   [][]byte
	paths    []string
	answer   func(w http.ResponseWriter, r *http.Request)
	// bulk answers SendBulkEmail, given the request body; nil: 404.
	bulk func(w http.ResponseWriter, r *http.Request, body []byte)
}

func (f *fakeSES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.requests.Add(1)
	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	f.paths = append(f.paths, r.URL.Path)
	f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v2/email/outbound-emails" && f.answer != nil:
		f.answer(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/v2/email/outbound-bulk-emails" && f.bulk != nil:
		f.bulk(w, r, body)
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}

// sesError answers as SES v2's REST-JSON protocol does: the error type in
// x-amzn-ErrorType (with its trailing URL) and the message in the body.
func sesError(status int, code, message string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", code+":http://internal.amazon.com/coral/com.amazonaws.sesv2/")
		w.Header().Set("X-Amzn-Requestid", "3ba9e4b7-local")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message":%q}`, message)
	}
}

func fakeMailer(t *testing.T, f *fakeSES, configSet string) *ses.Mailer {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return mailerAt(srv.URL, configSet, nil)
}

func mailerAt(url, configSet string, httpClient sesv2.HTTPClient) *ses.Mailer {
	client := sesv2.NewFromConfig(awstest.Config(), func(o *sesv2.Options) {
		o.BaseEndpoint = aws.String(url)
		if httpClient != nil {
			o.HTTPClient = httpClient
		}
	})
	m := ses.New(client, configSet)
	ses.NoBackoff(m)
	return m
}

func TestSendRequest(t *testing.T) {
	f := &fakeSES{answer: func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"MessageId":"0100018c-ses-id"}`)
	}}
	m := fakeMailer(t, f, "broadsheet-events")
	msg := digestMessage("reader@example.com")
	msg.Tags = map[string]string{"digest": "daily/2026 11:26", "subscriber": strings.Repeat("r", 300), "": "x", "empty": ""}
	msg.Headers = append(msg.Headers, eml.Header{Name: "X-Edition", Value: "Édition spéciale"})
	id, err := m.Send(context.Background(), msg)
	if err != nil || id != "0100018c-ses-id" {
		t.Fatalf("send = %q, %v; want the ID SES returned", id, err)
	}
	var got struct {
		ConfigurationSetName string
		FromEmailAddress     string
		ReplyToAddresses     []string
		Destination          struct{ ToAddresses []string }
		EmailTags            []struct{ Name, Value string }
		Content              struct {
			Simple struct {
				Subject struct{ Data, Charset string }
				Body    struct {
					Text, Html struct{ Data, Charset string }
				}
				Headers []struct{ Name, Value string }
			}
			Raw *json.RawMessage
		}
	}
	if err := json.Unmarshal(f.bodies[0], &got); err != nil {
		t.Fatalf("request body %s: %v", f.bodies[0], err)
	}
	if got.ConfigurationSetName != "broadsheet-events" {
		t.Errorf("configuration set = %q, want broadsheet-events", got.ConfigurationSetName)
	}
	if got.FromEmailAddress != `"The Ledger" <news@example.com>` {
		t.Errorf("from = %q", got.FromEmailAddress)
	}
	if !reflect.DeepEqual(got.Destination.ToAddresses, []string{"reader@example.com"}) {
		t.Errorf("to = %v", got.Destination.ToAddresses)
	}
	wantTags := []struct{ Name, Value string }{{"digest", "daily_2026_11_26"}, {"subscriber", strings.Repeat("r", 256)}}
	if !reflect.DeepEqual(got.EmailTags, wantTags) {
		t.Errorf("tags = %v, want %v", got.EmailTags, wantTags)
	}
	s := got.Content.Simple
	if got.Content.Raw != nil {
		t.Errorf("raw content sent; want simple content only")
	}
	if s.Subject.Data != msg.Subject || s.Subject.Charset != "UTF-8" {
		t.Errorf("subject = %+v", s.Subject)
	}
	if s.Body.Text.Data != string(msg.Text) || s.Body.Html.Data != string(msg.HTML) || s.Body.Text.Charset != "UTF-8" || s.Body.Html.Charset != "UTF-8" {
		t.Errorf("body = %+v", s.Body)
	}
	wantHeaders := []struct{ Name, Value string }{
		{"List-Unsubscribe", msg.Headers[0].Value},
		{"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"},
		{"List-Id", "<ledger.example.com>"},
		{"X-Edition", "=?utf-8?q?=C3=89dition_sp=C3=A9ciale?="},
	}
	if !reflect.DeepEqual(s.Headers, wantHeaders) {
		t.Errorf("headers = %v, want %v", s.Headers, wantHeaders)
	}
}

func TestSendInvalidMessageIsRejected(t *testing.T) {
	f := &fakeSES{answer: func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"MessageId":"x"}`) }}
	m := fakeMailer(t, f, "")
	msg := digestMessage("reader@example.com")
	msg.Headers = append(msg.Headers, eml.Header{Name: "X-Evil", Value: "a\r\nBcc: victim@example.com"})
	_, err := m.Send(context.Background(), msg)
	if !errors.Is(err, eml.ErrRejected) {
		t.Fatalf("send error = %v, want eml.ErrRejected", err)
	}
	if n := f.requests.Load(); n != 0 {
		t.Errorf("%d requests reached SES, want 0", n)
	}
}

func TestSendErrorMapping(t *testing.T) {
	sentinels := []error{eml.ErrThrottled, eml.ErrRejected, eml.ErrPaused, eml.ErrUnknownOutcome}
	tests := []struct {
		name     string
		answer   func(http.ResponseWriter, *http.Request)
		want     error // nil: none of the sentinels
		requests int32 // how many reached SES: retries happen on throttling only
		typed    any   // the SDK's error type, still reachable through the chain
	}{
		{"too many requests", sesError(429, "TooManyRequestsException", "Too many requests."), eml.ErrThrottled, 3, new(*types.TooManyRequestsException)},
		{"throttling, rate", sesError(400, "ThrottlingException", "Maximum sending rate exceeded."), eml.ErrThrottled, 3, nil},
		{"throttling, query-style code", sesError(400, "Throttling", "Maximum sending rate exceeded."), eml.ErrThrottled, 3, nil},
		{"limit exceeded, rate", sesError(400, "LimitExceededException", "Maximum sending rate exceeded."), eml.ErrThrottled, 3, new(*types.LimitExceededException)},
		{"daily quota", sesError(400, "ThrottlingException", "Daily message quota exceeded."), eml.ErrPaused, 1, nil},
		{"message rejected", sesError(400, "MessageRejected", "Email address is not verified."), eml.ErrRejected, 1, new(*types.MessageRejected)},
		{"mail-from not verified", sesError(400, "MailFromDomainNotVerifiedException", "MAIL FROM domain not verified."), eml.ErrRejected, 1, new(*types.MailFromDomainNotVerifiedException)},
		{"bad request", sesError(400, "BadRequestException", "Header value too long."), eml.ErrRejected, 1, new(*types.BadRequestException)},
		{"sending paused", sesError(400, "SendingPausedException", "Sending paused for this account."), eml.ErrPaused, 1, new(*types.SendingPausedException)},
		{"account suspended", sesError(400, "AccountSuspendedException", "Account suspended."), eml.ErrPaused, 1, new(*types.AccountSuspendedException)},
		{"configuration set not found", sesError(404, "NotFoundException", "Configuration set does not exist."), nil, 1, new(*types.NotFoundException)},
		{"internal failure: not retried", sesError(500, "InternalFailure", "Internal failure."), nil, 1, nil},
		{"unreadable success", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"MessageId":`) }, eml.ErrUnknownOutcome, 1, nil},
		{"connection dropped after the request", func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}, eml.ErrUnknownOutcome, 1, nil},
		{"throttled, then rejected", func() func(http.ResponseWriter, *http.Request) {
			var n atomic.Int32
			return func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					sesError(429, "TooManyRequestsException", "Too many requests.")(w, r)
					return
				}
				sesError(400, "MessageRejected", "Email address is on the suppression list.")(w, r)
			}
		}(), eml.ErrRejected, 2, new(*types.MessageRejected)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSES{answer: tt.answer}
			m := fakeMailer(t, f, "")
			id, err := m.Send(context.Background(), digestMessage("reader@example.com"))
			if err == nil {
				t.Fatalf("send = %q, nil; want an error", id)
			}
			for _, s := range sentinels {
				if got, want := errors.Is(err, s), s == tt.want; got != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", err, s, got, want)
				}
			}
			if n := f.requests.Load(); n != tt.requests {
				t.Errorf("%d requests reached SES, want %d", n, tt.requests)
			}
			if tt.typed != nil && !errors.As(err, tt.typed) {
				t.Errorf("error %v does not unwrap to %T", err, tt.typed)
			}
		})
	}
}

func TestSendNoAnswerIsUnknown(t *testing.T) {
	release := make(chan struct{})
	f := &fakeSES{answer: func(w http.ResponseWriter, r *http.Request) {
		select { // accept the request and never answer
		case <-r.Context().Done():
		case <-release:
		}
	}}
	m := fakeMailer(t, f, "")
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := m.Send(ctx, digestMessage("reader@example.com"))
	if !errors.Is(err, eml.ErrUnknownOutcome) {
		t.Fatalf("send error = %v, want eml.ErrUnknownOutcome", err)
	}
	if n := f.requests.Load(); n != 1 {
		t.Errorf("%d requests reached SES, want exactly 1: a timeout is never resent", n)
	}
}

func TestSendTimeoutBoundsTheCall(t *testing.T) {
	release := make(chan struct{})
	f := &fakeSES{answer: func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}}
	m := fakeMailer(t, f, "")
	m.Timeout = 200 * time.Millisecond
	t.Cleanup(func() { close(release) })
	start := time.Now()
	_, err := m.Send(context.Background(), digestMessage("reader@example.com"))
	if !errors.Is(err, eml.ErrUnknownOutcome) {
		t.Fatalf("send error = %v, want eml.ErrUnknownOutcome", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("send took %v with a 200ms timeout", d)
	}
}

func TestSendConnectionRefusedIsNotSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	m := mailerAt(url, "", nil)
	_, err = m.Send(context.Background(), digestMessage("reader@example.com"))
	if err == nil {
		t.Fatal("send to a closed port succeeded")
	}
	for _, s := range []error{eml.ErrThrottled, eml.ErrRejected, eml.ErrPaused, eml.ErrUnknownOutcome} {
		if errors.Is(err, s) {
			t.Errorf("send error %v wraps %v; a refused connection sent nothing", err, s)
		}
	}
}

func TestSendCanceledBeforeIsNotSent(t *testing.T) {
	f := &fakeSES{answer: func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"MessageId":"x"}`) }}
	m := fakeMailer(t, f, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := m.Send(ctx, digestMessage("reader@example.com"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, eml.ErrUnknownOutcome) {
		t.Fatalf("send error = %v, want context.Canceled and not an unknown outcome", err)
	}
	if n := f.requests.Load(); n != 0 {
		t.Errorf("%d requests reached SES, want 0", n)
	}
}

// doer is an HTTP client that does not report to httptrace.
type doer func(*http.Request) (*http.Response, error)

func (d doer) Do(r *http.Request) (*http.Response, error) { return d(r) }

func TestSendUntracedTransport(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		unknown bool
	}{
		{"read reset", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"dial refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mailerAt("http://127.0.0.1:9", "", doer(func(*http.Request) (*http.Response, error) { return nil, tt.err }))
			_, err := m.Send(context.Background(), digestMessage("reader@example.com"))
			if err == nil {
				t.Fatal("send succeeded")
			}
			if got := errors.Is(err, eml.ErrUnknownOutcome); got != tt.unknown {
				t.Errorf("send error %v: unknown outcome = %v, want %v", err, got, tt.unknown)
			}
		})
	}
}

func TestTagValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"daily-2026-11-26", "daily-2026-11-26"},
		{"r_0001", "r_0001"},
		{"a b/c:d.e@f", "a_b_c_d_e_f"},
		{"é", "_"},
		{"", ""},
		{strings.Repeat("x", 300), strings.Repeat("x", 256)},
		{strings.Repeat("é", 300), strings.Repeat("_", 256)},
	}
	for _, tt := range tests {
		if got := ses.TagValue(tt.in); got != tt.want {
			t.Errorf("TagValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
