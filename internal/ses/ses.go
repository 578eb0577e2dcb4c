// Package ses sends Broadsheet's email through Amazon SES v2 (SendEmail with
// simple content) and says, through the eml sentinels, what became of each
// send: throttled, rejected, paused, or unknown because the request left
// and no answer came back.
package ses

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http/httptrace"
	"net/mail"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/eml"
)

// DefaultTimeout bounds one Send, retries included, unless the caller's
// context ends sooner: a connection that hangs must not hold a sender for
// the rest of its Lambda invocation.
const DefaultTimeout = 15 * time.Second

// sendAttempts is how many times one SendEmail is tried; only throttling
// is tried again (see sendRetryer).
const sendAttempts = 3

// Mailer sends messages through SES v2. It implements delivery.Mailer.
type Mailer struct {
	// sendEmail is (*sesv2.Client).SendEmail. A method value, not the
	// client: in a binary that executes templates, the linker keeps every
	// exported method of a type reachable from an interface value, and a
	// Mailer is one (a delivery.Mailer), so holding the client would keep
	// the whole SES v2 API, 1.6 MB of the api and sender bootstraps.
	sendEmail func(context.Context, *sesv2.SendEmailInput, ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
	// sendBulkEmail is (*sesv2.Client).SendBulkEmail, for SendBulk.
	sendBulkEmail func(context.Context, *sesv2.SendBulkEmailInput, ...func(*sesv2.Options)) (*sesv2.SendBulkEmailOutput, error)
	configSet     string
	// Timeout bounds one Send, and one SendBulkEmail call of SendBulk;
	// zero means DefaultTimeout.
	Timeout time.Duration
	// BulkSize is the most messages SendBulk puts in one SendBulkEmail
	// call; zero (or more than 50) means 50, SES's limit. SES counts every
	// recipient of a call against the account's maximum send rate at
	// once, so the sender function sets it to what it sends in a second
	// (awsapp.PaceFor, from MaxSendRate).
	BulkSize int
	retryer  aws.Retryer
	// templates holds the SendBulk template of recent layouts.
	templates templateCache
}

var _ delivery.BulkMailer = (*Mailer)(nil)

// New returns a mailer that sends through client, in configurationSet when
// it is not empty (the set that publishes send, bounce and complaint
// events).
//
// Send does not use the client's retryer: the SDK's standard retryer tries
// a request again after a timeout, a dropped connection or a 5xx, and for
// SendEmail each of those may have sent the message already. Send replaces
// it, for SendEmail only, with one that tries again on throttling alone
// (TooManyRequestsException, Throttling/ThrottlingException and
// LimitExceededException for the sending rate), up to three attempts with
// the SDK's jittered backoff: a throttled request was refused and sent
// nothing. Every other failure comes back at once, classified. SendBulk's
// SendBulkEmail calls use the same retryer.
func New(client *sesv2.Client, configurationSet string) *Mailer {
	return &Mailer{
		sendEmail:     client.SendEmail,
		sendBulkEmail: client.SendBulkEmail,
		configSet:     configurationSet,
		retryer:       sendRetryer(nil),
	}
}

// sendRetryer returns the SendEmail retryer; backoff nil means the SDK's.
func sendRetryer(backoff retry.BackoffDelayer) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = sendAttempts
		o.Retryables = []retry.IsErrorRetryable{
			retry.NoRetryCanceledError{},
			retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				return aws.BoolTernary(rateThrottled(err))
			}),
		}
		o.Throttles = []retry.IsErrorThrottle{retry.IsErrorThrottleFunc(func(err error) aws.Ternary {
			return aws.BoolTernary(rateThrottled(err))
		})}
		// The token bucket would turn a burst of throttling into
		// "retry quota exceeded" errors; the attempts are bounded anyway.
		o.RateLimiter = ratelimit.None
		if backoff != nil {
			o.Backoff = backoff
		}
	})
}

// Send sends msg and returns the message ID SES assigned, which is the ID
// SES's send, delivery, bounce and complaint events carry.
//
// SES simple content cannot carry our own Message-ID or Date: SES writes
// both (msg.MessageID and msg.Date are not sent), so the returned ID, not
// msg.MessageID, is what reconciliation must match. msg.Headers go out as
// SES message headers (List-Unsubscribe, List-Unsubscribe-Post, List-Id…);
// msg.Tags become SES message tags, cleaned by TagValue.
//
// Errors wrap eml.ErrThrottled, eml.ErrRejected, eml.ErrPaused or
// eml.ErrUnknownOutcome (see classify); any other error means the message
// did not leave. A message that fails eml validation is ErrRejected: it
// would fail the same way every time. Errors do not name the recipient, as
// they end up in logs.
func (m *Mailer) Send(ctx context.Context, msg *eml.Message) (string, error) {
	in, err := m.input(msg)
	if err != nil {
		return "", fmt.Errorf("ses send: %v: %w", err, eml.ErrRejected)
	}
	var out *sesv2.SendEmailOutput
	err = m.do(ctx, func(ctx context.Context) (err error) {
		out, err = m.sendEmail(ctx, in, m.withRetryer)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("ses send: %w", err)
	}
	return aws.ToString(out.MessageId), nil
}

// do makes one SES call, bounded by the mailer's timeout, and returns its
// error classified. An error before the call (the context has ended) is
// returned as it is: nothing was sent.
func (m *Mailer) do(ctx context.Context, call func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// The trace tells whether the last attempt's request was written in
	// full: an error after that point leaves the outcome unknown, one
	// before it means SES never saw the message.
	var a attempt
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn: func(string) { a.traced.Store(true); a.wrote.Store(false) },
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				a.wrote.Store(true)
			}
		},
	})
	if err := call(ctx); err != nil {
		return classify(err, &a)
	}
	return nil
}

// withRetryer makes a call use the mailer's throttling-only retryer.
func (m *Mailer) withRetryer(o *sesv2.Options) { o.Retryer = m.retryer }

// attempt is what the HTTP trace saw of the last request.
type attempt struct {
	traced atomic.Bool // the transport reports to httptrace
	wrote  atomic.Bool // the request was written in full
}

// input builds the SendEmail request for msg.
func (m *Mailer) input(msg *eml.Message) (*sesv2.SendEmailInput, error) {
	if err := msg.Validate(); err != nil {
		return nil, err
	}
	from, err := address(msg.From)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	to, err := address(msg.To)
	if err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	htmlBody, text := msg.Bodies()
	body := &types.Body{Text: content(string(text))}
	if len(htmlBody) > 0 {
		body.Html = content(string(htmlBody))
	}
	var headers []types.MessageHeader
	for _, h := range msg.Headers {
		headers = append(headers, header(h))
	}
	in := &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(from),
		Destination:      &types.Destination{ToAddresses: []string{to}},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: content(msg.SubjectLine()),
			Body:    body,
			Headers: headers,
		}},
		EmailTags: tags(msg.Tags),
	}
	if msg.ReplyTo != "" {
		replyTo, err := address(msg.ReplyTo)
		if err != nil {
			return nil, fmt.Errorf("reply-to: %w", err)
		}
		in.ReplyToAddresses = []string{replyTo}
	}
	if m.configSet != "" {
		in.ConfigurationSetName = aws.String(m.configSet)
	}
	return in, nil
}

// address formats an address for SES, which wants a display name that is
// not ASCII as an RFC 2047 encoded word; net/mail writes it so.
func address(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", err
	}
	if a.Name == "" {
		return a.Address, nil
	}
	return a.String(), nil
}

// header returns h as an SES message header. SES takes printable ASCII
// only; Q-encoding leaves ASCII as it is.
func header(h eml.Header) types.MessageHeader {
	return types.MessageHeader{Name: aws.String(h.Name), Value: aws.String(mime.QEncoding.Encode("utf-8", h.Value))}
}

func content(s string) *types.Content {
	return &types.Content{Data: aws.String(s), Charset: aws.String("UTF-8")}
}

// tags turns message tags into SES message tags, sorted by name. Tags whose
// name or value comes out empty are left out: SES requires both.
func tags(m map[string]string) []types.MessageTag {
	var out []types.MessageTag
	for name, value := range m {
		name, value = TagValue(name), TagValue(value)
		if name == "" || value == "" {
			continue
		}
		out = append(out, types.MessageTag{Name: aws.String(name), Value: aws.String(value)})
	}
	slices.SortFunc(out, func(a, b types.MessageTag) int { return strings.Compare(*a.Name, *b.Name) })
	return out
}

// maxTagLen is the longest SES message tag name or value.
const maxTagLen = 256

// TagValue returns s as SES accepts a message tag name or value: each
// character outside A–Z, a–z, 0–9, '_' and '-' becomes '_', and it is cut
// to 256 characters. Whatever matches SES events back to ledger rows by tag
// must clean its IDs the same way.
func TagValue(s string) string {
	if len(s) <= maxTagLen && strings.IndexFunc(s, func(r rune) bool { return !tagChar(r) }) < 0 {
		return s // the IDs Broadsheet makes are
	}
	var b strings.Builder
	for _, r := range s {
		if b.Len() == maxTagLen {
			break
		}
		if tagChar(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// tagChar reports whether SES takes r in a tag name or value.
func tagChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

// MaxSendRate returns the account's maximum send rate, in messages per
// second, from client's GetAccount, with the client's retryer, as it
// changes nothing. It is a function, not a Mailer method, so that only a
// binary that calls it links GetAccount and needs ses:GetAccount: the
// sender does, the api, which also sends mail, does not.
func MaxSendRate(ctx context.Context, client *sesv2.Client) (float64, error) {
	out, err := client.GetAccount(ctx, &sesv2.GetAccountInput{})
	if err != nil {
		return 0, fmt.Errorf("get SES account: %w", err)
	}
	if out.SendQuota == nil {
		return 0, errors.New("get SES account: no send quota in the answer")
	}
	return out.SendQuota.MaxSendRate, nil
}

// Error codes SES uses for throttling beyond its modeled
// TooManyRequestsException; the SES guide names ThrottlingException, the
// query API "Throttling".
var throttleCodes = map[string]bool{
	"TooManyRequestsException": true,
	"ThrottlingException":      true,
	"Throttling":               true,
	"LimitExceededException":   true,
}

// dailyQuota reports whether err is SES saying the 24-hour sending quota is
// spent. That lasts hours, not seconds: it pauses sending rather than
// throttling it, so that readers do not use up their attempts.
func dailyQuota(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && throttleCodes[api.ErrorCode()] &&
		strings.Contains(strings.ToLower(api.ErrorMessage()), "daily message quota")
}

// rateThrottled reports whether err is SES refusing a request for the
// sending rate: nothing was sent, and a later try should succeed.
func rateThrottled(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && throttleCodes[api.ErrorCode()] && !dailyQuota(err)
}

// classify maps a SendEmail error to the eml sentinel that says what became
// of the message:
//
//	TooManyRequestsException, ThrottlingException,
//	Throttling, LimitExceededException                 → ErrThrottled
//	  … whose message says "Daily message quota"        → ErrPaused
//	MessageRejected, MailFromDomainNotVerifiedException,
//	BadRequestException                                 → ErrRejected
//	SendingPausedException, AccountSuspendedException   → ErrPaused
//	a 2xx answer we could not read                      → ErrUnknownOutcome
//	no answer, after the request was written            → ErrUnknownOutcome
//	no answer, before it was written (dial failed…)     → as it is (not sent)
//	anything else (5xx, NotFoundException…)             → as it is
//
// Whether the request was written comes from an httptrace hook on the
// attempt; a transport that does not report to httptrace gets the
// cautious answer, ErrUnknownOutcome, unless the dial itself failed.
func classify(err error, a *attempt) error {
	var (
		throttled  *types.TooManyRequestsException
		rejected   *types.MessageRejected
		mailFrom   *types.MailFromDomainNotVerifiedException
		badRequest *types.BadRequestException
		paused     *types.SendingPausedException
		suspended  *types.AccountSuspendedException
		api        smithy.APIError
		resp       *smithyhttp.ResponseError
		send       *smithyhttp.RequestSendError
		canceled   *smithy.CanceledError
		between    *aws.RequestCanceledError
	)
	switch {
	case dailyQuota(err):
		return fmt.Errorf("%w: %w", eml.ErrPaused, err)
	case errors.As(err, &throttled), errors.As(err, &api) && throttleCodes[api.ErrorCode()]:
		return fmt.Errorf("%w: %w", eml.ErrThrottled, err)
	case errors.As(err, &rejected), errors.As(err, &mailFrom), errors.As(err, &badRequest):
		return fmt.Errorf("%w: %w", eml.ErrRejected, err)
	case errors.As(err, &paused), errors.As(err, &suspended):
		return fmt.Errorf("%w: %w", eml.ErrPaused, err)
	case errors.As(err, &resp) && resp.HTTPStatusCode() != 0:
		// An answer came (status 0 is the SDK's wrapper around a
		// transport error, handled below).
		if s := resp.HTTPStatusCode(); s >= 200 && s < 300 {
			return fmt.Errorf("%w: %w", eml.ErrUnknownOutcome, err)
		}
		return err
	case errors.As(err, &between):
		// The context ended in the backoff between attempts; a retry only
		// follows a throttled answer, so nothing was sent.
		return err
	case a.traced.Load():
		if a.wrote.Load() {
			return fmt.Errorf("%w: %w", eml.ErrUnknownOutcome, err)
		}
		return err
	case errors.As(err, &send), errors.As(err, &canceled):
		// A transport that does not report to httptrace failed: without
		// knowing whether the request left, assume it did, unless the
		// dial itself failed.
		if dialError(err) {
			return err
		}
		return fmt.Errorf("%w: %w", eml.ErrUnknownOutcome, err)
	}
	// The SDK gave up before sending (signing, endpoint resolution…).
	return err
}

// dialError reports whether err is a failure to connect at all.
func dialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED)
}
