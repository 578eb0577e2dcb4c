package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/feedback"
	"github.com/broadsheet-news/broadsheet/internal/ses"
	"github.com/broadsheet-news/broadsheet/internal/settings"
)

// functionEnv returns the environment the stack gives a function, Globals
// merged, evaluated.
func (e *evaluator) functionEnv(t *testing.T, name string) map[string]string {
	t.Helper()
	var tpl struct {
		Globals struct {
			Function struct {
				Environment struct{ Variables map[string]any }
			}
		}
	}
	if err := json.Unmarshal(templateJSON(t), &tpl); err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{}
	for k, v := range tpl.Globals.Function.Environment.Variables {
		vars[k] = v
	}
	own, _ := path(e.resourceProperties(t, name), "Environment", "Variables").(map[string]any)
	for k, v := range own {
		vars[k] = v
	}
	out := map[string]string{}
	for k, v := range vars {
		s, err := e.str(v)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, k, err)
		}
		out[k] = s
	}
	return out
}

// sesRecorder is an SES v2 endpoint that answers every send with success
// and keeps the FromEmailAddress of each request.
type sesRecorder struct {
	mu   sync.Mutex
	from map[string][]string // by operation: "SendEmail", "SendBulkEmail"
}

func (r *sesRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var in struct {
		FromEmailAddress string
		BulkEmailEntries []json.RawMessage
	}
	_ = json.Unmarshal(body, &in)
	op := "SendEmail"
	if strings.HasSuffix(req.URL.Path, "/outbound-bulk-emails") {
		op = "SendBulkEmail"
	}
	r.mu.Lock()
	r.from[op] = append(r.from[op], in.FromEmailAddress)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if op == "SendEmail" {
		fmt.Fprint(w, `{"MessageId":"m-1"}`)
		return
	}
	results := make([]string, len(in.BulkEmailEntries))
	for i := range results {
		results[i] = fmt.Sprintf(`{"Status":"SUCCESS","MessageId":"m-%d"}`, i)
	}
	fmt.Fprintf(w, `{"BulkEmailEntryResults":[%s]}`, strings.Join(results, ","))
}

// sentFrom sends one email and one bulk email from `from` with the SES
// mailer the functions use, and returns the FromEmailAddress of each
// request, by operation.
func sentFrom(t *testing.T, from string) map[string][]string {
	t.Helper()
	rec := &sesRecorder{from: map[string][]string{}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	client := sesv2.New(sesv2.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  aws.AnonymousCredentials{},
	})
	m := ses.New(client, "broadsheet")
	ctx := context.Background()
	single := &eml.Message{From: from, To: "ada@example.com", Subject: "Confirm", Text: []byte("Confirm: https://x.example/c\n")}
	if _, err := m.Send(ctx, single); err != nil {
		t.Fatalf("Send: %v", err)
	}
	l, err := eml.NewLayout("Daily", []byte("<p>Daily <a href=\"PHxU\">x</a></p>"), []byte("Daily PHxU\n"), "PHxU")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*eml.Message
	for _, to := range []string{"ada@example.com", "bo@example.com"} {
		msgs = append(msgs, &eml.Message{From: from, To: to, Layout: l, Values: []string{"https://x.example/u"}})
	}
	for _, s := range m.SendBulk(ctx, msgs) {
		if s.Err != nil {
			t.Fatalf("SendBulk: %v", s.Err)
		}
	}
	return rec.from
}

// TestSESPolicyNamesTheAddressSent: for each set of parameters, the
// ses:FromAddress each function's SES statements require is the address
// SES reads from the FromEmailAddress the code sends (SendEmail and
// SendBulkEmail), the display name apart: both come from the same
// parameters through the template, settings and the SES mailer. With
// StringEquals, SES matches case and all.
func TestSESPolicyNamesTheAddressSent(t *testing.T) {
	for _, params := range []map[string]string{
		{},
		{"FromAddress": "desk@ledger.example", "FromName": "Ledger Desk"},
		{"FromAddress": "Desk@Ledger.example", "SiteName": `The "Quoted" Times`},
		{"FromName": "Crónica Diária"},
	} {
		e := newEvaluator(t, params)
		for _, fn := range []string{"ApiFunction", "SenderFunction"} {
			t.Run(fmt.Sprintf("%s %v", fn, params), func(t *testing.T) {
				var want []string
				for _, st := range statements(e.resourceProperties(t, fn)) {
					actions := fmt.Sprint(st["Action"])
					if !strings.Contains(actions, "ses:SendEmail") && !strings.Contains(actions, "ses:SendBulkEmail") {
						continue
					}
					v := path(st, "Condition", "StringEquals", "ses:FromAddress")
					s, ok := v.(string)
					if !ok {
						t.Fatalf("statement %v allows %s without a single ses:FromAddress", st["Sid"], actions)
					}
					want = append(want, s)
				}
				if len(want) == 0 {
					t.Fatal("no SES statement")
				}
				env := e.functionEnv(t, fn)
				env[settings.EnvBaseURL] = "https://news.example.com" // not what is checked here
				s, err := settings.FromEnv(func(k string) string { return env[k] })
				if err != nil {
					t.Fatalf("the function's settings: %v", err)
				}
				sent := sentFrom(t, s.From)
				for _, op := range []string{"SendEmail", "SendBulkEmail"} {
					if len(sent[op]) == 0 {
						t.Fatalf("no %s made", op)
					}
					for _, from := range sent[op] {
						a, err := mail.ParseAddress(from)
						if err != nil {
							t.Fatalf("%s FromEmailAddress %q: %v", op, from, err)
						}
						for _, w := range want {
							if a.Address != w {
								t.Errorf("%s sends from %q (address %q); the policy allows ses:FromAddress %q", op, from, a.Address, w)
							}
						}
					}
				}
				name := params["FromName"]
				if name == "" {
					name = e.params["SiteName"]
				}
				a, _ := mail.ParseAddress(sent["SendEmail"][0])
				if a.Name != name {
					t.Errorf("display name %q, want %q", a.Name, name)
				}
			})
		}
	}
	// The form the parameter once documented cannot be deployed: no
	// address with a display name would match the condition.
	for _, v := range []string{"The Daily Broadsheet <news@news.example.com>", "<news@news.example.com>", "news"} {
		if allowed(t, "FromAddress", v) {
			t.Errorf("FromAddress %q is allowed; SES would refuse every send from it", v)
		}
	}
}

// TestConfigurationSetPublishesWhatFeedbackHandles: the configuration
// set's event destination publishes every event type package feedback
// acts on, under the names CloudFormation takes for them.
func TestConfigurationSetPublishesWhatFeedbackHandles(t *testing.T) {
	e := newEvaluator(t, nil)
	props := e.resourceProperties(t, "ConfigurationSetEvents")
	list, _ := path(props, "EventDestination", "MatchingEventTypes").([]any)
	published := map[string]bool{}
	for _, v := range list {
		published[fmt.Sprint(v)] = true
	}
	for event, name := range map[string]string{
		feedback.EventSend: "send", feedback.EventDelivery: "delivery", feedback.EventBounce: "bounce",
		feedback.EventComplaint: "complaint", feedback.EventReject: "reject", feedback.EventRenderingFailure: "renderingFailure",
	} {
		if !published[name] {
			t.Errorf("feedback handles %q events, which the configuration set does not publish (%s)", event, name)
		}
	}
	if got := path(props, "EventDestination", "SnsDestination", "TopicARN"); got != "<FeedbackTopic>" {
		t.Errorf("events go to %v, want the feedback function's topic", got)
	}
}
