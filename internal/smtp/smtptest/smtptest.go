// Package smtptest runs a real SMTP server on 127.0.0.1 for tests, built on
// github.com/emersion/go-smtp. It records what it receives, counts
// connections, and can be told to fail: answer a chosen code at MAIL, RCPT or
// DATA, drop the connection after the message, answer slowly, or hold the
// reply to a message until the test lets it go.
//
// Like Postfix's smtpd, the server holds its replies back until it is about
// to wait for input, so the replies to a client's pipelined commands
// (RFC 2920) go back in one write rather than one each. It advertises
// PIPELINING and CHUNKING (BDAT, RFC 3030) unless told not to, and counts
// the reads in which a client sent a command before the reply to the one
// before, and the RSETs.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message as the server got it.
type Received struct {
	From string   // MAIL FROM address
	To   []string // RCPT TO addresses
	Data []byte   // every byte between DATA and the terminating dot, dot-unstuffed
	TLS  bool     // whether the session ran over STARTTLS
	User string   // the authenticated user, if any
}

// Stage is an SMTP command at which the server can be told to fail.
type Stage int

// Stages at which FailNextAt can answer an error.
const (
	StageMail Stage = iota // the MAIL FROM command
	StageRcpt              // the RCPT TO command
	StageData              // the reply after the message data (the data is read first)
)

// Option configures a Server.
type Option func(*Server)

// WithTLS makes the server offer STARTTLS, with a self-signed certificate
// for 127.0.0.1; ClientTLSConfig returns a config that trusts it.
func WithTLS() Option {
	return func(s *Server) { s.wantTLS = true }
}

// WithAuth makes the server offer AUTH PLAIN and require it before MAIL,
// accepting only user and pass. Plain-text auth is allowed without TLS, as
// the server listens on loopback only.
func WithAuth(user, pass string) Option {
	return func(s *Server) { s.user, s.pass = user, pass }
}

// CountOnly makes the server keep no messages, only count them and their
// bytes: a sink for benchmarks. It still reads and unstuffs every byte,
// but does not check line lengths (emersion/go-smtp's check, byte by byte
// over everything read, is a third of its CPU). Messages and WaitFor then
// return nil.
func CountOnly() Option {
	return func(s *Server) { s.countOnly = true }
}

// WithNotify has the server call f with every message it accepts, as it
// accepts it (before its 250), from the session's goroutine. With
// CountOnly the message comes without its data.
func WithNotify(f func(Received)) Option {
	return func(s *Server) { s.notify = f }
}

// WithoutPipelining makes the server leave PIPELINING out of its EHLO
// reply, as some servers do. It applies to plain connections only: after
// STARTTLS the reply is encrypted and goes out as emersion/go-smtp writes
// it.
func WithoutPipelining() Option {
	return func(s *Server) { s.noPipelining = true }
}

// WithoutChunking makes the server leave CHUNKING (BDAT, RFC 3030) out of
// its EHLO reply, on plain connections, as WithoutPipelining does.
func WithoutChunking() Option {
	return func(s *Server) { s.noChunking = true }
}

// Server is an SMTP server listening on 127.0.0.1. Its methods are safe for
// concurrent use.
type Server struct {
	tb           testing.TB
	srv          *smtp.Server
	ln           net.Listener
	done         chan struct{}
	served       chan struct{}
	wantTLS      bool
	clientTLS    *tls.Config
	user         string
	pass         string
	countOnly    bool
	notify       func(Received)
	noPipelining bool
	noChunking   bool

	conns     atomic.Int64
	pipelined atomic.Int64
	resets    atomic.Int64
	count     atomic.Int64
	bytes     atomic.Int64
	received  chan struct{} // signalled (without blocking) on each message

	mu        sync.Mutex
	messages  []Received
	fails     map[Stage]failure
	drops     int
	dataDelay time.Duration
	hold      *hold                 // set by HoldData
	sessions  map[*session]struct{} // live sessions, for CloseConnections
}

// hold is one HoldData: the replies it holds back and the signal that one
// is held.
type hold struct {
	once    sync.Once
	reached chan struct{} // closed when the first message is held
	release chan struct{} // closed by the release func
}

type failure struct{ code, n int }

// NewServer starts a server on 127.0.0.1 with a free port. It is closed by
// tb.Cleanup.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		tb:       tb,
		done:     make(chan struct{}),
		served:   make(chan struct{}),
		received: make(chan struct{}, 1),
		fails:    map[Stage]failure{},
		sessions: map[*session]struct{}{},
	}
	for _, opt := range opts {
		opt(s)
	}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "smtptest.localhost"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 64 << 20
	srv.MaxRecipients = 100
	srv.AllowInsecureAuth = true
	if s.countOnly {
		srv.MaxLineLength = 0
	}
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if s.wantTLS {
		serverTLS, clientTLS, err := selfSigned()
		if err != nil {
			tb.Fatalf("smtptest: %v", err)
		}
		srv.TLSConfig = serverTLS
		s.clientTLS = clientTLS
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smtptest: listen: %v", err)
	}
	s.srv, s.ln = srv, ln
	go func() {
		defer close(s.served)
		srv.Serve(listener{ln, s})
	}()
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server and closes every connection. It is called by
// tb.Cleanup; calling it earlier lets a test see what a client does when
// the server goes away.
func (s *Server) Close() {
	select {
	case <-s.done:
		return
	default:
		close(s.done)
	}
	// Closing the listener ourselves also stops a Serve that has not yet
	// registered it with the server.
	s.ln.Close()
	s.srv.Close()
	<-s.served
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns "smtp://127.0.0.1:port", with the user and password of
// WithAuth when it was given.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr()}
	if s.user != "" {
		u.User = url.UserPassword(s.user, s.pass)
	}
	return u.String()
}

// ClientTLSConfig returns a TLS config that trusts the server's certificate,
// or nil without WithTLS.
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.clientTLS == nil {
		return nil
	}
	return s.clientTLS.Clone()
}

// Messages returns a copy of the messages received so far, in order.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Received, len(s.messages))
	copy(out, s.messages)
	return out
}

// WaitFor waits until at least n messages have arrived or timeout passes,
// and returns the messages received by then; the caller checks how many.
func (s *Server) WaitFor(n int, timeout time.Duration) []Received {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for s.count.Load() < int64(n) {
		select {
		case <-s.received:
		case <-deadline.C:
			return s.Messages()
		case <-s.done:
			return s.Messages()
		}
	}
	return s.Messages()
}

// Count returns how many messages were accepted and their total size in
// bytes, in every mode.
func (s *Server) Count() (messages, bytes int64) {
	return s.count.Load(), s.bytes.Load()
}

// Connections returns how many connections the server has accepted.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// PipelinedReads returns how many times a client's commands arrived before
// the server had replied to the one before: the reads (outside message
// data) that held more than one command line. A client that waits for each
// reply makes none; one that pipelines MAIL, RCPT and DATA makes one a
// message. Only plain-text sessions are counted.
func (s *Server) PipelinedReads() int { return int(s.pipelined.Load()) }

// Resets returns how many RSET commands the server has received on
// plain-text sessions.
func (s *Server) Resets() int { return int(s.resets.Load()) }

// FailNext makes the next n messages fail with code after their data has
// been read: FailNextAt(StageData, code, n).
func (s *Server) FailNext(code, n int) { s.FailNextAt(StageData, code, n) }

// FailNextAt makes the next n commands at stage answer code (a 4xx or 5xx),
// replacing any failure set before for that stage.
func (s *Server) FailNextAt(stage Stage, code, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails[stage] = failure{code: code, n: n}
}

// DropNext makes the server, for the next n messages, read the whole
// message and its terminating dot and then close the connection without a
// reply. The message is recorded, since a real server might have delivered
// it.
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops = n
}

// SetDataDelay makes the server wait d after reading each message before it
// replies (0 turns it off). Closing the server cuts the wait short.
func (s *Server) SetDataDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dataDelay = d
}

// HoldData makes the server, after reading each message, hold its reply
// until release is called; held is closed once the first message is being
// held. A test waits on held to know that a client is waiting for a reply,
// and so holds its connection; closing the server also lets the held
// replies go. Messages after release are answered at once.
func (s *Server) HoldData() (held <-chan struct{}, release func()) {
	h := &hold{reached: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	s.hold = h
	s.mu.Unlock()
	var once sync.Once
	return h.reached, func() {
		once.Do(func() {
			s.mu.Lock()
			if s.hold == h {
				s.hold = nil
			}
			s.mu.Unlock()
			close(h.release)
		})
	}
}

// CloseConnections closes every open connection but keeps listening, as a
// server does when it times out idle clients.
func (s *Server) CloseConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.sessions {
		sess.conn.Close()
	}
}

// takeFailure consumes one pending failure at stage, if any.
func (s *Server) takeFailure(stage Stage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fails[stage]
	if f.n <= 0 {
		return nil
	}
	f.n--
	s.fails[stage] = f
	return &smtp.SMTPError{
		Code:         f.code,
		EnhancedCode: smtp.EnhancedCode{f.code / 100, 0, 0},
		Message:      fmt.Sprintf("smtptest: injected %d", f.code),
	}
}

func (s *Server) record(r Received, size int) {
	if s.notify != nil {
		s.notify(r)
	}
	s.count.Add(1)
	s.bytes.Add(int64(size))
	if !s.countOnly {
		s.mu.Lock()
		s.messages = append(s.messages, r)
		s.mu.Unlock()
	}
	select {
	case s.received <- struct{}{}:
	default:
	}
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	sess := &session{server: b.s, conn: c.Conn()}
	_, sess.tls = c.TLSConnectionState()
	b.s.mu.Lock()
	b.s.sessions[sess] = struct{}{}
	b.s.mu.Unlock()
	return sess, nil
}

type session struct {
	server *Server
	conn   net.Conn
	tls    bool
	user   string
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.server.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.server.user == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != ss.server.user || pass != ss.server.pass {
			return errors.New("invalid credentials")
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.server.user != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	if err := ss.server.takeFailure(StageMail); err != nil {
		return err
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.server.takeFailure(StageRcpt); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	s := ss.server
	var data []byte
	var n int64
	var err error
	if s.countOnly {
		n, err = io.Copy(io.Discard, r)
	} else {
		data, err = io.ReadAll(r)
		n = int64(len(data))
	}
	if err != nil {
		return err
	}
	if ferr := s.takeFailure(StageData); ferr != nil {
		return ferr
	}
	s.mu.Lock()
	drop := s.drops > 0
	if drop {
		s.drops--
	}
	delay, h := s.dataDelay, s.hold
	s.mu.Unlock()

	rec := Received{From: ss.from, To: append([]string(nil), ss.to...), Data: data, TLS: ss.tls, User: ss.user}
	if drop {
		s.record(rec, int(n))
		ss.conn.Close()
		return errors.New("smtptest: connection dropped")
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return errors.New("smtptest: server closing")
		}
	}
	if h != nil {
		h.once.Do(func() { close(h.reached) })
		select {
		case <-h.release:
		case <-s.done:
			return errors.New("smtptest: server closing")
		}
	}
	s.record(rec, int(n))
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *session) Logout() error {
	ss.server.mu.Lock()
	delete(ss.server.sessions, ss)
	ss.server.mu.Unlock()
	return nil
}

// listener counts accepted connections and wraps them in conn.
type listener struct {
	net.Listener
	s *Server
}

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.conns.Add(1)
	return &conn{Conn: c, s: l.s}, nil
}

// conn is a server connection that holds the server's writes back until
// it reads or closes, so that the replies to pipelined commands leave in
// one write. It watches the plain-text command stream for PipelinedReads
// and Resets, and leaves PIPELINING out of the EHLO reply when the server
// was told to. emersion/go-smtp writes each reply line with its own flush,
// so a Write is one line.
type conn struct {
	net.Conn
	s *Server

	mu      sync.Mutex
	out     []byte
	opaque  bool    // TLS started: the stream can no longer be read
	inData  bool    // between a 354 reply and the end of the message
	tail    [4]byte // the last bytes of message data, for an end split over reads
	chunk   int64   // what is left of a BDAT chunk
	partial []byte  // the start of a command line split over reads
}

func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.opaque && (c.s.noPipelining && string(p) == "250-PIPELINING\r\n" || c.s.noChunking && string(p) == "250-CHUNKING\r\n") {
		return len(p), nil
	}
	if !c.opaque && bytes.HasPrefix(p, []byte("354")) {
		c.inData, c.tail = true, [4]byte{0, 0, '\r', '\n'}
	}
	c.out = append(c.out, p...)
	return len(p), nil
}

// flush writes what the server wrote since the last read. It is called
// with c.mu held.
func (c *conn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.out)
	c.out = c.out[:0]
	return err
}

func (c *conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	err := c.flush()
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.note(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *conn) Close() error {
	c.mu.Lock()
	c.flush()
	c.mu.Unlock()
	return c.Conn.Close()
}

// note reads what a client sent: message data (up to the end of DATA, or
// a BDAT chunk's length) and, outside it, the command lines. It is called
// with c.mu held.
func (c *conn) note(b []byte) {
	if c.opaque || len(b) == 0 {
		return
	}
	if !c.inData && c.chunk == 0 && len(c.partial) == 0 && b[0] == 0x16 {
		c.opaque = true // a TLS handshake record: STARTTLS succeeded
		return
	}
	lines := 0
	for len(b) > 0 {
		switch {
		case c.inData:
			end := -1
			// The end of data may straddle the previous read.
			var edge [8]byte
			k := copy(edge[:], c.tail[:])
			k += copy(edge[k:], b)
			if i := bytes.Index(edge[:k], []byte("\r\n.\r\n")); i >= 0 {
				end = i + 5 - len(c.tail)
			} else if i := bytes.Index(b, []byte("\r\n.\r\n")); i >= 0 {
				end = i + 5
			}
			if end < 0 {
				var t [8]byte
				n := copy(t[:], c.tail[:])
				n += copy(t[n:], b[max(0, len(b)-4):])
				copy(c.tail[:], t[n-4:n])
				b = nil
				continue
			}
			c.inData = false
			b = b[end:]
		case c.chunk > 0:
			n := min(c.chunk, int64(len(b)))
			c.chunk -= n
			b = b[n:]
		default:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				c.partial = append(c.partial, b...)
				b = nil
				continue
			}
			line := append(c.partial, b[:i+1]...)
			c.partial = line[:0]
			b = b[i+1:]
			lines++
			verb, arg, _ := strings.Cut(strings.TrimSpace(string(line)), " ")
			switch strings.ToUpper(verb) {
			case "RSET":
				c.s.resets.Add(1)
			case "BDAT":
				size, _, _ := strings.Cut(arg, " ")
				c.chunk, _ = strconv.ParseInt(size, 10, 64)
			}
		}
	}
	if lines > 1 || lines == 1 && len(c.partial) > 0 {
		c.s.pipelined.Add(1)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and localhost, and the
// configs for a server that presents it and a client that trusts it.
func selfSigned() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client, nil
}
