package dynamo_test

import (
	"os"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/dynamo"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	awstest.StopAll()
	os.Exit(code)
}

// newStore returns a Store on a fresh table of the shared DynamoDB Local.
func newStore(tb testing.TB) *dynamo.Store {
	tb.Helper()
	client := awstest.DynamoDBClient(tb)
	table := awstest.UniqueName(tb, "broadsheet")
	if err := dynamo.CreateTable(awstest.Context(tb), client, table); err != nil {
		tb.Fatalf("CreateTable: %v", err)
	}
	return dynamo.New(client, table)
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) newsletter.Store { return newStore(t) })
}
