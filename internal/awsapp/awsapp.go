// Package awsapp wires Broadsheet for AWS Lambda: it reads a function's
// settings from the environment, builds the AWS clients (whose endpoints
// AWS_ENDPOINT_URL_<SERVICE> variables may point at local stand-ins) and
// the adapters on them, once per cold start, and holds the handlers the
// four functions give lambda.Start:
//
//	api       (*API).Handle        API Gateway HTTP API, payload v2
//	digest    (*App).HandleDigest  EventBridge Scheduler, or the api function
//	sender    (*App).HandleSQS     SQS, with partial batch responses
//	feedback  (*App).HandleSNS     SES event publishing through SNS
//
// A handler returns an error only where a retry can help: bad input is
// logged and acknowledged.
package awsapp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/time/rate"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/dynamo"
	"github.com/broadsheet-news/broadsheet/internal/feedback"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/secrets"
	"github.com/broadsheet-news/broadsheet/internal/ses"
	"github.com/broadsheet-news/broadsheet/internal/settings"
	"github.com/broadsheet-news/broadsheet/internal/sqs"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// The environment variables of the Lambda functions, beyond the shared
// settings (package settings) and the signing key (package secrets).
const (
	// EnvTable names the DynamoDB table: every function.
	EnvTable = "BROADSHEET_TABLE"
	// EnvQueueURL is the send queue's URL: digest and sender.
	EnvQueueURL = "BROADSHEET_QUEUE_URL"
	// EnvDigestFunction names the digest function the api invokes to fan
	// a digest out: api only.
	EnvDigestFunction = "BROADSHEET_DIGEST_FUNCTION"
	// EnvConfigurationSet names the SES configuration set whose events
	// come back to the feedback function: api and sender.
	EnvConfigurationSet = "BROADSHEET_SES_CONFIGURATION_SET"
	// EnvSenderConcurrency is how many sender functions may run at once
	// (the event source's MaximumConcurrency); each takes its share of the
	// SES send rate. Optional, 1 when unset: sender only.
	EnvSenderConcurrency = "BROADSHEET_SENDER_CONCURRENCY"
	// EnvLogLevel is the application log level Lambda sets from the
	// function's LoggingConfig (DEBUG, INFO, WARN, ERROR); INFO when unset.
	EnvLogLevel = "AWS_LAMBDA_LOG_LEVEL"
)

// Function names one of the Lambda functions. It decides what Load
// builds, so that each function needs only the permissions and variables
// of what it does.
type Function string

// The functions.
const (
	APIFunction      Function = "api"
	DigestFunction   Function = "digest"
	SenderFunction   Function = "sender"
	FeedbackFunction Function = "feedback"
)

// Rate limit of the sender.
const (
	// SendRateShare is the part of the SES account's maximum send rate
	// the senders use together, leaving room for transactional mail.
	SendRateShare = 0.8
	// FallbackSendRate is the rate, per second, used when the account's
	// rate cannot be read: the SES sandbox's.
	FallbackSendRate = 1.0
)

// App is Broadsheet wired for one Lambda function. Fields a function does
// not use are nil: the feedback function has only Log, Store and
// Feedback.
type App struct {
	Function Function
	Settings *settings.Settings
	Log      *slog.Logger
	Store    newsletter.Store
	Engine   *delivery.Engine
	Service  *newsroom.Service
	Queue    *sqs.Queue
	Feedback *feedback.Processor
}

// Load builds the app of function fn from the environment, logging JSON to
// stdout. It is called once, at cold start; an error means the function
// cannot work at all.
func Load(ctx context.Context, fn Function, getenv func(string) string, stdout io.Writer) (*App, error) {
	a := &App{Function: fn, Log: NewLogger(getenv, stdout).With("function", string(fn))}
	need := func(env string) (string, error) {
		v := strings.TrimSpace(getenv(env))
		if v == "" {
			return "", fmt.Errorf("%s: %s is required", fn, env)
		}
		return v, nil
	}
	table, err := need(EnvTable)
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: AWS config: %w", fn, err)
	}
	store := dynamo.New(dynamodb.NewFromConfig(cfg), table)
	a.Store = store
	if fn == FeedbackFunction {
		a.Feedback = feedback.New(store, nil)
		a.Feedback.Logger = a.Log
		return a, nil
	}

	if a.Settings, err = settings.FromEnv(getenv); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	key, err := secrets.SigningKey(ctx, getenv, ssm.NewFromConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	signer, err := token.NewSigner(key)
	if err != nil {
		return nil, fmt.Errorf("%s: signing key: %w", fn, err)
	}
	renderer, err := render.New(a.Settings.Site())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	mailer := ses.New(sesv2.NewFromConfig(cfg), getenv(EnvConfigurationSet))
	engineCfg := delivery.Config{Letterhead: a.Settings.Letterhead(), Logger: a.Log}

	var dispatcher newsroom.Dispatcher
	switch fn {
	case APIFunction:
		name, err := need(EnvDigestFunction)
		if err != nil {
			return nil, err
		}
		dispatcher = &LambdaDispatcher{Client: lambda.NewFromConfig(cfg), FunctionName: name}
	case DigestFunction, SenderFunction:
		url, err := need(EnvQueueURL)
		if err != nil {
			return nil, err
		}
		a.Queue = sqs.NewQueue(awssqs.NewFromConfig(cfg), url)
		if fn == SenderFunction {
			engineCfg.Limiter = a.limiter(ctx, mailer, getenv)
		}
	default:
		return nil, fmt.Errorf("unknown function %q", fn)
	}
	a.Engine = delivery.New(store, signer, renderer, mailer, nil, engineCfg)
	if a.Queue != nil {
		a.Engine.SetQueue(a.Queue)
	}
	if dispatcher == nil {
		dispatcher = inlineFanout{a.Engine}
	}
	a.Service = newsroom.New(store, signer, renderer, mailer, a.Engine, dispatcher, newsroom.Config{
		Site: a.Settings.Site(), From: a.Settings.From, Logger: a.Log,
	})
	return a, nil
}

// NewLogger returns a JSON logger to w at the level AWS_LAMBDA_LOG_LEVEL
// names, INFO by default: what CloudWatch reads best, and what a function
// whose LoggingConfig says LogFormat: JSON must write.
func NewLogger(getenv func(string) string, w io.Writer) *slog.Logger {
	var level slog.Level
	if v := getenv(EnvLogLevel); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			level = slog.LevelInfo
		}
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// limiter paces this sender at its share of the account's send rate, read
// once from SES GetAccount at cold start.
func (a *App) limiter(ctx context.Context, m *ses.Mailer, getenv func(string) string) *rate.Limiter {
	account, err := m.MaxSendRate(ctx)
	if err != nil || account <= 0 {
		a.Log.Warn("SES send rate unknown; sending at the fallback rate", "fallback", FallbackSendRate, "err", err)
		account = FallbackSendRate / SendRateShare
	}
	senders := 1
	if n, err := strconv.Atoi(getenv(EnvSenderConcurrency)); err == nil && n > 0 {
		senders = n
	}
	r := SendRateShare * account / float64(senders)
	a.Log.Info("send rate", "perSecond", r, "accountMax", account, "senders", senders)
	return rate.NewLimiter(rate.Limit(r), max(1, int(r)))
}

// inlineFanout is the digest function's dispatcher: it is the function
// that fans out, so it does so at once.
type inlineFanout struct{ engine *delivery.Engine }

// Dispatch fans the digest out now.
func (d inlineFanout) Dispatch(ctx context.Context, digestID string) error {
	return d.engine.Fanout(ctx, digestID)
}
