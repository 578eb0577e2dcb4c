// Package functions_test runs Broadsheet's AWS path end to end: four of
// the five real Lambda bootstraps (all but ingest) under aws-lambda-rie (the emulator `sam local`
// uses), talking to DynamoDB Local and the SQS and SES stand-ins through
// AWS_ENDPOINT_URL_* with no code change. The test plays API Gateway,
// the SQS event source mapping and SNS.
package functions_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/dynamo"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.StopAll()
	os.Exit(code)
}

const baseURL = "https://news.ledger.example"

type stack struct {
	t        *testing.T
	table    string
	queueURL string
	store    *dynamo.Store
	api      *awstest.Lambda
	digest   *awstest.Lambda
	sender   *awstest.Lambda
	feedback *awstest.Lambda
	editor   string
}

// TestSubscribeToInboxOnAWS: subscribe → confirm → submit → digest → SQS →
// sender → SES, then a bounce through SNS → feedback. The digest lands in
// the SES stand-in for the confirmed reader only, with the unsubscribe
// headers; the bounce suppresses the reader.
func TestSubscribeToInboxOnAWS(t *testing.T) {
	s := startStack(t)
	awstest.ClearSESStore(t)

	// Two readers sign up; only Ada confirms.
	for _, email := range []string{"ada@example.com", "bola@example.com"} {
		res := s.http("POST", "/subscribe", "application/json", `{"email":"`+email+`","frequency":"daily"}`, "")
		if res.StatusCode != 202 {
			t.Fatalf("subscribe %s: %d %s", email, res.StatusCode, res.Body)
		}
	}
	// The api function sends the confirmation before it answers (a
	// Lambda is frozen once it has), and the SES stand-in stores a message
	// before it answers: it is there now.
	confirm := oneSES(t, func(e awstest.SentEmail) bool {
		return e.Destination.To[0] == "ada@example.com" && strings.Contains(e.Subject, "Confirm")
	})
	link := regexp.MustCompile(regexp.QuoteMeta(baseURL) + `/confirm\?token=([A-Za-z0-9_%-]+)`).FindStringSubmatch(confirm.Body.Text)
	if link == nil {
		t.Fatalf("no confirmation link in:\n%s", confirm.Body.Text)
	}
	tok, _ := url.QueryUnescape(link[1])
	if res := s.http("POST", "/confirm", "application/x-www-form-urlencoded", "token="+url.QueryEscape(tok), ""); res.StatusCode != 200 {
		t.Fatalf("confirm: %d %s", res.StatusCode, res.Body)
	}

	// A named stage serves the same routes under its prefix.
	if res := s.httpStage("prod", "GET", "/healthz", "", "", ""); res.StatusCode != 200 || !strings.Contains(res.Body, `"ok"`) {
		t.Fatalf("GET /prod/healthz: %d %s", res.StatusCode, res.Body)
	}

	// The editor submits two articles and sends the daily digest; the api
	// invokes the digest function, which fans out through SQS.
	for _, a := range []string{
		`{"url":"https://ledger.example/budget","title":"Budget passes","summary":"By 61 votes to 38.","sections":["politics"]}`,
		`{"url":"https://ledger.example/derby","title":"Derby ends level","summary":"Two goals each.","sections":["sport"]}`,
	} {
		if res := s.http("POST", "/api/articles", "application/json", a, s.editor); res.StatusCode != 201 {
			t.Fatalf("submit article: %d %s", res.StatusCode, res.Body)
		}
	}
	res := s.http("POST", "/api/digests", "application/json", `{"frequency":"daily","send":true}`, s.editor)
	if res.StatusCode != 201 {
		t.Fatalf("create digest: %d %s", res.StatusCode, res.Body)
	}
	var digest struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(res.Body), &digest)

	// Play the SQS event source mapping until the digest is sent.
	deadline := time.Now().Add(60 * time.Second)
	var st struct {
		Status   string              `json:"status"`
		Counters newsletter.Counters `json:"counters"`
	}
	for {
		s.drainQueue()
		res := s.http("GET", "/api/digests/"+digest.ID, "", "", s.editor)
		if err := json.Unmarshal([]byte(res.Body), &st); err != nil {
			t.Fatalf("digest status: %d %s", res.StatusCode, res.Body)
		}
		if st.Status == "sent" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("digest %s still %s, counters %+v\napi:\n%s\ndigest:\n%s\nsender:\n%s", digest.ID, st.Status, st.Counters, s.api.Logs(), s.digest.Logs(), s.sender.Logs())
		}
	}
	if st.Counters.Total != 1 || st.Counters.Sent != 1 {
		t.Fatalf("counters %+v, want 1 row, sent (the unconfirmed reader gets nothing)", st.Counters)
	}
	digests := sesMatching(t, func(e awstest.SentEmail) bool { return e.Header("List-Unsubscribe-Post") != "" })
	if len(digests) != 1 || digests[0].Destination.To[0] != "ada@example.com" {
		t.Fatalf("%d digests in SES, want 1 to ada: %+v", len(digests), digests)
	}
	d := digests[0]
	if lu := d.Header("List-Unsubscribe"); !strings.Contains(lu, "<"+baseURL+"/unsubscribe?token=") || !strings.Contains(lu, "<mailto:") {
		t.Errorf("List-Unsubscribe %q lacks the https link or the mailto", lu)
	}
	if d.Header("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" || d.Header("List-Id") == "" {
		t.Errorf("headers %+v", d.Headers)
	}
	for _, want := range []string{"Budget passes", "Derby ends level"} {
		if !strings.Contains(d.Body.Text, want) || !strings.Contains(d.Body.HTML, want) {
			t.Errorf("digest text or HTML lacks %q", want)
		}
	}

	// SES reports a permanent bounce through SNS: the reader is suppressed
	// and the ledger row says bounced.
	ada, err := s.store.SubscriberByEmail(awstest.Context(t), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	s.feedback.InvokeOK(t, snsBounce(t, "ada@example.com", digest.ID, ada.ID))
	if ada, _ = s.store.Subscriber(awstest.Context(t), ada.ID); ada.Status != newsletter.StatusBounced {
		t.Errorf("after a permanent bounce: status %s, want bounced", ada.Status)
	}
	row, err := s.store.Delivery(awstest.Context(t), digest.ID, ada.ID)
	if err != nil || row.Status != newsletter.DeliveryBounced {
		t.Errorf("ledger row %+v (%v), want bounced", row, err)
	}
}

func startStack(t *testing.T) *stack {
	t.Helper()
	ctx := awstest.Context(t)
	s := &stack{t: t, table: awstest.UniqueName(t, "e2e")}
	if err := dynamo.CreateTable(ctx, awstest.DynamoDBClient(t), s.table); err != nil {
		t.Fatal(err)
	}
	s.store = dynamo.New(awstest.DynamoDBClient(t), s.table)
	q, err := awstest.SQSClient(t).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.UniqueName(t, "send"))})
	if err != nil {
		t.Fatal(err)
	}
	s.queueURL = aws.ToString(q.QueueUrl)

	secret, hash, err := token.NewEditorSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.CreateEditorToken(ctx, &newsletter.EditorToken{ID: "e2e", Name: "e2e", Hash: hash, Scopes: []string{newsletter.ScopeEdit, newsletter.ScopeSend}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s.editor = secret

	env := []string{
		"BROADSHEET_TABLE=" + s.table,
		"BROADSHEET_QUEUE_URL=" + s.queueURL,
		"BROADSHEET_BASE_URL=" + baseURL,
		"BROADSHEET_SITE_NAME=The Ledger",
		"BROADSHEET_FROM=The Ledger <news@ledger.example>",
		"BROADSHEET_POSTAL_ADDRESS=1 Marina Road, Lagos",
		"BROADSHEET_SIGNING_KEY=" + strings.Repeat("5e", 32),
		"AWS_ENDPOINT_URL_DYNAMODB=" + awstest.DynamoDB(t).Endpoint,
		"AWS_ENDPOINT_URL_SQS=" + awstest.SQS(t).Endpoint,
		"AWS_ENDPOINT_URL_SESV2=" + awstest.SES(t).Endpoint,
	}
	boots := map[string]string{}
	for _, name := range []string{"api", "digest", "sender", "feedback"} {
		boots[name] = awstest.BuildBootstrap(t, name)
	}
	s.digest = awstest.StartLambda(t, boots["digest"], env...)
	// The api invokes the digest function through the Lambda API; the
	// emulator serves that API's Invoke path for its one function.
	s.api = awstest.StartLambda(t, boots["api"], append(env, "BROADSHEET_DIGEST_FUNCTION=function", "AWS_ENDPOINT_URL_LAMBDA="+s.digest.Endpoint)...)
	s.sender = awstest.StartLambda(t, boots["sender"], env...)
	s.feedback = awstest.StartLambda(t, boots["feedback"], env...)
	return s
}

// http sends one request through the api function as API Gateway's HTTP
// API (payload v2) would, on its $default stage.
func (s *stack) http(method, path, contentType, body, bearer string) events.APIGatewayV2HTTPResponse {
	s.t.Helper()
	return s.httpStage("$default", method, path, contentType, body, bearer)
}

// httpStage is http through a stage: a named one puts its name before the
// path in rawPath, as API Gateway does.
func (s *stack) httpStage(stage, method, path, contentType, body, bearer string) events.APIGatewayV2HTTPResponse {
	s.t.Helper()
	if stage != "$default" {
		path = "/" + stage + path
	}
	u, _ := url.Parse(path)
	headers := map[string]string{"user-agent": "e2e-test"}
	if contentType != "" {
		headers["content-type"] = contentType
	}
	if bearer != "" {
		headers["authorization"] = "Bearer " + bearer
	}
	req := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: u.Path, RawQueryString: u.RawQuery,
		Headers: headers, Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			DomainName: "news.ledger.example", Stage: stage, RequestID: fmt.Sprintf("e2e-%d", time.Now().UnixNano()),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: u.Path, Protocol: "HTTP/1.1", SourceIP: "192.0.2.10", UserAgent: "e2e-test"},
		},
	}
	var res events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(s.api.InvokeOK(s.t, req), &res); err != nil {
		s.t.Fatal(err)
	}
	return res
}

// drainQueue does what the SQS event source mapping does: receive up to
// 10 messages, invoke the sender, delete what it did not report failed.
func (s *stack) drainQueue() {
	s.t.Helper()
	ctx := awstest.Context(s.t)
	client := awstest.SQSClient(s.t)
	for {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(s.queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			s.t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return
		}
		ev := events.SQSEvent{}
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
				EventSource: "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:000000000000:send", AWSRegion: awstest.Region,
			})
		}
		var res events.SQSEventResponse
		if err := json.Unmarshal(s.sender.InvokeOK(s.t, ev), &res); err != nil {
			s.t.Fatal(err)
		}
		failed := map[string]bool{}
		for _, f := range res.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		var del []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			if !failed[aws.ToString(m.MessageId)] {
				del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
			}
		}
		if len(del) > 0 {
			if _, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(s.queueURL), Entries: del}); err != nil {
				s.t.Fatal(err)
			}
		}
	}
}

func sesMatching(t *testing.T, match func(awstest.SentEmail) bool) []awstest.SentEmail {
	var out []awstest.SentEmail
	for _, e := range awstest.SESStore(t) {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// oneSES returns the one email in the SES stand-in that matches, failing
// the test unless there is exactly one.
func oneSES(t *testing.T, match func(awstest.SentEmail) bool) awstest.SentEmail {
	t.Helper()
	m := sesMatching(t, match)
	if len(m) != 1 {
		t.Fatalf("%d matching emails in the SES stand-in, want 1; it holds %+v", len(m), awstest.SESStore(t))
	}
	return m[0]
}

// snsBounce is an SNS event carrying an SES permanent-bounce notification
// for one recipient, tagged as Broadsheet's sender tags its messages.
func snsBounce(t *testing.T, email, digestID, subscriberID string) events.SNSEvent {
	t.Helper()
	msg, err := json.Marshal(map[string]any{
		"eventType": "Bounce",
		"bounce": map[string]any{
			"bounceType": "Permanent", "bounceSubType": "General", "feedbackId": "e2e-" + subscriberID,
			"timestamp":         time.Now().UTC().Format(time.RFC3339),
			"bouncedRecipients": []map[string]any{{"emailAddress": email, "action": "failed", "status": "5.1.1"}},
		},
		"mail": map[string]any{
			"messageId": "e2e-message", "destination": []string{email}, "source": "news@ledger.example",
			"tags": map[string][]string{"digest": {digestID}, "subscriber": {subscriberID}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return events.SNSEvent{Records: []events.SNSEventRecord{{
		EventSource: "aws:sns", EventVersion: "1.0",
		SNS: events.SNSEntity{Type: "Notification", MessageID: "e2e", TopicArn: "arn:aws:sns:us-east-1:000000000000:feedback", Message: string(msg), Timestamp: time.Now()},
	}}}
}
