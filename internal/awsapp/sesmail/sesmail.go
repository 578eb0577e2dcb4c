// Package sesmail builds the SES v2 mail of the functions that send: the
// api (confirmations, test emails) and the sender (digests). It is apart
// from package awsapp so that the digest and feedback bootstraps, which
// send nothing, do not link the SES client: importing it costs its
// schemas' initialisation at every cold start, whatever is called.
package sesmail

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/broadsheet-news/broadsheet/internal/awsapp"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/ses"
)

// Mailer returns the SES mailer on cfg, tagging messages with the
// configuration set (none when empty): the api function's.
func Mailer(cfg aws.Config, configurationSet string) delivery.Mailer {
	return ses.New(sesv2.NewFromConfig(cfg), configurationSet)
}

// New returns the SES mailer on cfg and the account's send rate, read
// with the same client (one connection pool), and sets the mailer's bulk
// size from it: the sender function's.
func New(cfg aws.Config, configurationSet string) awsapp.Mail {
	client := sesv2.NewFromConfig(cfg)
	m := ses.New(client, configurationSet)
	return awsapp.Mail{
		Mailer:      m,
		MaxSendRate: func(ctx context.Context) (float64, error) { return ses.MaxSendRate(ctx, client) },
		SetBulkSize: func(n int) { m.BulkSize = n },
	}
}
