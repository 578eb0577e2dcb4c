package awstest

import (
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

// TestStandIns starts each stand-in and makes one real SDK call against it.
func TestStandIns(t *testing.T) {
	ctx := Context(t)
	if _, err := DynamoDBClient(t).ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("DynamoDB ListTables: %v", err)
	}
	q, err := SQSClient(t).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(UniqueName(t, "smoke"))})
	if err != nil || q.QueueUrl == nil {
		t.Fatalf("SQS CreateQueue: %v", err)
	}
	acct, err := SESClient(t).GetAccount(ctx, &sesv2.GetAccountInput{})
	if err != nil || acct.SendQuota == nil || acct.SendQuota.MaxSendRate != 200 {
		t.Fatalf("SES GetAccount: %+v, %v; want MaxSendRate 200", acct, err)
	}
	ClearSESStore(t)
	_, err = SESClient(t).SendEmail(ctx, &sesv2.SendEmailInput{
		FromEmailAddress: aws.String("news@example.com"),
		Destination:      &sestypes.Destination{ToAddresses: []string{"reader@example.com"}},
		Content: &sestypes.EmailContent{Simple: &sestypes.Message{
			Subject: &sestypes.Content{Data: aws.String("Hello")},
			Body:    &sestypes.Body{Text: &sestypes.Content{Data: aws.String("Body text")}},
			Headers: []sestypes.MessageHeader{{Name: aws.String("List-Unsubscribe-Post"), Value: aws.String("List-Unsubscribe=One-Click")}},
		}},
	})
	if err != nil {
		t.Fatalf("SES SendEmail: %v", err)
	}
	sent := SESStore(t)
	if len(sent) != 1 || sent[0].Subject != "Hello" || sent[0].Body.Text != "Body text" || sent[0].Destination.To[0] != "reader@example.com" {
		t.Fatalf("SES store: %+v", sent)
	}
	if got := sent[0].Header("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("header in store %q", got)
	}
}
