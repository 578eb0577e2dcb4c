// Package awsapp wires Broadsheet for AWS Lambda: it reads a function's
// settings from the environment, builds the AWS clients (whose endpoints
// AWS_ENDPOINT_URL_<SERVICE> variables may point at local stand-ins) and
// the adapters on them, once per cold start, and holds the handlers the
// five functions give lambda.Start:
//
//	api       (*apifunc.API).Handle              API Gateway HTTP API, payload v2
//	digest    (*App).HandleDigest                EventBridge Scheduler, or the api function
//	sender    (*App).HandleSQS                   SQS, with partial batch responses
//	feedback  (*feedbackfunc.Handler).HandleSNS  SES event publishing through SNS
//	ingest    (*Ingest).HandleIngest             EventBridge Scheduler
//
// The packages under it hold what only some functions link: apifunc the
// api's handler, sesmail the SES client (api and sender), feedbackfunc
// the feedback function, and awsenv what every function builds from its
// environment (the AWS config, the logger, the store).
//
// A handler returns an error only where a retry can help: bad input is
// logged and acknowledged.
package awsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/time/rate"

	"github.com/broadsheet-news/broadsheet/internal/awsapp/awsenv"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/eml"
	"github.com/broadsheet-news/broadsheet/internal/feedback"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/secrets"
	"github.com/broadsheet-news/broadsheet/internal/settings"
	"github.com/broadsheet-news/broadsheet/internal/sqs"
	"github.com/broadsheet-news/broadsheet/internal/token"
)

// The environment variables of the Lambda functions, beyond the shared
// settings (package settings) and the signing key (package secrets).
const (
	// EnvTable names the DynamoDB table: every function.
	EnvTable = awsenv.EnvTable
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
	// EnvLease is how long a sender's claim on a reader's copy holds
	// (a Go duration, such as "2m"), the delivery engine's default when
	// unset. It must outlast the sender function's timeout: a copy whose
	// invocation timed out or was killed is reconciled once it runs out.
	// Optional: digest and sender.
	EnvLease = "BROADSHEET_LEASE"
	// EnvUnknownGrace is how long a copy of unknown outcome waits for its
	// SES Send event before the sweep sends it again (a Go duration), the
	// engine's 15 minutes when unset. Optional: digest.
	EnvUnknownGrace = "BROADSHEET_UNKNOWN_GRACE"
	// EnvLogLevel is the application log level Lambda sets from the
	// function's LoggingConfig (DEBUG, INFO, WARN, ERROR); INFO when unset.
	EnvLogLevel = awsenv.EnvLogLevel
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
// not use are nil. The feedback function is built by package
// feedbackfunc; an App with only Log, Store and Feedback set handles its
// events too (HandleSNS).
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

// Each function has its own loader, and builds only the AWS clients it
// calls. That is least privilege, and it keeps the bootstraps small and
// their cold starts short, which takes these rules:
//
//   - In a binary that executes templates (api, sender), text/template's
//     reflection makes the linker keep every exported method of every type
//     reachable from an interface value, so an adapter that is used as an
//     interface (a newsletter.Store, a delivery.Mailer) holds method values
//     of the operations it calls, never an SDK client: the DynamoDB and
//     SES clients cost 1.4 and 1.6 MB that way.
//   - Importing a package costs its initialisation whatever is called: an
//     SDK service's schemas (SES 0.6 MB of allocations, Lambda 0.7 MB, SSM
//     1.25 MB of binary) and hermes. This package, which the api, digest
//     and sender functions import, imports neither SES, nor the Lambda
//     client, nor hermes: package sesmail adds SES for the api and the
//     sender, package apifunc the rest for the api, and the feedback
//     function imports this package not at all (package feedbackfunc). No
//     function imports the SSM or Lambda clients: package secrets makes
//     its one GetParameter call, and apifunc its one Invoke, with the
//     SDK's core.
//   - No function imports the SDK's config loader (package awsenv reads
//     the environment instead): its credential chain links the STS, SSO,
//     SSO OIDC and Sign-In clients, 1.9 MB.
//   - Only the functions that send mail build the SES mailer: the digest
//     function, which only enqueues, holds a mailer that refuses, so that
//     it links no SES operation (and needs no SES permission).
//   - The transactional emails are package transactional's, not methods
//     of the digest renderer, which the sender also holds (1.2 MB).

// Mail is how the sender function sends email and how fast it may:
// package sesmail builds it on the SES client, which this package does
// not import.
type Mail struct {
	// Mailer sends the emails.
	Mailer delivery.Mailer
	// MaxSendRate reads the account's maximum send rate, per second (SES
	// GetAccount).
	MaxSendRate func(context.Context) (float64, error)
	// SetBulkSize sets the most destinations Mailer puts in one bulk call
	// (the Pace's BulkSize); nil when Mailer does not send in bulk. It is
	// called before the first send.
	SetBulkSize func(n int)
}

// SenderDeps are what the sender function has and the others do not.
type SenderDeps struct {
	// Mail builds the SES mail with cfg, tagging messages with the
	// configuration set (BROADSHEET_SES_CONFIGURATION_SET, may be empty):
	// sesmail.New.
	Mail func(cfg aws.Config, configurationSet string) Mail
}

// LoadDigest builds the digest function's app: it fans digests out inline,
// onto the send queue.
func LoadDigest(ctx context.Context, getenv func(string) string, stdout io.Writer) (*App, error) {
	a, cfg, err := begin(ctx, DigestFunction, getenv, stdout)
	if err != nil {
		return nil, err
	}
	p, err := a.parts(ctx, cfg, getenv, noMail{})
	if err != nil {
		return nil, err
	}
	if err := a.queue(cfg, getenv); err != nil {
		return nil, err
	}
	a.Engine = delivery.New(a.Store, p.signer, p.renderer, p.mailer, a.Queue, p.engineConfig(a))
	a.service(p, nil, inlineFanout{a.Engine})
	return a, nil
}

// LoadSender builds the sender function's app: the engine sends through
// SES at this sender's share of the account's send rate, and puts readers
// to retry back on the queue.
func LoadSender(ctx context.Context, getenv func(string) string, stdout io.Writer, deps SenderDeps) (*App, error) {
	a, cfg, err := begin(ctx, SenderFunction, getenv, stdout)
	if err != nil {
		return nil, err
	}
	mail := deps.Mail(cfg, getenv(EnvConfigurationSet))
	// The account's send rate is read while the rest is built: on AWS its
	// round trip, a TLS handshake included, overlaps the SSM one.
	limiter := make(chan Pace, 1)
	go func() { limiter <- a.pace(ctx, mail.MaxSendRate, getenv) }()
	p, err := a.parts(ctx, cfg, getenv, mail.Mailer)
	if err != nil {
		return nil, err
	}
	if err := a.queue(cfg, getenv); err != nil {
		return nil, err
	}
	ec := p.engineConfig(a)
	pace := <-limiter
	ec.Limiter = rate.NewLimiter(rate.Limit(pace.Limit), pace.Burst)
	if mail.SetBulkSize != nil {
		mail.SetBulkSize(pace.BulkSize)
	}
	a.Engine = delivery.New(a.Store, p.signer, p.renderer, p.mailer, a.Queue, ec)
	a.service(p, nil, inlineFanout{a.Engine})
	return a, nil
}

// APIDeps are what the api function has and the others do not. Package
// apifunc provides them, so that this package does not import hermes,
// SES or the Lambda client.
type APIDeps struct {
	// Mailer builds the SES mailer with cfg, tagging messages with the
	// configuration set: sesmail.Mailer.
	Mailer func(cfg aws.Config, configurationSet string) delivery.Mailer
	// Transactional builds the transactional emails of the site.
	Transactional func(render.Site) (newsroom.Transactional, error)
	// Dispatcher starts a digest's sends through the digest function the
	// environment names (BROADSHEET_DIGEST_FUNCTION).
	Dispatcher func(cfg aws.Config, digestFunction string) (newsroom.Dispatcher, error)
}

// LoadAPI builds the api function's app: sends are dispatched to the
// digest function; the engine only builds previews and test emails.
func LoadAPI(ctx context.Context, getenv func(string) string, stdout io.Writer, deps APIDeps) (*App, error) {
	a, cfg, err := begin(ctx, APIFunction, getenv, stdout)
	if err != nil {
		return nil, err
	}
	name, err := need(APIFunction, getenv, EnvDigestFunction)
	if err != nil {
		return nil, err
	}
	p, err := a.parts(ctx, cfg, getenv, deps.Mailer(cfg, getenv(EnvConfigurationSet)))
	if err != nil {
		return nil, err
	}
	mails, err := deps.Transactional(a.Settings.Site())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Function, err)
	}
	dispatcher, err := deps.Dispatcher(cfg, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Function, err)
	}
	a.Engine = delivery.New(a.Store, p.signer, p.renderer, p.mailer, nil, p.engineConfig(a))
	a.service(p, mails, dispatcher)
	return a, nil
}

// need returns a required variable, or an error naming it.
func need(fn Function, getenv func(string) string, env string) (string, error) {
	v := strings.TrimSpace(getenv(env))
	if v == "" {
		return "", fmt.Errorf("%s: %s is required", fn, env)
	}
	return v, nil
}

// begin starts every function's app: the logger, the AWS config from the
// environment (which honours AWS_ENDPOINT_URL_<SERVICE>) and the DynamoDB
// store.
func begin(_ context.Context, fn Function, getenv func(string) string, stdout io.Writer) (*App, aws.Config, error) {
	a := &App{Function: fn, Log: NewLogger(getenv, stdout).With("function", string(fn))}
	if _, err := need(fn, getenv, EnvTable); err != nil {
		return nil, aws.Config{}, err
	}
	cfg, err := awsenv.Config(getenv)
	if err != nil {
		return nil, aws.Config{}, fmt.Errorf("%s: AWS config: %w", fn, err)
	}
	store, err := awsenv.Store(cfg, getenv)
	if err != nil {
		return nil, aws.Config{}, fmt.Errorf("%s: %w", fn, err)
	}
	a.Store = store
	return a, cfg, nil
}

// parts are what the api, digest and sender functions share: the
// settings, the signer, the renderer and the mailer (SES in the api and
// sender, noMail in the digest function).
type parts struct {
	signer   *token.Signer
	renderer *render.Renderer
	mailer   delivery.Mailer
	// lease and unknownGrace are EnvLease and EnvUnknownGrace, zero when
	// unset.
	lease, unknownGrace time.Duration
}

func (a *App) parts(ctx context.Context, cfg aws.Config, getenv func(string) string, mailer delivery.Mailer) (*parts, error) {
	var err error
	if a.Settings, err = settings.FromEnv(getenv); err != nil {
		return nil, fmt.Errorf("%s: %w", a.Function, err)
	}
	key, err := secrets.SigningKey(ctx, getenv, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Function, err)
	}
	p := &parts{mailer: mailer}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{{EnvLease, &p.lease}, {EnvUnknownGrace, &p.unknownGrace}} {
		v := strings.TrimSpace(getenv(d.env))
		if v == "" {
			continue
		}
		if *d.to, err = time.ParseDuration(v); err != nil || *d.to <= 0 {
			return nil, fmt.Errorf("%s: %s=%q: want a positive duration such as 2m", a.Function, d.env, v)
		}
	}
	if p.signer, err = token.NewSigner(key); err != nil {
		return nil, fmt.Errorf("%s: signing key: %w", a.Function, err)
	}
	if p.renderer, err = render.New(a.Settings.Site()); err != nil {
		return nil, fmt.Errorf("%s: %w", a.Function, err)
	}
	return p, nil
}

func (p *parts) engineConfig(a *App) delivery.Config {
	return delivery.Config{Letterhead: a.Settings.Letterhead(), Logger: a.Log, Lease: p.lease, UnknownGrace: p.unknownGrace}
}

// queue builds the SQS send queue.
func (a *App) queue(cfg aws.Config, getenv func(string) string) error {
	url, err := need(a.Function, getenv, EnvQueueURL)
	if err != nil {
		return err
	}
	a.Queue = sqs.NewQueue(awssqs.NewFromConfig(cfg), url)
	return nil
}

// service builds the newsroom on the engine, starting sends through d;
// mails is nil but in the api function.
func (a *App) service(p *parts, mails newsroom.Transactional, d newsroom.Dispatcher) {
	// MailWorkers stays zero: a Lambda function is frozen once it has
	// answered, so a confirmation email must go out before it answers.
	a.Service = newsroom.New(a.Store, p.signer, p.renderer, mails, p.mailer, a.Engine, d, newsroom.Config{
		Site: a.Settings.Site(), From: a.Settings.From, Logger: a.Log,
	})
}

// NewLogger returns a JSON logger to w at the level AWS_LAMBDA_LOG_LEVEL
// names, INFO by default: what CloudWatch reads best, and what a function
// whose LoggingConfig says LogFormat: JSON must write.
func NewLogger(getenv func(string) string, w io.Writer) *slog.Logger {
	return awsenv.NewLogger(getenv, w)
}

// pace reads the account's send rate once (SES GetAccount), at cold
// start, and returns this sender's share of it.
func (a *App) pace(ctx context.Context, maxSendRate func(context.Context) (float64, error), getenv func(string) string) Pace {
	account, err := maxSendRate(ctx)
	if err != nil || account <= 0 {
		a.Log.Warn("SES send rate unknown; sending at the fallback rate", "fallback", FallbackSendRate, "err", err)
		account = 0
	}
	senders := 1
	if n, err := strconv.Atoi(getenv(EnvSenderConcurrency)); err == nil && n > 0 {
		senders = n
	}
	p := PaceFor(account, senders)
	a.Log.Info("send rate", "perSecond", p.Limit, "accountMax", account, "senders", senders, "bulkSize", p.BulkSize)
	return p
}

// MaxBulkDestinations is the most destinations SES takes in one
// SendBulkEmail call.
const MaxBulkDestinations = 50

// Pace is how fast one sender function sends: Limit messages a second,
// in bursts of at most Burst, in bulk calls of at most BulkSize
// destinations. A call never holds more destinations than the sender
// sends in a second: SES counts them against the account's maximum send
// rate together, and says the destinations one call may have "may be
// limited by your account's maximum sending rate".
type Pace struct {
	Limit    float64
	Burst    int
	BulkSize int
}

// PaceFor returns the pace of one of senders sender functions sharing an
// account whose maximum send rate is accountRate a second: together they
// take SendRateShare of it. An accountRate of zero or less (unknown) is
// taken as the fallback, FallbackSendRate for all the senders.
func PaceFor(accountRate float64, senders int) Pace {
	if accountRate <= 0 {
		accountRate = FallbackSendRate / SendRateShare
	}
	senders = max(senders, 1)
	r := SendRateShare * accountRate / float64(senders)
	n := max(1, int(r))
	return Pace{Limit: r, Burst: n, BulkSize: min(n, MaxBulkDestinations)}
}

// inlineFanout is the digest function's dispatcher: it is the function
// that fans out, so it does so at once.
type inlineFanout struct{ engine *delivery.Engine }

// Dispatch fans the digest out now.
func (d inlineFanout) Dispatch(ctx context.Context, digestID string) error {
	return d.engine.Fanout(ctx, digestID)
}

// ErrNoMail is what the digest function's mailer answers: that function
// only fans digests out onto the send queue, and the sender sends them.
var ErrNoMail = errors.New("the digest function does not send mail")

// noMail is the digest function's mailer. Its engine and newsroom never
// send, and with no SES client the bootstrap links no SES operation,
// which the function's policy rightly does not allow.
type noMail struct{}

var _ delivery.Mailer = noMail{}

// Send refuses with ErrNoMail.
func (noMail) Send(context.Context, *eml.Message) (string, error) {
	return "", ErrNoMail
}
