package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/dynamo"
	"github.com/broadsheet-news/broadsheet/internal/harness"
	"github.com/broadsheet-news/broadsheet/internal/ses"
	"github.com/broadsheet-news/broadsheet/internal/sqs"
)

// On-demand prices, in dollars per request or request unit.
const (
	priceWrite  = 0.625 / 1e6
	priceRead   = 0.125 / 1e6
	priceSQS    = 0.40 / 1e6
	priceSES    = 0.10 / 1e3
	costReaders = 100000 // the digest the cost is given for
)

// senderBatch is the sender's SQS batch size (template.yaml).
const senderBatch = 5

// stack is the three stand-ins and clients for them.
type stack struct {
	dynamo *dynamodb.Client
	sqs    *awssqs.Client
	sqsReq *atomic.Int64 // SQS requests made through sqs
	sesURL string
	ddbURL string
	sqsURL string
}

// countingDoer counts the requests it sends.
type countingDoer struct {
	inner aws.HTTPClient
	n     *atomic.Int64
}

func (c countingDoer) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.inner.Do(r)
}

// startStack starts (or finds running) DynamoDB Local and the SQS and SES
// stand-ins, through package awstest as cmd/chaos does.
func startStack() (*stack, error) {
	a, err := harness.StartAWS("bench")
	if err != nil {
		return nil, err
	}
	n := &atomic.Int64{}
	return &stack{
		dynamo: a.DynamoDBClient(),
		sqs:    a.SQSClient(countingDoer{inner: awshttpClient(), n: n}),
		sqsReq: n,
		sesURL: a.SES.Endpoint, ddbURL: a.DynamoDB.Endpoint, sqsURL: a.SQS.Endpoint,
	}, nil
}

// table creates a fresh table and a send queue.
func (s *stack) table(ctx context.Context, prefix string) (table, queueURL string, err error) {
	stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
	table = prefix + "-" + stamp
	if err := dynamo.CreateTable(ctx, s.dynamo, table); err != nil {
		return "", "", fmt.Errorf("create table: %w", err)
	}
	q, err := s.sqs.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(prefix + "-" + stamp), Attributes: map[string]string{
		string(sqstypes.QueueAttributeNameVisibilityTimeout): "360",
	}})
	if err != nil {
		return "", "", fmt.Errorf("create queue: %w", err)
	}
	return table, aws.ToString(q.QueueUrl), nil
}

// runAWS sends a digest on the AWS path: the DynamoDB store, fan-out
// inline as the digest function does it, the SQS queue polled in batches
// of ten as the event source mapping feeds the sender function, and SES v2
// to the SES stand-in. It prints the capacity and the requests used, and
// what they would cost for a 100,000-reader digest.
func runAWS(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	defer awstest.StopAll()
	st, err := startStack()
	if err != nil {
		return err
	}
	table, queueURL, err := st.table(ctx, "bench")
	if err != nil {
		return err
	}
	store := dynamo.New(st.dynamo, table)
	log := logger(cfg, stderr)
	queue := sqs.NewQueue(st.sqs, queueURL)
	queue.Logger = log
	p, err := harness.NewParts(site)
	if err != nil {
		return err
	}
	engine := p.Engine(store, ses.New(sesClient(st.sesURL, cfg.Workers), "broadsheet"), queue, delivery.Config{Logger: log})
	svc := p.Service(store, noMail{}, engine, harness.InlineFanout{Engine: engine}, log)
	if err := seed(ctx, store, svc, cfg.N, 8); err != nil {
		return err
	}

	sctx, stopSenders := context.WithCancel(ctx)
	defer stopSenders()
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sctx.Err() == nil {
				poll(sctx, st.sqs, queueURL, queue, engine)
			}
		}()
	}
	cap0, sqs0 := store.ConsumedCapacity(), st.sqsReq.Load()
	f, err := timedSend(ctx, cfg, svc, store)
	cap1, sqs1 := store.ConsumedCapacity(), st.sqsReq.Load()
	stopSenders()
	wg.Wait()
	if err != nil {
		return err
	}
	f.renders = p.Renderer.Renders()
	n := float64(cfg.N)
	// DynamoDB Local reports a transactional write at the plain rate; AWS
	// bills it twice: the bill is Write + TransactWrite. Writes refused on
	// their condition are billed too, and reported by no one.
	wcu := cap1.Write - cap0.Write + cap1.TransactWrite - cap0.TransactWrite + cap1.ConditionFailed - cap0.ConditionFailed
	rcu := cap1.Read - cap0.Read
	sqsReq := float64(sqs1 - sqs0)
	scale := costReaders / n
	ddbCost := (wcu*priceWrite + rcu*priceRead) * scale
	sqsCost := sqsReq * priceSQS * scale
	f.extra = append(f.extra,
		fmt.Sprintf("wcu_per_1000=%.0f rcu_per_1000=%.0f sqs_requests_per_1000=%.0f", wcu/n*1000, rcu/n*1000, sqsReq/n*1000),
		fmt.Sprintf("cost_100k_dynamodb_usd=%.3f cost_100k_sqs_usd=%.4f cost_100k_usd=%.3f ses_cost_100k_usd=%.2f", ddbCost, sqsCost, ddbCost+sqsCost, costReaders*priceSES),
	)
	fmt.Fprintln(stdout, f.line())
	if f.recipients != cfg.N {
		return fmt.Errorf("mode aws: %d of %d readers sent", f.recipients, cfg.N)
	}
	return nil
}

// poll plays Lambda's SQS event source mapping for one sender: it receives
// a batch, hands it to sqs.Handle (the sender function's own handler) and
// deletes the records that were not reported as failures.
func poll(ctx context.Context, client *awssqs.Client, url string, queue *sqs.Queue, engine *delivery.Engine) {
	out, err := client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: senderBatch, WaitTimeSeconds: 1,
	})
	if err != nil || len(out.Messages) == 0 {
		if err != nil && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
		return
	}
	ev := events.SQSEvent{}
	for _, m := range out.Messages {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body), EventSource: "aws:sqs"})
	}
	harness.DeleteHandled(ctx, client, url, ev, sqs.Handle(ctx, ev, engine, queue))
}

// awshttpClient is the SDK's default HTTP client.
func awshttpClient() aws.HTTPClient { return awshttp.NewBuildableClient() }
