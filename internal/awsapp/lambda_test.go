package awsapp_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/dynamo"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.StopAll()
	os.Exit(code)
}

func sampleEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(awstest.Root(t), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFunctionsColdStart builds each function's real bootstrap, runs it
// under aws-lambda-rie with its AWS clients pointed at the stand-ins, and
// invokes it with its sample event from events/: proof that each one
// reads its environment, builds its clients and adapters at cold start,
// and answers.
func TestFunctionsColdStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four bootstraps")
	}
	ctx := awstest.Context(t)
	table := awstest.UniqueName(t, "broadsheet")
	if err := dynamo.CreateTable(ctx, awstest.DynamoDBClient(t), table); err != nil {
		t.Fatal(err)
	}
	q, err := awstest.SQSClient(t).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.UniqueName(t, "send"))})
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"BROADSHEET_TABLE=" + table,
		"BROADSHEET_QUEUE_URL=" + aws.ToString(q.QueueUrl),
		"BROADSHEET_FROM=The Ledger <news@ledger.example>",
		"BROADSHEET_SIGNING_KEY=" + strings.Repeat("ab", 32),
		"BROADSHEET_DIGEST_FUNCTION=function",
		"AWS_ENDPOINT_URL_DYNAMODB=" + awstest.DynamoDB(t).Endpoint,
		"AWS_ENDPOINT_URL_SQS=" + awstest.SQS(t).Endpoint,
		"AWS_ENDPOINT_URL_SESV2=" + awstest.SES(t).Endpoint,
	}
	withBase := append(env[:len(env):len(env)], "BROADSHEET_BASE_URL=https://news.ledger.example")

	t.Run("api", func(t *testing.T) {
		t.Parallel()
		boot := awstest.BuildBootstrap(t, "api")
		for name, env := range map[string][]string{"base URL set": withBase, "base URL from the request": env} {
			l := awstest.StartLambda(t, boot, env...)
			var res events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(l.InvokeOK(t, sampleEvent(t, "api-health.json")), &res); err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 || strings.TrimSpace(res.Body) != `{"status":"ok"}` {
				t.Errorf("%s: GET /healthz: %d %q, want 200 {\"status\":\"ok\"}\n%s", name, res.StatusCode, res.Body, l.Logs())
			}
		}
	})
	t.Run("digest", func(t *testing.T) {
		t.Parallel()
		l := awstest.StartLambda(t, awstest.BuildBootstrap(t, "digest"), withBase...)
		var res struct{ Status string }
		if err := json.Unmarshal(l.InvokeOK(t, sampleEvent(t, "digest.json")), &res); err != nil {
			t.Fatal(err)
		}
		if res.Status != "skipped" {
			t.Errorf("daily digest on an empty table: status %q, want skipped\n%s", res.Status, l.Logs())
		}
	})
	t.Run("sender", func(t *testing.T) {
		t.Parallel()
		l := awstest.StartLambda(t, awstest.BuildBootstrap(t, "sender"), withBase...)
		var res events.SQSEventResponse
		if err := json.Unmarshal(l.InvokeOK(t, sampleEvent(t, "sender.json")), &res); err != nil {
			t.Fatal(err)
		}
		// The sample's digest does not exist: the task is acknowledged.
		if len(res.BatchItemFailures) != 0 {
			t.Errorf("batch item failures %+v, want none\n%s", res.BatchItemFailures, l.Logs())
		}
		if !strings.Contains(l.Logs(), `"accountMax":200`) {
			t.Errorf("the sender did not read the SES send rate at cold start:\n%s", l.Logs())
		}
	})
	t.Run("feedback", func(t *testing.T) {
		t.Parallel()
		l := awstest.StartLambda(t, awstest.BuildBootstrap(t, "feedback"), "BROADSHEET_TABLE="+table,
			"AWS_ENDPOINT_URL_DYNAMODB="+awstest.DynamoDB(t).Endpoint)
		if b := l.InvokeOK(t, sampleEvent(t, "feedback-bounce.json")); strings.TrimSpace(string(b)) != "null" {
			t.Errorf("feedback answered %s, want null", b)
		}
	})
}
