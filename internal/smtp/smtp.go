// Package smtp sends Broadsheet's mail through an SMTP server (a local
// Mailpit, a relay, a submission port), keeping a small pool of open
// connections.
//
// The client is the standard library's net/smtp. It is frozen but complete
// for what is needed here (EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA,
// RSET), it leaves connection deadlines entirely to the caller, which is how
// context deadlines and cancellation are honoured, and its PlainAuth refuses
// to send a password in clear text except to loopback. The emersion/go-smtp
// client resets the connection deadline around every command to its own
// timeouts, which fights a caller's context, and would need the TLS rule
// re-implemented. The emersion server is still used, in smtptest.
package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
)

// Defaults for the options.
const (
	DefaultPoolSize = 4
	DefaultTimeout  = time.Minute
)

// Option configures a Mailer.
type Option func(*Mailer)

// WithPoolSize sets how many connections the Mailer keeps open and so how
// many messages it sends at once (DefaultPoolSize when n < 1).
func WithPoolSize(n int) Option {
	return func(m *Mailer) {
		if n >= 1 {
			m.poolSize = n
		}
	}
}

// WithTLSConfig sets the TLS config for STARTTLS, for instance to trust a
// test server's certificate. ServerName defaults to the URL's host.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(m *Mailer) { m.tlsConfig = cfg }
}

// WithLocalName sets the name the Mailer gives in EHLO ("localhost" by
// default).
func WithLocalName(name string) Option {
	return func(m *Mailer) { m.localName = name }
}

// WithTimeout bounds a Send whose context has no deadline (DefaultTimeout
// by default).
func WithTimeout(d time.Duration) Option {
	return func(m *Mailer) {
		if d > 0 {
			m.timeout = d
		}
	}
}

// Mailer sends messages over SMTP. It keeps up to its pool size of
// connections open and reuses them, with RSET between messages. It is safe
// for concurrent use; Close it when done.
type Mailer struct {
	addr      string // host:port
	host      string
	auth      smtp.Auth
	tlsConfig *tls.Config
	localName string
	timeout   time.Duration
	poolSize  int
	dialer    net.Dialer

	slots chan struct{} // one token per connection that may be open

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
}

// conn is one open SMTP session.
type conn struct {
	c  *smtp.Client
	nc net.Conn // the TCP connection under c, for deadlines
}

// New returns a Mailer for rawURL: smtp://host:port, or
// smtp://user:pass@host:port to authenticate with AUTH PLAIN. The port
// defaults to 25. STARTTLS is used whenever the server offers it; a
// password is only ever sent over TLS or to a loopback host. New does not
// connect.
func New(rawURL string, opts ...Option) (*Mailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error repeats the URL, password and all; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("smtp URL: %w", err)
	}
	if u.Scheme != "smtp" {
		return nil, fmt.Errorf("smtp URL: scheme %q, want smtp", u.Scheme)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" || u.Opaque != "" {
		return nil, errors.New("smtp URL: no host")
	}
	if port == "" {
		port = "25"
	}
	m := &Mailer{
		addr:      net.JoinHostPort(host, port),
		host:      host,
		localName: "localhost",
		timeout:   DefaultTimeout,
		poolSize:  DefaultPoolSize,
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		m.auth = smtp.PlainAuth("", u.User.Username(), pass, host)
	}
	for _, opt := range opts {
		opt(m)
	}
	m.slots = make(chan struct{}, m.poolSize)
	return m, nil
}

// Send delivers msg and returns its Message-ID, generated when
// msg.MessageID is empty (msg itself is not changed). Errors wrap the eml
// sentinels: eml.ErrThrottled for 421, 450, 451 and 452 replies;
// eml.ErrRejected for an invalid message or a 5xx reply to MAIL, RCPT or
// DATA; eml.ErrUnknownOutcome when the connection fails or ctx ends after
// the whole message was written but before the server answered. Any other
// error (a failed dial, a TLS or AUTH failure, ctx ending earlier) means the
// message was not handed over.
func (m *Mailer) Send(ctx context.Context, msg *eml.Message) (messageID string, err error) {
	if msg == nil {
		return "", fmt.Errorf("smtp: nil message: %w", eml.ErrRejected)
	}
	if err := msg.Validate(); err != nil {
		return "", fmt.Errorf("smtp: invalid message: %w: %w", eml.ErrRejected, err)
	}
	out := *msg
	if out.MessageID == "" {
		out.MessageID = eml.NewMessageID(out.From)
	}
	data, err := out.Bytes()
	if err != nil {
		return "", fmt.Errorf("smtp: build message: %w: %w", eml.ErrRejected, err)
	}
	from, err := mail.ParseAddress(out.From)
	if err != nil {
		return "", fmt.Errorf("smtp: from address: %w: %w", eml.ErrRejected, err)
	}
	to, err := mail.ParseAddress(out.To)
	if err != nil {
		return "", fmt.Errorf("smtp: to address: %w: %w", eml.ErrRejected, err)
	}

	if err := m.send(ctx, from.Address, to.Address, data); err != nil {
		return "", fmt.Errorf("smtp send via %s: %w", m.addr, err)
	}
	return out.MessageID, nil
}

func (m *Mailer) send(ctx context.Context, from, to string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait for connection: %w", ctx.Err())
	}
	defer func() { <-m.slots }()

	deadline, hasDeadline := ctx.Deadline()
	if !hasDeadline {
		deadline = time.Now().Add(m.timeout)
	}
	cn, err := m.get()
	if err != nil {
		return err
	}
	if cn != nil {
		// A pooled connection may have been closed by the server while
		// idle. RSET both checks it and clears any failed transaction;
		// nothing has been handed over yet, so a failure here costs only a
		// redial.
		usable, err := m.use(ctx, deadline, cn, func() error { return cn.c.Reset() })
		if err != nil || !usable {
			cn.close()
			cn = nil
		}
	}
	if cn == nil {
		if cn, err = m.dial(ctx, deadline); err != nil {
			return withContext(ctx, deadline, err)
		}
	}
	usable, err := m.use(ctx, deadline, cn, func() error { return transact(cn.c, from, to, data) })
	if !usable || !reusable(err) {
		cn.close()
		if err != nil {
			return withContext(ctx, deadline, err)
		}
		return nil
	}
	m.put(cn)
	return err
}

// use runs fn on cn with the connection deadline set to deadline and cut
// short if ctx ends. It reports whether cn is still usable: when ctx ended
// while fn ran, cn's deadline may have been moved into the past, so the
// caller must close it, whatever fn returned.
func (m *Mailer) use(ctx context.Context, deadline time.Time, cn *conn, fn func() error) (usable bool, err error) {
	if err := cn.nc.SetDeadline(deadline); err != nil {
		return false, err
	}
	stop := context.AfterFunc(ctx, func() { cn.nc.SetDeadline(time.Unix(1, 0)) })
	err = fn()
	return stop(), err
}

// transact sends one message on an open session and classifies the result.
func transact(c *smtp.Client, from, to string, data []byte) error {
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("MAIL FROM: %w", classify(err, true))
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("RCPT TO: %w", classify(err, true))
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", classify(err, true))
	}
	if _, err := w.Write(data); err != nil {
		// The terminating dot was never sent, so the server cannot have
		// accepted the message.
		return fmt.Errorf("write message: %w", err)
	}
	// Close writes the terminating dot and reads the reply. A reply is
	// classified; anything else (a write or read failure, a timeout) leaves
	// the outcome unknown, since the server may have taken the message.
	if err := w.Close(); err != nil {
		var te *textproto.Error
		if errors.As(err, &te) {
			return fmt.Errorf("end of data: %w", classify(err, true))
		}
		return fmt.Errorf("end of data: %w: %w", eml.ErrUnknownOutcome, err)
	}
	return nil
}

// classify wraps an SMTP reply in the eml sentinel it stands for. In a mail
// transaction (MAIL, RCPT, DATA) a 5xx reply rejects the message; outside
// one (EHLO, STARTTLS, AUTH) it is a setup error.
func classify(err error, inTransaction bool) error {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return err
	}
	switch {
	case te.Code == 421 || te.Code == 450 || te.Code == 451 || te.Code == 452:
		return fmt.Errorf("%w: %w", eml.ErrThrottled, err)
	case inTransaction && te.Code >= 500 && te.Code <= 599:
		return fmt.Errorf("%w: %w", eml.ErrRejected, err)
	}
	return err
}

// reusable reports whether a connection is still good after a send that
// returned err: after a success or an ordinary reply it is (the next send
// starts with RSET); after 421 (the server is closing) or a broken
// connection it is not.
func reusable(err error) bool {
	if err == nil {
		return true
	}
	var te *textproto.Error
	return errors.As(err, &te) && te.Code != 421 && !errors.Is(err, eml.ErrUnknownOutcome)
}

// withContext adds ctx's error to err when ctx ended or its deadline
// passed, so that callers can test for context.Canceled and
// context.DeadlineExceeded.
func withContext(ctx context.Context, deadline time.Time, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	// The connection deadline and the context's can fire in either order.
	if _, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(deadline) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

// dial opens a session: TCP, greeting, EHLO, STARTTLS when offered, AUTH
// when the URL carried a user.
func (m *Mailer) dial(ctx context.Context, deadline time.Time) (*conn, error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	nc, err := m.dialer.DialContext(dctx, "tcp", m.addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	cn := &conn{nc: nc}
	usable, err := m.use(ctx, deadline, cn, func() error {
		c, err := smtp.NewClient(nc, m.host)
		if err != nil {
			return fmt.Errorf("greeting: %w", classify(err, false))
		}
		cn.c = c
		if err := c.Hello(m.localName); err != nil {
			return fmt.Errorf("EHLO: %w", classify(err, false))
		}
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(m.clientTLS()); err != nil {
				return fmt.Errorf("STARTTLS: %w", classify(err, false))
			}
		}
		if m.auth != nil {
			if err := c.Auth(m.auth); err != nil {
				return fmt.Errorf("AUTH: %w", classify(err, false))
			}
		}
		return nil
	})
	if err == nil && !usable {
		err = ctx.Err()
	}
	if err != nil {
		cn.close()
		return nil, err
	}
	return cn, nil
}

func (m *Mailer) clientTLS() *tls.Config {
	if m.tlsConfig == nil {
		return &tls.Config{ServerName: m.host, MinVersion: tls.VersionTLS12}
	}
	cfg := m.tlsConfig.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = m.host
	}
	return cfg
}

// get takes the most recently used idle connection, or returns nil.
func (m *Mailer) get() (*conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errors.New("mailer closed")
	}
	if n := len(m.idle); n > 0 {
		cn := m.idle[n-1]
		m.idle = m.idle[:n-1]
		return cn, nil
	}
	return nil, nil
}

// put returns cn to the pool, or closes it if the Mailer is closed.
func (m *Mailer) put(cn *conn) {
	cn.nc.SetDeadline(time.Time{})
	m.mu.Lock()
	if !m.closed {
		m.idle = append(m.idle, cn)
		cn = nil
	}
	m.mu.Unlock()
	if cn != nil {
		cn.quit()
	}
}

// close drops the connection without a word to the server.
func (cn *conn) close() {
	if cn.c != nil {
		cn.c.Close()
	} else {
		cn.nc.Close()
	}
}

// quit ends the session politely, waiting at most a second for the server.
func (cn *conn) quit() {
	cn.nc.SetDeadline(time.Now().Add(time.Second))
	if cn.c == nil || cn.c.Quit() != nil {
		cn.close()
	}
}

// Close closes the idle connections and makes later sends fail. Sends in
// progress finish, and close their connections.
func (m *Mailer) Close() error {
	m.mu.Lock()
	idle := m.idle
	m.idle, m.closed = nil, true
	m.mu.Unlock()
	for _, cn := range idle {
		cn.quit()
	}
	return nil
}
