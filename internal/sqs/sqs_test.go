package sqs_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/sqs"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.StopAll()
	os.Exit(code)
}

// newQueue creates a fresh queue on the SQS stand-in.
func newQueue(t *testing.T) (*awssqs.Client, string) {
	t.Helper()
	client := awstest.SQSClient(t)
	out, err := client.CreateQueue(awstest.Context(t), &awssqs.CreateQueueInput{QueueName: aws.String(awstest.UniqueName(t, "tasks"))})
	if err != nil {
		t.Fatalf("create queue: %v", err)
	}
	return client, *out.QueueUrl
}

// receive long-polls the queue until want messages arrived or wait passed,
// deleting what it reads.
func receive(t *testing.T, client *awssqs.Client, url string, want int, wait time.Duration) []delivery.Task {
	t.Helper()
	ctx := awstest.Context(t)
	var tasks []delivery.Task
	deadline := time.Now().Add(wait)
	for len(tasks) < want && time.Now().Before(deadline) {
		out, err := client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		for _, m := range out.Messages {
			var task delivery.Task
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &task); err != nil {
				t.Fatalf("message body %q: %v", aws.ToString(m.Body), err)
			}
			tasks = append(tasks, task)
			if _, err := client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("delete: %v", err)
			}
		}
	}
	return tasks
}

func sortTasks(ts []delivery.Task) {
	slices.SortFunc(ts, func(a, b delivery.Task) int { return strings.Compare(a.DigestID, b.DigestID) })
}

func TestEnqueueSendsEveryTask(t *testing.T) {
	client, url := newQueue(t)
	q := sqs.NewQueue(client, url)
	var want []delivery.Task
	for i := range 25 {
		task := delivery.Task{Kind: delivery.KindSend, DigestID: fmt.Sprintf("daily-%02d", i), SubscriberIDs: []string{fmt.Sprintf("r%d", i), "r-common"}}
		if i%5 == 0 {
			task = delivery.Task{Kind: delivery.KindFanout, DigestID: fmt.Sprintf("daily-%02d", i)}
		}
		want = append(want, task)
	}
	if err := q.Enqueue(awstest.Context(t), want...); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	got := receive(t, client, url, len(want), 10*time.Second)
	sortTasks(got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("received %d tasks:\n%+v\nwant %d:\n%+v", len(got), got, len(want), want)
	}
	if more := receive(t, client, url, 1, time.Second); len(more) != 0 {
		t.Errorf("received %d extra messages: %+v", len(more), more)
	}
}

func TestEnqueueDelaysRetries(t *testing.T) {
	client, url := newQueue(t)
	q := sqs.NewQueue(client, url)
	retry := delivery.Task{Kind: delivery.KindSend, DigestID: "d", SubscriberIDs: []string{"r1"}, Attempt: 2} // 2–4 s
	first := delivery.Task{Kind: delivery.KindSend, DigestID: "e", SubscriberIDs: []string{"r2"}}
	if err := q.Enqueue(awstest.Context(t), retry, first); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	got := receive(t, client, url, 2, time.Second)
	if !reflect.DeepEqual(got, []delivery.Task{first}) {
		t.Fatalf("within a second got %+v, want only the first attempt %+v", got, first)
	}
	got = receive(t, client, url, 1, 6*time.Second)
	if !reflect.DeepEqual(got, []delivery.Task{retry}) {
		t.Fatalf("later got %+v, want the delayed retry %+v", got, retry)
	}
}

func TestDelay(t *testing.T) {
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{0, 0, 0},
		{-1, 0, 0},
		{1, time.Second, 2 * time.Second},
		{2, 2 * time.Second, 4 * time.Second},
		{5, 16 * time.Second, 32 * time.Second},
		{9, 256 * time.Second, 512 * time.Second},
		{10, 450 * time.Second, 900 * time.Second},
		{1000, 450 * time.Second, 900 * time.Second},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := sqs.Delay(tt.attempt)
			if d < tt.min || d > tt.max || d%time.Second != 0 {
				t.Fatalf("Delay(%d) = %v, want whole seconds in [%v, %v]", tt.attempt, d, tt.min, tt.max)
			}
			seen[d] = true
		}
		if tt.max-tt.min >= 2*time.Second && len(seen) < 2 {
			t.Errorf("Delay(%d) always %v: no jitter", tt.attempt, sqs.Delay(tt.attempt))
		}
	}
}

// fakeSQS answers SendMessageBatch in the SQS JSON protocol, failing the
// entries fail chooses.
type fakeSQS struct {
	mu    sync.Mutex
	calls [][]string // entry IDs per call
	// fail returns the error code for an entry on a call (from 0) and
	// whether it is the sender's fault; "" means success.
	fail func(id string, call int) (code string, senderFault bool)
	// status, when set, fails every call with that HTTP status.
	status int
}

func (f *fakeSQS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if got := r.Header.Get("X-Amz-Target"); got != "AmazonSQS.SendMessageBatch" {
		http.Error(w, "unexpected target "+got, http.StatusBadRequest)
		return
	}
	var in struct {
		Entries []struct{ Id, MessageBody string }
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	call := len(f.calls)
	var ids []string
	for _, e := range in.Entries {
		ids = append(ids, e.Id)
	}
	f.calls = append(f.calls, ids)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if f.status != 0 {
		w.Header().Set("X-Amzn-Query-Error", "AWS.SimpleQueueService.NonExistentQueue;Sender")
		w.WriteHeader(f.status)
		fmt.Fprint(w, `{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}`)
		return
	}
	type ok struct{ Id, MessageId, MD5OfMessageBody string }
	type failed struct {
		Id, Code, Message string
		SenderFault       bool
	}
	out := struct {
		Successful []ok
		Failed     []failed
	}{Successful: []ok{}, Failed: []failed{}}
	for _, e := range in.Entries {
		if code, sender := f.fail(e.Id, call); code != "" {
			out.Failed = append(out.Failed, failed{Id: e.Id, Code: code, Message: "injected", SenderFault: sender})
			continue
		}
		sum := md5.Sum([]byte(e.MessageBody))
		out.Successful = append(out.Successful, ok{Id: e.Id, MessageId: "m-" + e.Id, MD5OfMessageBody: hex.EncodeToString(sum[:])})
	}
	_ = json.NewEncoder(w).Encode(out)
}

func fakeClient(t *testing.T, f *fakeSQS) *awssqs.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return awssqs.NewFromConfig(awstest.Config(), func(o *awssqs.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.RetryMaxAttempts = 1
	})
}

func tasks(n int) []delivery.Task {
	var ts []delivery.Task
	for i := range n {
		ts = append(ts, delivery.Task{Kind: delivery.KindSend, DigestID: "d", SubscriberIDs: []string{fmt.Sprint(i)}})
	}
	return ts
}

func TestEnqueueRetriesOnlyFailedEntries(t *testing.T) {
	f := &fakeSQS{fail: func(id string, call int) (string, bool) {
		switch {
		case id == "3" && call == 0: // transient, once
			return "InternalError", false
		case id == "7": // transient, every time
			return "InternalError", false
		case id == "8": // the sender's fault: never sent again
			return "InvalidMessageContents", true
		}
		return "", false
	}}
	q := sqs.NewQueue(fakeClient(t, f), "http://queue.example/q")
	err := q.Enqueue(context.Background(), tasks(12)...)
	if err == nil || !strings.Contains(err.Error(), "2 of 12 tasks not enqueued") {
		t.Fatalf("enqueue error = %v, want one saying 2 of 12 tasks not enqueued", err)
	}
	want := [][]string{
		{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
		{"3", "7"}, {"7"}, {"7"},
		{"10", "11"},
	}
	if !reflect.DeepEqual(f.calls, want) {
		t.Errorf("entries per call = %v, want %v", f.calls, want)
	}
}

func TestEnqueueStopsWhenTheCallFails(t *testing.T) {
	f := &fakeSQS{status: http.StatusBadRequest}
	q := sqs.NewQueue(fakeClient(t, f), "http://queue.example/q")
	err := q.Enqueue(context.Background(), tasks(25)...)
	if err == nil || !strings.Contains(err.Error(), "25 of 25 tasks not enqueued") {
		t.Fatalf("enqueue error = %v, want one saying 25 of 25 tasks not enqueued", err)
	}
	if len(f.calls) != 1 {
		t.Errorf("%d calls, want 1: the batches after a failed call are not tried", len(f.calls))
	}
}

func TestEnqueueRefusesOversizedTask(t *testing.T) {
	f := &fakeSQS{fail: func(string, int) (string, bool) { return "", false }}
	q := sqs.NewQueue(fakeClient(t, f), "http://queue.example/q")
	big := delivery.Task{Kind: delivery.KindSend, DigestID: strings.Repeat("x", sqs.MaxMessageBytes)}
	err := q.Enqueue(context.Background(), append(tasks(2), big)...)
	if err == nil || !strings.Contains(err.Error(), "1 of 3 tasks not enqueued") {
		t.Fatalf("enqueue error = %v, want one saying 1 of 3 tasks not enqueued", err)
	}
	if want := [][]string{{"0", "1"}}; !reflect.DeepEqual(f.calls, want) {
		t.Errorf("entries per call = %v, want %v", f.calls, want)
	}
}

// fakeHandler answers by digest ID and records what it was given.
type fakeHandler struct {
	mu     sync.Mutex
	seen   []delivery.Task
	answer map[string]func(delivery.Task) ([]string, error)
}

func (h *fakeHandler) Handle(_ context.Context, t delivery.Task) ([]string, error) {
	h.mu.Lock()
	h.seen = append(h.seen, t)
	h.mu.Unlock()
	if a := h.answer[t.DigestID]; a != nil {
		return a(t)
	}
	return nil, nil
}

func record(id, body string) events.SQSMessage {
	return events.SQSMessage{MessageId: id, Body: body}
}

func taskJSON(t *testing.T, task delivery.Task) string {
	t.Helper()
	b, err := json.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func failures(res events.SQSEventResponse) []string {
	var ids []string
	for _, f := range res.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

func TestHandleMixedBatch(t *testing.T) {
	client, url := newQueue(t)
	q := sqs.NewQueue(client, url)
	var logs bytes.Buffer
	q.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	h := &fakeHandler{answer: map[string]func(delivery.Task) ([]string, error){
		"fanout-fails":   func(delivery.Task) ([]string, error) { return nil, errors.New("store down") },
		"partial":        func(delivery.Task) ([]string, error) { return []string{"r2", "r4"}, nil },
		"send-fails":     func(delivery.Task) ([]string, error) { return nil, errors.New("digest is a draft") },
		"partial-errors": func(t delivery.Task) ([]string, error) { return t.SubscriberIDs, errors.New("read digest") },
	}}
	ev := events.SQSEvent{Records: []events.SQSMessage{
		record("m-good", taskJSON(t, delivery.Task{Kind: delivery.KindSend, DigestID: "good", SubscriberIDs: []string{"r1"}})),
		record("m-garbage", "{not json"),
		record("m-unknown-kind", `{"kind":"reticulate","digestId":"x"}`),
		record("m-no-digest", `{"kind":"send"}`),
		record("m-fanout-fails", taskJSON(t, delivery.Task{Kind: delivery.KindFanout, DigestID: "fanout-fails"})),
		record("m-fanout-ok", taskJSON(t, delivery.Task{Kind: delivery.KindFanout, DigestID: "fanout-ok"})),
		record("m-partial", taskJSON(t, delivery.Task{Kind: delivery.KindSend, DigestID: "partial", SubscriberIDs: []string{"r1", "r2", "r3", "r4"}})),
		record("m-send-fails", taskJSON(t, delivery.Task{Kind: delivery.KindSend, DigestID: "send-fails", SubscriberIDs: []string{"r1"}})),
		record("m-partial-errors", taskJSON(t, delivery.Task{Kind: delivery.KindSend, DigestID: "partial-errors", SubscriberIDs: []string{"r9"}, Attempt: 1})),
	}}
	res := sqs.Handle(awstest.Context(t), ev, h, q)

	if got, want := failures(res), []string{"m-fanout-fails"}; !reflect.DeepEqual(got, want) {
		t.Errorf("batch item failures = %v, want %v", got, want)
	}
	var handled []string
	for _, task := range h.seen {
		handled = append(handled, task.DigestID)
	}
	if want := []string{"good", "fanout-fails", "fanout-ok", "partial", "send-fails", "partial-errors"}; !reflect.DeepEqual(handled, want) {
		t.Errorf("handler ran %v, want %v: undecodable records must not reach it", handled, want)
	}
	for _, id := range []string{"m-garbage", "m-unknown-kind", "m-no-digest"} {
		if !strings.Contains(logs.String(), `"level":"ERROR","msg":"undecodable SQS message dropped","messageId":"`+id+`"`) {
			t.Errorf("no error-level log naming dropped message %s in:\n%s", id, logs.String())
		}
	}

	got := receive(t, client, url, 2, 8*time.Second)
	sortTasks(got)
	want := []delivery.Task{
		{Kind: delivery.KindSend, DigestID: "partial", SubscriberIDs: []string{"r2", "r4"}, Attempt: 1},
		{Kind: delivery.KindSend, DigestID: "partial-errors", SubscriberIDs: []string{"r9"}, Attempt: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("re-enqueued %+v, want %+v", got, want)
	}
}

func TestHandleReportsRecordWhenReEnqueueFails(t *testing.T) {
	f := &fakeSQS{status: http.StatusBadRequest}
	q := sqs.NewQueue(fakeClient(t, f), "http://queue.example/gone")
	q.Logger = slog.New(slog.DiscardHandler)
	h := &fakeHandler{answer: map[string]func(delivery.Task) ([]string, error){
		"partial": func(delivery.Task) ([]string, error) { return []string{"r2"}, nil },
	}}
	ev := events.SQSEvent{Records: []events.SQSMessage{
		record("m-partial", taskJSON(t, delivery.Task{Kind: delivery.KindSend, DigestID: "partial", SubscriberIDs: []string{"r1", "r2"}})),
		record("m-good", taskJSON(t, delivery.Task{Kind: delivery.KindSend, DigestID: "good", SubscriberIDs: []string{"r3"}})),
	}}
	res := sqs.Handle(context.Background(), ev, h, q)
	if got, want := failures(res), []string{"m-partial"}; !reflect.DeepEqual(got, want) {
		t.Errorf("batch item failures = %v, want %v", got, want)
	}
	if len(f.calls) != 1 {
		t.Errorf("%d enqueue calls, want 1", len(f.calls))
	}
}

func TestHandleOutOfTimeHandsRecordsBack(t *testing.T) {
	q := sqs.NewQueue(nil, "")
	h := &fakeHandler{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ev := events.SQSEvent{Records: []events.SQSMessage{
		record("m1", taskJSON(t, delivery.Task{Kind: delivery.KindFanout, DigestID: "a"})),
		record("m2", "garbage"),
	}}
	res := sqs.Handle(ctx, ev, h, q)
	if got, want := failures(res), []string{"m1", "m2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("batch item failures = %v, want %v", got, want)
	}
	if len(h.seen) != 0 {
		t.Errorf("handler ran %d tasks after the deadline, want 0", len(h.seen))
	}
}

// TestHandleLambdaEvent decodes a real SQS event as Lambda delivers it and
// checks the response as Lambda reads it.
func TestHandleLambdaEvent(t *testing.T) {
	raw, err := os.ReadFile("testdata/sqs-event.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("decode event: %v", err)
	}
	h := &fakeHandler{answer: map[string]func(delivery.Task) ([]string, error){
		"weekly-2026-W48": func(delivery.Task) ([]string, error) { return nil, errors.New("store down") },
	}}
	q := sqs.NewQueue(nil, "")
	q.Logger = slog.New(slog.DiscardHandler)
	res := sqs.Handle(context.Background(), ev, h, q)

	wantSeen := []delivery.Task{
		{Kind: delivery.KindSend, DigestID: "daily-2026-11-26", SubscriberIDs: []string{"r0001", "r0002"}},
		{Kind: delivery.KindFanout, DigestID: "weekly-2026-W48"},
	}
	if !reflect.DeepEqual(h.seen, wantSeen) {
		t.Errorf("handler got %+v, want %+v", h.seen, wantSeen)
	}
	out, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"batchItemFailures":[{"itemIdentifier":"2e1424d4-f796-459a-8184-9c92662be6da"}]}`; string(out) != want {
		t.Errorf("response = %s, want %s", out, want)
	}
}
