package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/dynamo"
	"github.com/broadsheet-news/broadsheet/internal/harness"
)

// awsClients are clients for the three stand-ins.
type awsClients struct {
	dynamo    *dynamodb.Client
	sqs       *awssqs.Client
	sesURL    string // the SES stand-in's endpoint
	dynamoURL string // DynamoDB Local's
	sqsURL    string // the SQS stand-in's
}

// startAWS starts (once per run) the stand-ins and returns clients.
func startAWS() (*awsClients, error) {
	a, err := harness.StartAWS("chaos")
	if err != nil {
		return nil, err
	}
	return &awsClients{dynamo: a.DynamoDBClient(), sqs: a.SQSClient(nil), sesURL: a.SES.Endpoint, dynamoURL: a.DynamoDB.Endpoint, sqsURL: a.SQS.Endpoint}, nil
}

// sesClient returns an SES v2 client for endpoint, sending through doer.
func sesClient(endpoint string, doer aws.HTTPClient) *sesv2.Client {
	return sesv2.NewFromConfig(awstest.Config(), func(o *sesv2.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		if doer != nil {
			o.HTTPClient = doer
		}
	})
}

// newTable creates a fresh DynamoDB table and returns the store on it.
func newTable(ctx context.Context, c *awsClients, prefix string) (*dynamo.Store, error) {
	store, _, err := newNamedTable(ctx, c, prefix)
	return store, err
}

// newNamedTable is newTable that also returns the table's name.
func newNamedTable(ctx context.Context, c *awsClients, prefix string) (*dynamo.Store, string, error) {
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	if err := dynamo.CreateTable(ctx, c.dynamo, name); err != nil {
		return nil, "", fmt.Errorf("create table: %w", err)
	}
	return dynamo.New(c.dynamo, name), name, nil
}

// sendQueue creates a send queue with a dead-letter queue behind it
// (after maxReceives receives), and returns both URLs.
func sendQueue(ctx context.Context, c *awsClients, prefix string, visibility time.Duration, maxReceives int) (queueURL, dlqURL string, err error) {
	stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
	dlq, err := c.sqs.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String(prefix + "-dlq-" + stamp)})
	if err != nil {
		return "", "", fmt.Errorf("create DLQ: %w", err)
	}
	attrs, err := c.sqs.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", "", fmt.Errorf("DLQ ARN: %w", err)
	}
	redrive := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], maxReceives)
	q, err := c.sqs.CreateQueue(ctx, &awssqs.CreateQueueInput{
		QueueName: aws.String(prefix + "-" + stamp),
		Attributes: map[string]string{
			string(sqstypes.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(visibility / time.Second)),
			string(sqstypes.QueueAttributeNameRedrivePolicy):     redrive,
		},
	})
	if err != nil {
		return "", "", fmt.Errorf("create queue: %w", err)
	}
	return aws.ToString(q.QueueUrl), aws.ToString(dlq.QueueUrl), nil
}

// queueDepth returns the messages waiting and in flight on a queue.
func queueDepth(ctx context.Context, c *awsClients, url string) (int, error) {
	out, err := c.sqs.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	}})
	if err != nil {
		return 0, fmt.Errorf("queue attributes: %w", err)
	}
	n := 0
	for _, v := range out.Attributes {
		k, _ := strconv.Atoi(v)
		n += k
	}
	return n, nil
}
