package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/broadsheet-news/broadsheet/internal/awsapp"
	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/feedback"
	"github.com/broadsheet-news/broadsheet/internal/harness"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/sqs"
)

// Settings of the aws-process kill scenario: the sender's lease and the
// sweep's grace period, short so that killed work comes back within the
// run (production's are 2 and 15 minutes), and the sender instances.
const (
	killAWSLease     = 3 * time.Second
	killAWSGrace     = 5 * time.Second
	killAWSInstances = 2
	killAWSBatch     = 2 // SQS messages (send tasks of 100 readers) per invocation
)

// runKillAWS kills the real sender function: its bootstrap, built as for
// Lambda, runs under aws-lambda-rie (two instances), fed by an event
// source that plays Lambda's SQS mapping — it receives a batch from the
// SQS stand-in, invokes the function and deletes what the function did
// not report as a batch item failure; an invocation whose runtime died
// deletes nothing. The bootstrap is SIGKILLed K times in the middle of an
// invocation, as a Lambda timeout or a crash ends it. SES's record of
// sends is its Send events: a proxy in front of the SES stand-in hands
// one for each accepted message to the feedback function's handler. The
// digest function's fan-out and its scheduled sweep ({"sweep":true},
// Engine.Resume) run in this process. Every reader must end sent once:
// by the Send events, for copies that left before a kill, or by the sweep
// once the grace period is over, for copies that never left.
func runKillAWS(ctx context.Context, env *runEnv, r *result) error {
	r.exact = true
	r.set("scenario", "kill")
	r.set("path", "aws-process")
	readers, kills := env.pick(2000, 400), env.pick(10, 3)
	rng := env.rng("kill-aws")

	dir, cleanup, err := env.tempDir("kill-aws")
	if err != nil {
		return err
	}
	defer cleanup()
	boot, err := buildSender(ctx, env, dir)
	if err != nil {
		return err
	}
	c, err := startAWS()
	if err != nil {
		return err
	}
	store, table, err := newNamedTable(ctx, c, "chaos-kill")
	if err != nil {
		return err
	}
	queueURL, dlqURL, err := sendQueue(ctx, c, "chaos-kill", 2*time.Second, 100)
	if err != nil {
		return err
	}

	fbLogs := &logWatch{}
	fb := &awsapp.App{Function: awsapp.FeedbackFunction, Log: env.log, Store: store, Feedback: feedback.New(store, nil)}
	fb.Feedback.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(fbLogs, logWriter(env)), nil))
	proxy, err := newSESProxy(c.sesURL, 0, 0)
	if err != nil {
		return err
	}
	defer proxy.Close()
	events := publishLater(ctx, proxy, fb, env.rng("kill-aws-events"))

	// The digest function's part: fan-out onto SQS, and the sweep.
	p, err := harness.NewParts(site)
	if err != nil {
		return err
	}
	engineLogs := &logWatch{}
	cfg := engineConfig(env)
	cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(engineLogs, logWriter(env)), nil))
	cfg.Lease, cfg.UnknownGrace = killAWSLease, killAWSGrace
	queue := sqs.NewQueue(c.sqs, queueURL)
	engine := p.Engine(store, noMailer{}, queue, cfg)
	svc := p.Service(store, noMailer{}, engine, harness.InlineFanout{Engine: engine}, env.log)
	if _, err := seedAll(ctx, store, svc, readers, 8); err != nil {
		return err
	}

	// The sender function, for real.
	senderEnv := []string{
		"BROADSHEET_TABLE=" + table,
		"BROADSHEET_QUEUE_URL=" + queueURL,
		"BROADSHEET_FROM=" + letterhead.From,
		"BROADSHEET_BASE_URL=" + site.URL,
		"BROADSHEET_SIGNING_KEY=" + strings.Repeat("cd", 32),
		"BROADSHEET_LEASE=" + killAWSLease.String(),
		"BROADSHEET_SENDER_CONCURRENCY=" + strconv.Itoa(killAWSInstances),
		"AWS_ENDPOINT_URL_DYNAMODB=" + c.dynamoURL,
		"AWS_ENDPOINT_URL_SQS=" + c.sqsURL,
		"AWS_ENDPOINT_URL_SESV2=" + proxy.URL,
		"AWS_LAMBDA_FUNCTION_TIMEOUT=60",
	}
	var instances []*awstest.Lambda
	defer func() {
		for _, l := range instances {
			l.Stop()
		}
	}()
	for range killAWSInstances {
		l, err := harness.StandIn("chaos", func(tb testing.TB) *awstest.Lambda { return awstest.StartLambda(tb, boot, senderEnv...) })
		if err != nil {
			return err
		}
		instances = append(instances, l)
	}
	src := &lambdaSource{client: c.sqs, url: queueURL}
	sctx, stopSenders := context.WithCancel(ctx)
	defer stopSenders()
	var senders sync.WaitGroup
	for _, l := range instances {
		senders.Add(1)
		go func() { defer senders.Done(); src.run(sctx, l) }()
	}

	st, _, err := svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily", Send: true})
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	// The kills: each at a random moment of an invocation in flight.
	killed := 0
	for killed < kills {
		l := instances[rng.IntN(len(instances))]
		if !src.busy(l) {
			if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
				return err
			}
			continue
		}
		if err := sleepCtx(ctx, time.Duration(rng.IntN(300))*time.Millisecond); err != nil {
			return err
		}
		if pid := childOf(l.Pid()); pid > 0 && src.busy(l) {
			syscall.Kill(pid, syscall.SIGKILL)
			killed++
		}
	}

	sweeps, err := awaitAWS(ctx, r, store, st.ID, readers, c, queueURL, &src.lastReceive, engine)
	if err != nil {
		return err
	}
	stopSenders()
	senders.Wait()
	events.pending.Wait()

	dlq, err := queueDepth(ctx, c, dlqURL)
	if err != nil {
		return err
	}
	rows, err := ledger(ctx, store, st.ID)
	if err != nil {
		return err
	}
	sends := proxy.sent()
	missing, dups := 0, 0
	for i := range readers {
		id := readerID(i)
		row := rows[id]
		if row == nil || !settledFinal(row.Status) || sends.perReader[id] == 0 {
			missing++
		}
		if sends.perReader[id] > 1 {
			dups++
		}
	}
	r.set("recipients", readers)
	r.set("kills", killed)
	r.zero("missing", missing)
	r.zero("duplicates", dups)
	r.set("failed_invocations", src.failed.Load())
	r.set("settled_by_send_events", fbLogs.count("ledger row settled"))
	r.set("sent_again_after_grace", engineLogs.count("unknown outcome not reconciled within the grace period"))
	r.set("sweeps", sweeps)
	r.zero("dlq", dlq)
	r.zero("event_errors", int(events.errs.Load()))
	return nil
}

// buildSender builds the sender function's bootstrap, as the Makefile
// builds it for Lambda but for this machine, into dir/sender.
func buildSender(ctx context.Context, env *runEnv, dir string) (string, error) {
	out := filepath.Join(dir, "sender", "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, "github.com/broadsheet-news/broadsheet/functions/sender")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = env.stderr, env.stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build the sender bootstrap: %w", err)
	}
	return out, nil
}

// childOf returns the process ID of a child of pid (the emulator's
// runtime: the bootstrap), or 0.
func childOf(pid int) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, not ')'.
		_, rest, ok := bytes.Cut(stat, []byte(") "))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			return child
		}
	}
	return 0
}

// lambdaSource plays Lambda's SQS event source mapping for functions
// running under the emulator: each instance gets one batch at a time.
type lambdaSource struct {
	client *awssqs.Client
	url    string

	mu     sync.Mutex
	inside map[*awstest.Lambda]bool // an invocation is in flight

	failed      atomic.Int64 // invocations whose runtime died
	lastReceive atomic.Int64 // Unix nanoseconds of the last non-empty receive
}

func (s *lambdaSource) busy(l *awstest.Lambda) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inside[l]
}

func (s *lambdaSource) setBusy(l *awstest.Lambda, b bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inside == nil {
		s.inside = map[*awstest.Lambda]bool{}
	}
	s.inside[l] = b
}

// run feeds l until ctx ends.
func (s *lambdaSource) run(ctx context.Context, l *awstest.Lambda) {
	client := &http.Client{Timeout: 2 * time.Minute}
	for ctx.Err() == nil {
		out, err := s.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(s.url), MaxNumberOfMessages: killAWSBatch, WaitTimeSeconds: 1})
		if err != nil || len(out.Messages) == 0 {
			if err != nil && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		s.lastReceive.Store(time.Now().UnixNano())
		ev := events.SQSEvent{}
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body), EventSource: "aws:sqs"})
		}
		body, _ := json.Marshal(ev)
		s.setBusy(l, true)
		res, ok := invoke(ctx, client, l.Endpoint, body)
		s.setBusy(l, false)
		if !ok {
			s.failed.Add(1) // nothing deleted: the batch comes back
			continue
		}
		harness.DeleteHandled(ctx, s.client, s.url, ev, res)
	}
}

// invoke calls the function under the emulator and returns its partial
// batch response, or false when the invocation failed (its runtime was
// killed, or it returned an error).
func invoke(ctx context.Context, client *http.Client, endpoint string, body []byte) (events.SQSEventResponse, bool) {
	var res events.SQSEventResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/2015-03-31/functions/function/invocations", bytes.NewReader(body))
	if err != nil {
		return res, false
	}
	resp, err := client.Do(req)
	if err != nil {
		return res, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return res, false
	}
	var e struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(b, &e) == nil && e.ErrorType != "" {
		return res, false
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return res, false
	}
	return res, true
}
