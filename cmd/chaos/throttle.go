package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/broadsheet-news/broadsheet/internal/awsapp"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/harness"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/ses"
	"github.com/broadsheet-news/broadsheet/internal/sqs"
)

// accountMaxSendRate is the SES account's MaxSendRate in the throttle
// scenario: what GetAccount reports and what the proxy enforces.
const accountMaxSendRate = 200

// runThrottle sends a digest through the real sender path — the SQS
// stand-in with a dead-letter queue, played by an event source of eight
// concurrent sender invocations (sqs.Handle, partial batch failures,
// retries re-enqueued with backoff), the engine, internal/ses — to the SES
// stand-in behind a proxy that reports a MaxSendRate of 200/s on
// GetAccount and answers 429 TooManyRequestsException above 200 sends a
// second (a token bucket that holds a tenth of a second). The ledger is
// bbolt, not DynamoDB Local: on two cores DynamoDB Local tops out near 60
// sends a second (it is CPU-bound), which would measure the stand-in, not
// the limiter; the crash scenario runs the AWS path on DynamoDB Local.
//
// The senders share one limiter built as internal/awsapp builds it: 0.8 ×
// the account's MaxSendRate, read from GetAccount, so 160/s. The issue
// asks for an achieved rate of at least 90 % of "the limit"; Broadsheet
// sends at 0.8 × MaxSendRate by design, leaving a fifth of the account for
// transactional mail, so the figure checked is 90 % of the limiter's
// 160/s (pct_of_limiter), and the account's own 200/s is printed beside
// it. Nothing may be lost or land in the dead-letter queue, and no reader
// may get two copies.
func runThrottle(ctx context.Context, env *runEnv, r *result) error {
	r.set("scenario", "throttle")
	readers := env.pick(20000, 2000)
	c, err := startAWS()
	if err != nil {
		return err
	}
	// A bucket that holds a bulk call's 50 recipients: SES judges its rate
	// per second, not per call.
	proxy, err := newSESProxy(c.sesURL, accountMaxSendRate, max(accountMaxSendRate/10, 50))
	if err != nil {
		return err
	}
	defer proxy.Close()

	store, _, closeStore, err := laptopStore(env, "throttle")
	if err != nil {
		return err
	}
	defer closeStore()
	queueURL, dlqURL, err := sendQueue(ctx, c, "chaos-throttle", 30*time.Second, 5)
	if err != nil {
		return err
	}
	queue := sqs.NewQueue(c.sqs, queueURL)
	queue.Logger = env.log
	client := sesClient(proxy.URL, nil)
	account, err := ses.MaxSendRate(ctx, client)
	if err != nil {
		return err
	}
	limit := awsapp.SendRateShare * account
	p, err := harness.NewParts(site)
	if err != nil {
		return err
	}
	cfg := engineConfig(env)
	cfg.Limiter = rate.NewLimiter(rate.Limit(limit), max(1, int(limit)))
	cfg.BatchSize = 10 // small tasks, so that every sender has work
	engine := p.Engine(store, ses.New(client, "broadsheet"), queue, cfg)
	svc := p.Service(store, noMailer{}, engine, harness.InlineFanout{Engine: engine}, env.log)

	if _, err := seedAll(ctx, store, svc, readers, 8); err != nil {
		return err
	}

	sctx, stopSenders := context.WithCancel(ctx)
	defer stopSenders()
	src := &eventSource{client: c.sqs, url: queueURL, queue: queue, engine: engine, batch: 2, workers: 8, rng: env.rng("throttle")}
	senders := src.start(sctx)

	// The digest function fans out while the senders already send.
	fanout := make(chan error, 1)
	var digestID atomic.Value
	go func() {
		st, _, err := svc.CreateDigest(ctx, newsroom.DigestRequest{Frequency: "daily", Send: true})
		if err == nil {
			digestID.Store(st.ID)
		}
		fanout <- err
	}()
	if err := <-fanout; err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	id := digestID.Load().(string)
	deadline := time.Now().Add(time.Duration(readers)/time.Duration(limit*0.5)*time.Second + 2*time.Minute)
	for {
		counts, err := store.DeliveryCounts(ctx, id)
		if err != nil {
			return err
		}
		if counts.Settled() == int64(readers) {
			break
		}
		if time.Now().After(deadline) {
			r.want(false, "not finished by the deadline: %+v", counts)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	stopSenders()
	<-senders

	rows, err := ledger(ctx, store, id)
	if err != nil {
		return err
	}
	dlq, err := queueDepth(ctx, c, dlqURL)
	if err != nil {
		return err
	}
	sends := proxy.sent()
	lost, dups := 0, 0
	for i := range readers {
		rid := readerID(i)
		row := rows[rid]
		if row == nil || row.Status != newsletter.DeliverySent || sends.perReader[rid] == 0 {
			lost++
		}
		if sends.perReader[rid] > 1 {
			dups++
		}
	}
	achieved := 0.0
	if span := sends.last.Sub(sends.first).Seconds(); span > 0 && sends.total > 1 {
		achieved = float64(sends.total-1) / span
	}
	pct := 100 * achieved / limit
	r.set("sends", readers)
	r.set("throttled_429", proxy.throttled.Load())
	r.set("rate", fmt.Sprintf("%.1f/s", achieved))
	r.set("limiter", fmt.Sprintf("%.0f/s", limit))
	r.set("max_send_rate", fmt.Sprintf("%.0f/s", account))
	r.set("pct_of_limiter", fmt.Sprintf("%.1f", pct))
	r.want(pct >= 90, "pct_of_limiter=%.1f, want at least 90", pct)
	r.want(account == accountMaxSendRate, "GetAccount said MaxSendRate=%v, want %d", account, accountMaxSendRate)
	r.zero("lost", lost)
	r.zero("dlq", dlq)
	r.zero("duplicates", dups)
	return nil
}

// noMailer is the mailer of a newsroom that never emails readers one by
// one here.
type noMailer struct{}

func (noMailer) Send(context.Context, *eml.Message) (string, error) {
	return "", fmt.Errorf("no transactional mail in this scenario")
}

// sesProxy stands between the SES client and the SES stand-in: it
// throttles SendEmail above a rate as SES does, with its error shape, and
// keeps SES's record of what it accepted — each SendEmail answered 2xx,
// with its recipient and its EmailTags, as SES event publishing would
// report it in a Send event.
type sesProxy struct {
	URL       string
	srv       *http.Server
	ln        net.Listener
	bucket    *rate.Limiter
	throttled atomic.Int64
	onSend    func(rec sendRecord) // optional, called for each accepted send

	mu    sync.Mutex
	sends []sendRecord
}

// sendRecord is one accepted SendEmail.
type sendRecord struct {
	At        time.Time
	To        string
	MessageID string
	Tags      map[string]string
}

func newSESProxy(target string, perSecond float64, burst int) (*sesProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &sesProxy{URL: "http://" + ln.Addr().String(), ln: ln}
	if perSecond > 0 {
		p.bucket = rate.NewLimiter(rate.Limit(perSecond), burst)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	rp.ModifyResponse = func(res *http.Response) error {
		if res.Request.Method != http.MethodPost || sendCall(res.Request.URL.Path) == 0 || res.StatusCode/100 != 2 {
			return nil
		}
		return p.record(res)
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if kind := sendCall(r.URL.Path); r.Method == http.MethodPost && kind != 0 {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, "read body", http.StatusBadRequest)
				return
			}
			// SES counts every recipient of a bulk call against the
			// account's rate.
			n := 1
			if kind == bulkSend {
				var in struct{ BulkEmailEntries []json.RawMessage }
				_ = json.Unmarshal(body, &in)
				n = max(len(in.BulkEmailEntries), 1)
			}
			if p.bucket != nil && !p.bucket.AllowN(time.Now(), n) {
				p.throttled.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("x-amzn-ErrorType", "TooManyRequestsException")
				w.WriteHeader(http.StatusTooManyRequests)
				io.WriteString(w, `{"message":"Maximum sending rate exceeded."}`)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r = r.WithContext(context.WithValue(r.Context(), sendBodyKey{}, body))
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

type sendBodyKey struct{}

// The SES v2 calls that send mail.
const (
	singleSend = 1 // SendEmail
	bulkSend   = 2 // SendBulkEmail
)

// sendCall tells which sending call a request path is, 0 for none.
func sendCall(path string) int {
	switch {
	case strings.HasSuffix(path, "/outbound-emails"):
		return singleSend
	case strings.HasSuffix(path, "/outbound-bulk-emails"):
		return bulkSend
	}
	return 0
}

// record notes the accepted sends of a call from its request and answer:
// one for SendEmail, one per successful entry for SendBulkEmail.
func (p *sesProxy) record(res *http.Response) error {
	body, _ := res.Request.Context().Value(sendBodyKey{}).([]byte)
	answer, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	res.Body = io.NopCloser(bytes.NewReader(answer))
	type tag struct{ Name, Value string }
	type destination struct{ ToAddresses []string }
	newRecord := func(to []string, msgID string, tagSets ...[]tag) sendRecord {
		rec := sendRecord{At: time.Now(), MessageID: msgID, Tags: map[string]string{}}
		if len(to) > 0 {
			rec.To = to[0]
		}
		for _, ts := range tagSets {
			for _, t := range ts {
				rec.Tags[t.Name] = t.Value
			}
		}
		return rec
	}
	var recs []sendRecord
	if sendCall(res.Request.URL.Path) == bulkSend {
		var in struct {
			DefaultEmailTags []tag
			BulkEmailEntries []struct {
				Destination     destination
				ReplacementTags []tag
			}
		}
		_ = json.Unmarshal(body, &in)
		var out struct {
			BulkEmailEntryResults []struct{ Status, MessageId string }
		}
		_ = json.Unmarshal(answer, &out)
		for i, e := range in.BulkEmailEntries {
			if i >= len(out.BulkEmailEntryResults) || out.BulkEmailEntryResults[i].Status != "SUCCESS" {
				continue
			}
			recs = append(recs, newRecord(e.Destination.ToAddresses, out.BulkEmailEntryResults[i].MessageId, in.DefaultEmailTags, e.ReplacementTags))
		}
	} else {
		var in struct {
			Destination destination
			EmailTags   []tag
		}
		_ = json.Unmarshal(body, &in)
		var out struct{ MessageId string }
		_ = json.Unmarshal(answer, &out)
		recs = append(recs, newRecord(in.Destination.ToAddresses, out.MessageId, in.EmailTags))
	}
	p.mu.Lock()
	p.sends = append(p.sends, recs...)
	p.mu.Unlock()
	if p.onSend != nil {
		for _, rec := range recs {
			p.onSend(rec)
		}
	}
	return nil
}

// sendTally is what the proxy saw accepted.
type sendTally struct {
	total       int
	perReader   map[string]int
	first, last time.Time
}

func (p *sesProxy) sent() sendTally {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := sendTally{total: len(p.sends), perReader: map[string]int{}}
	for i, s := range p.sends {
		t.perReader[s.Tags["subscriber"]]++
		if i == 0 || s.At.Before(t.first) {
			t.first = s.At
		}
		if s.At.After(t.last) {
			t.last = s.At
		}
	}
	return t
}

// Close stops the proxy.
func (p *sesProxy) Close() { _ = p.srv.Close() }
