package localaws

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
)

// TestStart sets up local AWS as `make local-aws` does, on free ports of
// this machine (the "container host" is 127.0.0.1 here), and runs two
// real bootstraps under the Lambda emulator with exactly the environment
// the env file gives them: the api function takes a sign-up (DynamoDB,
// then SES) and the digest function finds nothing to send (DynamoDB).
func TestStart(t *testing.T) {
	o := Defaults()
	o.Host, o.ContainerHost = "127.0.0.1", "127.0.0.1"
	o.DynamoDBPort, o.SQSPort, o.SESPort = 0, 0, 0
	o.EnvFile = filepath.Join(t.TempDir(), "env.json")
	o.WordPressURL = "https://news.example.com"
	ctx := awstest.Context(t)
	st, err := Start(ctx, o)
	if err != nil {
		awstest.Missing(t, err.Error())
	}
	t.Cleanup(st.Stop)

	b, err := os.ReadFile(o.EnvFile)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]map[string]string
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("env file: %v", err)
	}
	for _, fn := range []string{"ApiFunction", "DigestFunction", "SenderFunction", "FeedbackFunction", "IngestFunction"} {
		e := env[fn]
		if e["AWS_ENDPOINT_URL_DYNAMODB"] != st.DynamoDB.Endpoint || e["BROADSHEET_TABLE"] != o.Table {
			t.Errorf("%s: DynamoDB %q, table %q; want %s, %s", fn, e["AWS_ENDPOINT_URL_DYNAMODB"], e["BROADSHEET_TABLE"], st.DynamoDB.Endpoint, o.Table)
		}
	}
	for _, fn := range []string{"DigestFunction", "SenderFunction", "IngestFunction"} {
		if e := env[fn]; e["AWS_ENDPOINT_URL_SQS"] != st.SQS.Endpoint || !strings.HasPrefix(e["BROADSHEET_QUEUE_URL"], st.SQS.Endpoint+"/") {
			t.Errorf("%s: SQS %q, queue %q; want them on %s", fn, e["AWS_ENDPOINT_URL_SQS"], e["BROADSHEET_QUEUE_URL"], st.SQS.Endpoint)
		}
	}
	if fi, _ := os.Stat(o.EnvFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("env file mode %v: it holds a signing key", fi.Mode().Perm())
	}

	sqs := awssqs.NewFromConfig(awstest.Config(), func(op *awssqs.Options) { op.BaseEndpoint = aws.String(st.SQS.Endpoint) })
	if _, err := sqs.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(o.Queue)}); err != nil {
		t.Errorf("no queue %s: %v", o.Queue, err)
	}
	ddb := dynamodb.NewFromConfig(awstest.Config(), func(op *dynamodb.Options) { op.BaseEndpoint = aws.String(st.DynamoDB.Endpoint) })
	if _, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(o.Table)}); err != nil {
		t.Errorf("no table %s: %v", o.Table, err)
	}

	vars := func(fn string) []string {
		var out []string
		for k, v := range env[fn] {
			out = append(out, k+"="+v)
		}
		return out
	}
	api := awstest.StartLambda(t, awstest.BuildBootstrap(t, "api"), vars("ApiFunction")...)
	req := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: "/subscribe",
		Headers: map[string]string{"content-type": "application/json"},
		Body:    `{"email":"ada@example.com","sections":["news"],"frequency":"daily"}`,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			DomainName: "127.0.0.1", Stage: "$default", RequestID: "local-aws",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/subscribe", Protocol: "HTTP/1.1", SourceIP: "127.0.0.1"},
		},
	}
	var res events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(api.InvokeOK(t, req), &res); err != nil || res.StatusCode != 202 {
		t.Fatalf("subscribe: %d %s (%v)\n%s", res.StatusCode, res.Body, err, api.Logs())
	}
	if !sesSent(t, st.SES.Endpoint, "ada@example.com") {
		t.Errorf("no confirmation email in the SES stand-in\n%s", api.Logs())
	}

	digest := awstest.StartLambda(t, awstest.BuildBootstrap(t, "digest"), vars("DigestFunction")...)
	var out struct{ Status string }
	if err := json.Unmarshal(digest.InvokeOK(t, map[string]string{"frequency": "daily"}), &out); err != nil || out.Status != "skipped" {
		t.Errorf("daily digest: %+v (%v), want skipped: nothing to send\n%s", out, err, digest.Logs())
	}
}

// sesSent reports whether the SES stand-in at endpoint holds an email to
// `to`, waiting a few seconds for it.
func sesSent(t *testing.T, endpoint, to string) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, endpoint+"/store", nil)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			var store struct {
				Emails []struct {
					Destination struct{ To []string }
				}
			}
			_ = json.NewDecoder(res.Body).Decode(&store)
			res.Body.Close()
			for _, e := range store.Emails {
				for _, a := range e.Destination.To {
					if a == to {
						return true
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
