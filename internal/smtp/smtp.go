// Package smtp sends Broadsheet's mail through an SMTP server (a local
// Mailpit, a relay, a submission port), keeping a small pool of open
// connections.
//
// A session is opened with the standard library's net/smtp: greeting,
// EHLO, STARTTLS, AUTH. It is frozen but complete for that, it leaves
// connection deadlines entirely to the caller, which is how context
// deadlines and cancellation are honoured, and its PlainAuth refuses to send
// a password in clear text except to loopback. The mail transactions are
// written here, on the session's textproto connection, because net/smtp
// makes a round trip of every command and copies the message through a
// byte-at-a-time dot-stuffer:
//
//   - with CHUNKING (RFC 3030) and PIPELINING (RFC 2920), as Postfix,
//     Exchange and Gmail offer them: MAIL FROM, RCPT TO, BDAT and the
//     message in one write, their replies in one read; one round trip a
//     message, and no dot-stuffing at either end;
//   - with PIPELINING alone: MAIL FROM, RCPT TO and DATA in one write, then
//     the dot-stuffed message and its final dot (and, in SendBulk, the next
//     message's MAIL, RCPT and DATA) in a second;
//   - with neither: one command at a time.
//
// No RSET is sent between messages unless the last transaction failed
// half-way. A pooled connection is checked (a non-blocking peek at its
// socket) before a message is written whole on it, so that one the server
// closed while it sat idle is replaced rather than given a message whose
// fate would be unknown.
//
// The emersion/go-smtp client would not do: it does not pipeline, and it
// resets the connection deadline around every command to its own timeouts,
// which fights a caller's context. The emersion server is still used, in
// smtptest.
package smtp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/delivery"
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

// Recorder is told of every message the server accepted, as soon as its
// 250 is read and before the next message goes on that connection, so
// that a process killed at any moment leaves at most one accepted message
// per connection unrecorded. (*journal.Log) is one. An error from it stops
// the call: the messages after it are not sent.
type Recorder interface {
	Accepted(msg *eml.Message) error
}

// WithRecorder has the Mailer tell r of every message the server accepted.
func WithRecorder(r Recorder) Option {
	return func(m *Mailer) { m.recorder = r }
}

// Mailer sends messages over SMTP. It keeps up to its pool size of
// connections open and reuses them. It is safe for concurrent use; Close
// it when done. It implements delivery.BulkMailer.
type Mailer struct {
	addr      string // host:port
	host      string
	auth      smtp.Auth
	tlsConfig *tls.Config
	localName string
	timeout   time.Duration
	poolSize  int
	dialer    net.Dialer
	recorder  Recorder // optional

	slots chan struct{} // one token per connection that may be open

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
}

var _ delivery.BulkMailer = (*Mailer)(nil)

// conn is one open SMTP session.
type conn struct {
	c  *smtp.Client
	nc net.Conn // the TCP connection under c, for deadlines

	// Set once the session is ready (see ready).
	r          *bufio.Reader // c.Text's
	w          *bufio.Writer // c.Text's
	pipelining bool
	chunking   bool   // BDAT (RFC 3030)
	mailParams string // MAIL FROM parameters, as net/smtp sends them

	// dirty says a transaction may be open on the server (the last one
	// failed after MAIL was accepted): the next starts with RSET.
	dirty bool
	// broken says the connection failed under a command or a reply and
	// must not be used again.
	broken bool

	msg []byte // the message being sent, reused
	out []byte // what goes in the next write, reused

	recorder Recorder // the Mailer's, optional

	deadline
	peeker
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

// write writes b and flushes it: one write to the connection, since the
// session's buffered writer passes a large b straight through. On error
// it returns how much of b the connection took, as far as it can tell.
func (cn *conn) write(b []byte) (written int, err error) {
	n, err := cn.w.Write(b)
	if err == nil {
		err = cn.w.Flush()
		// What the buffer holds after a failed flush did not leave.
		n = len(b) - cn.w.Buffered()
	}
	if err != nil {
		cn.broken = true
	}
	return n, err
}

// readReply reads one reply, as textproto's ReadResponse would, without
// allocating unless the reply is not the one expected (expect is a code, or
// its first one or two digits). It returns a *textproto.Error for a reply
// with another code; any other error marks the connection broken.
func (cn *conn) readReply(expect int) error {
	code := 0
	var text []byte // only kept for an unexpected reply
	for {
		line, err := cn.readLine()
		if err != nil {
			cn.broken = true
			return err
		}
		c, more, ok := parseCodeLine(line)
		switch {
		case code == 0 && !ok:
			cn.broken = true
			return textproto.ProtocolError("invalid response: " + string(line))
		case code == 0:
			code = c
		case !ok || c != code:
			// As textproto: a stray continuation line is text.
			c, more, line = code, true, append([]byte("    "), line...)
		}
		if !codeMatches(code, expect) {
			if text != nil {
				text = append(text, '\n')
			}
			text = append(text, line[4:]...)
		}
		if !more {
			break
		}
	}
	if !codeMatches(code, expect) {
		return &textproto.Error{Code: code, Msg: string(text)}
	}
	return nil
}

// readLine returns the next line without its CRLF. It is valid until the
// next read.
func (cn *conn) readLine() ([]byte, error) {
	line, err := cn.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// A line longer than the buffer: keep its start.
		line = bytes.Clone(line)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = cn.r.ReadSlice('\n')
		}
	}
	return bytes.TrimRight(line, "\r\n"), err
}

// parseCodeLine splits a reply line "250-text" or "250 text": its code,
// whether more lines follow, and whether it is such a line.
func parseCodeLine(line []byte) (code int, more, ok bool) {
	if len(line) < 4 || (line[3] != ' ' && line[3] != '-') {
		return 0, false, false
	}
	for _, d := range line[:3] {
		if d < '0' || d > '9' {
			return 0, false, false
		}
		code = code*10 + int(d-'0')
	}
	return code, line[3] == '-', code >= 100
}

// codeMatches is textproto's check of a reply code against an expected
// code or its first digits.
func codeMatches(code, expect int) bool {
	switch {
	case expect < 10:
		return code/100 == expect
	case expect < 100:
		return code/10 == expect
	}
	return code == expect
}

// appendDotStuffed appends msg as DATA sends it (RFC 5321 section 4.5.2):
// a dot doubled at the start of every line, a CRLF at the end if msg has
// none, and the final ".\r\n", as net/textproto's DotWriter writes it. msg must be in canonical form, every line
// ending in CRLF, as eml.Message bytes are.
func appendDotStuffed(dst, msg []byte) []byte {
	ended := bytes.HasSuffix(msg, []byte("\r\n"))
	if len(msg) > 0 && msg[0] == '.' {
		dst = append(dst, '.')
	}
	// Dots are rarer than line breaks (a QP line is at most 76 octets):
	// IndexByte stops at each dot and looks behind it.
	last := 0
	for i := 1; i < len(msg); i++ {
		j := bytes.IndexByte(msg[i:], '.')
		if j < 0 {
			break
		}
		if i += j; msg[i-1] == '\n' {
			dst = append(dst, msg[last:i+1]...)
			dst = append(dst, '.')
			last = i + 1
		}
	}
	dst = append(dst, msg[last:]...)
	if !ended {
		dst = append(dst, '\r', '\n')
	}
	return append(dst, ".\r\n"...)
}

// classify wraps an SMTP reply in the eml sentinel it stands for. In a mail
// transaction (MAIL, RCPT, DATA) a 5xx reply rejects the message; outside
// one (EHLO, STARTTLS, AUTH, RSET) it is a setup error.
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
	cn := &conn{nc: nc, recorder: m.recorder}
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
		cn.ready()
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

// ready takes the session's reader and writer (STARTTLS replaced them)
// and what the server's last EHLO offered.
func (cn *conn) ready() {
	cn.r, cn.w = cn.c.Text.R, cn.c.Text.W
	cn.pipelining, _ = cn.c.Extension("PIPELINING")
	cn.chunking, _ = cn.c.Extension("CHUNKING")
	// The same parameters as net/smtp's Client.Mail.
	if ok, _ := cn.c.Extension("8BITMIME"); ok {
		cn.mailParams += " BODY=8BITMIME"
	}
	if ok, _ := cn.c.Extension("SMTPUTF8"); ok {
		cn.mailParams += " SMTPUTF8"
	}
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
