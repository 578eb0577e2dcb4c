package smtp

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/eml"
)

// Send delivers msg and returns its Message-ID, generated when
// msg.MessageID is empty (msg itself is not changed). Errors wrap the eml
// sentinels: eml.ErrThrottled for 421, 450, 451 and 452 replies;
// eml.ErrRejected for an invalid message or a 5xx reply to MAIL, RCPT or
// DATA; eml.ErrUnknownOutcome when the connection fails or ctx ends after
// the whole message was written but before the server answered. Any other
// error (a failed dial, a TLS or AUTH failure, ctx ending earlier) means the
// message was not handed over.
func (m *Mailer) Send(ctx context.Context, msg *eml.Message) (messageID string, err error) {
	var j job
	if err := j.init(msg); err != nil {
		return "", fmt.Errorf("smtp: %w", err)
	}
	m.run(ctx, []*job{&j})
	if j.err != nil {
		return "", fmt.Errorf("smtp send via %s: %w", m.addr, j.err)
	}
	return j.msg.MessageID, nil
}

// SendBulk sends msgs in order on one connection and returns what became
// of each, as Send would have: its Message-ID, or an error that Send would
// have returned. Each message costs one round trip with PIPELINING: with
// CHUNKING as for Send, and with DATA because a message's data and the
// next message's MAIL, RCPT and DATA go in one write (RFC 2920 allows
// message data to open a group of commands). A 421 reply (the server is
// closing) fails the messages after it with the same eml.ErrThrottled
// error, unsent; if the connection fails, the rest go on a new one. When
// ctx has no deadline, each message has the Mailer's timeout. It
// implements delivery.BulkMailer.
func (m *Mailer) SendBulk(ctx context.Context, msgs []*eml.Message) []eml.Sent {
	out := make([]eml.Sent, len(msgs))
	jobs := make([]job, len(msgs))
	todo := make([]*job, 0, len(msgs))
	for i, msg := range msgs {
		if err := jobs[i].init(msg); err != nil {
			out[i].Err = fmt.Errorf("smtp: %w", err)
			continue
		}
		todo = append(todo, &jobs[i])
	}
	m.run(ctx, todo)
	for i := range jobs {
		switch {
		case out[i].Err != nil:
		case jobs[i].err != nil:
			out[i].Err = fmt.Errorf("smtp send via %s: %w", m.addr, jobs[i].err)
		default:
			out[i].MessageID = jobs[i].msg.MessageID
		}
	}
	return out
}

// job is one message of a Send or SendBulk call and what became of it.
type job struct {
	msg      eml.Message // a copy, with its Message-ID
	from, to string      // the envelope
	err      error
	done     bool // err is final: nil, or what became of the message
	tries    int  // connections it failed on before it was handed over
	rset     bool // its envelope was sent after an RSET
}

// init makes j a job for msg, or returns why msg cannot be sent.
func (j *job) init(msg *eml.Message) error {
	if msg == nil {
		return fmt.Errorf("nil message: %w", eml.ErrRejected)
	}
	j.msg = *msg
	if j.msg.MessageID == "" {
		j.msg.MessageID = eml.NewMessageID(j.msg.From)
	}
	var err error
	if j.from, j.to, err = j.msg.Envelope(); err != nil { // validates
		return fmt.Errorf("invalid message: %w: %w", eml.ErrRejected, err)
	}
	return nil
}

// finish records what became of j.
func (j *job) finish(err error) {
	j.err, j.done = err, true
}

// run sends jobs in order on pooled connections, one at a time, and
// records what became of each.
func (m *Mailer) run(ctx context.Context, jobs []*job) {
	failAll := func(err error) {
		for _, j := range jobs {
			if !j.done {
				j.finish(err)
			}
		}
	}
	if len(jobs) == 0 {
		return
	}
	if err := ctx.Err(); err != nil {
		failAll(err)
		return
	}
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		failAll(fmt.Errorf("wait for connection: %w", ctx.Err()))
		return
	}
	defer func() { <-m.slots }()

	deadline, hasDeadline := ctx.Deadline()
	next := func() time.Time {
		if hasDeadline {
			return deadline
		}
		return time.Now().Add(m.timeout)
	}
	fresh := false // a connection failed: take a new one, not another idle one
	for len(jobs) > 0 {
		var cn *conn
		if !fresh {
			var err error
			if cn, err = m.get(); err != nil {
				failAll(err)
				return
			}
		}
		// A pooled connection is written a whole message at once only if
		// it is still open with nothing from the server waiting (most
		// likely a 421 before it hung up): a message written to a
		// connection the server had closed would have an unknown fate.
		// Where the socket cannot be looked at, the replies to MAIL and
		// RCPT show it alive first (probe).
		probe := false
		if cn != nil {
			ok, checked := cn.alive()
			if cn.r.Buffered() > 0 || checked && !ok {
				cn.close()
				cn = nil
			}
			probe = !checked
		}
		reused := cn != nil
		if cn == nil {
			d := next()
			var err error
			if cn, err = m.dial(ctx, d); err != nil {
				failAll(withContext(ctx, d, err))
				return
			}
		}
		var extend func()
		if !hasDeadline {
			extend = func() { cn.setDeadline(next()) }
		}
		var sent int
		var stop error
		usable, _ := m.use(ctx, next(), cn, func() error {
			sent, stop = cn.send(jobs, reused, probe, extend)
			return nil
		})
		for _, j := range jobs[:sent] {
			if j.err != nil {
				j.err = withContext(ctx, deadline, j.err)
			}
		}
		if usable && !cn.broken && stop == nil {
			m.put(cn)
		} else {
			cn.close()
		}
		jobs = jobs[sent:]
		switch {
		case len(jobs) == 0:
			return
		case stop != nil:
			failAll(stop)
			return
		case !usable || ctx.Err() != nil:
			// ctx ended while the job at the head of jobs was in hand.
			if jobs[0].err == nil {
				jobs[0].err = ctx.Err()
			}
			jobs[0].finish(withContext(ctx, deadline, jobs[0].err))
			failAll(ctx.Err())
			return
		}
		// The connection failed before the job at the head of jobs was
		// handed over (a pooled connection that the server had closed
		// while it was idle fails at the first write or read, or answers
		// with its 421 farewell). It goes on a new connection, once,
		// unless the server was too slow to answer.
		if jobs[0].tries > 1 || errors.Is(jobs[0].err, os.ErrDeadlineExceeded) {
			jobs[0].finish(withContext(ctx, deadline, jobs[0].err))
			jobs = jobs[1:]
		}
		fresh = true
	}
}

// use runs fn on cn with the connection deadline set to deadline and cut
// short if ctx ends. It reports whether cn is still usable: when ctx ended
// while fn ran, cn's deadline may have been moved into the past, so the
// caller must close it, whatever fn returned.
func (m *Mailer) use(ctx context.Context, deadline time.Time, cn *conn, fn func() error) (usable bool, err error) {
	cn.deadlineMu.Lock()
	cn.cancelled = false
	err = cn.nc.SetDeadline(deadline)
	cn.deadlineMu.Unlock()
	if err != nil {
		return false, err
	}
	if ctx.Done() == nil {
		return true, fn() // ctx never ends
	}
	stop := context.AfterFunc(ctx, func() {
		cn.deadlineMu.Lock()
		cn.cancelled = true
		cn.nc.SetDeadline(time.Unix(1, 0))
		cn.deadlineMu.Unlock()
	})
	err = fn()
	return stop(), err
}

// setDeadline moves cn's deadline to t, unless ctx ended and use cut it
// short.
func (cn *conn) setDeadline(t time.Time) {
	cn.deadlineMu.Lock()
	if !cn.cancelled {
		cn.nc.SetDeadline(t)
	}
	cn.deadlineMu.Unlock()
}

// notSentError is a connection failure, or a 421 reply to the first
// command on a pooled connection, before the message was written: the
// server cannot have accepted the message.
type notSentError struct{ err error }

func (e notSentError) Error() string { return e.err.Error() }
func (e notSentError) Unwrap() error { return e.err }

func isNotSent(err error) bool {
	if err == nil {
		return false
	}
	var ns notSentError
	return errors.As(err, &ns)
}

// send sends jobs in order on cn and records what became of each. It
// returns how many it finished; when that is not all of them, the
// connection failed before the next was handed over (its error is
// recorded and its tries counted), or the server is closing it, and stop
// is the error for all the rest. reused says cn came from the pool: a 421
// to its first command is then taken for an idle connection's farewell;
// probe that the first message must not go in one write with its
// envelope. extend, when not nil, gives each message its own deadline.
//
// A server that offers CHUNKING (RFC 3030) gets each message in a BDAT
// chunk: no dot-stuffing, and with PIPELINING the envelope, the chunk and
// their replies make one round trip. Otherwise DATA: with PIPELINING the
// envelope goes in one write, and the message with the next envelope in
// another; without, one command at a time.
func (cn *conn) send(jobs []*job, reused, probe bool, extend func()) (sent int, stop error) {
	switch {
	case cn.chunking:
		return cn.sendChunked(jobs, reused, probe, extend)
	case cn.pipelining:
		return cn.sendPipelined(jobs, reused, extend)
	}
	return cn.sendOneByOne(jobs, reused, extend)
}

// after decides what send does once the replies to jobs[i]'s envelope
// came back with err: go on with the job (ret false), or return n and
// stop.
func (cn *conn) after(j *job, i int, err error) (ret bool, n int, stop error) {
	switch {
	case isNotSent(err):
		j.err = err
		j.tries++
		return true, i, nil
	case cn.broken:
		j.finish(err)
		return true, i + 1, nil
	case isClosing(err):
		j.finish(err)
		return true, i + 1, err
	}
	return false, 0, nil
}

// sendChunked is send for a server that offers CHUNKING.
func (cn *conn) sendChunked(jobs []*job, reused, probe bool, extend func()) (sent int, stop error) {
	for i, j := range jobs {
		if j.done {
			continue // its message could not be built
		}
		if extend != nil {
			extend()
		}
		if err := cn.build(j); err != nil {
			j.finish(err)
			continue
		}
		if cn.pipelining && !(probe && i == 0) {
			// One write: the envelope, BDAT and the message.
			cn.out = cn.appendEnvelope(cn.out[:0], j, finalBDAT)
			if _, err := cn.write(cn.out); err != nil {
				// A chunk cut short cannot be taken.
				return i, cn.notSent(j, "MAIL FROM", err)
			}
			err, _ := cn.readEnvelope(j, reused && i == 0, finalBDAT)
			if ret, n, stop := cn.after(j, i, err); ret {
				return n, stop
			}
			j.finish(err)
			if stop := cn.record(j); stop != nil {
				return i + 1, stop
			}
			continue
		}
		// MAIL and RCPT first, then BDAT and the message.
		if cn.pipelining {
			cn.out = cn.appendEnvelope(cn.out[:0], j, finalNone)
			if _, err := cn.write(cn.out); err != nil {
				return i, cn.notSent(j, "MAIL FROM", err)
			}
		}
		err, _ := cn.readEnvelope(j, reused && i == 0, finalNone)
		if ret, n, stop := cn.after(j, i, err); ret {
			return n, stop
		}
		if err != nil {
			j.finish(err)
			continue
		}
		cn.out = cn.appendCommand(cn.out[:0], 3, j, finalBDAT)
		if _, err := cn.write(cn.out); err != nil {
			j.finish(fmt.Errorf("write message: %w", err))
			return i + 1, nil
		}
		if err = cn.endOfData(); err != nil {
			cn.dirty = true // as readEnvelope: a refused chunk is followed by RSET
		}
		j.finish(err)
		if stop := cn.record(j); stop != nil {
			return i + 1, stop
		}
		if cn.broken {
			return i + 1, nil
		}
		if isClosing(err) {
			return i + 1, err
		}
	}
	return len(jobs), nil
}

// sendPipelined is send with DATA and PIPELINING.
func (cn *conn) sendPipelined(jobs []*job, reused bool, extend func()) (sent int, stop error) {
	inFlight := false // the envelope of jobs[i] is written
	for i := 0; i < len(jobs); i++ {
		j := jobs[i]
		if j.done {
			continue // its message could not be built
		}
		if !inFlight {
			// Nothing of ours is on the wire: start j alone.
			if extend != nil {
				extend()
			}
			if err := cn.build(j); err != nil {
				j.finish(err)
				continue
			}
			cn.out = cn.appendEnvelope(cn.out[:0], j, finalData)
			if _, err := cn.write(cn.out); err != nil {
				return i, cn.notSent(j, "MAIL FROM", err)
			}
		}
		// The envelope's replies; j's message is in cn.msg.
		envErr, tookData := cn.readEnvelope(j, reused && i == 0, finalData)
		if ret, n, stop := cn.after(j, i, envErr); ret {
			return n, stop
		}

		// One write: j's data (or the end of an empty message the server
		// took DATA for after a refusal), then the next envelope.
		cn.out = cn.out[:0]
		if envErr == nil {
			cn.out = appendDotStuffed(cn.out, cn.msg)
		} else if tookData {
			cn.out = append(cn.out, ".\r\n"...)
		}
		dataLen := len(cn.out)
		inFlight = false
		if i+1 < len(jobs) && !jobs[i+1].done {
			if extend != nil {
				extend()
			}
			if err := cn.build(jobs[i+1]); err != nil {
				jobs[i+1].finish(err)
			} else {
				cn.out = cn.appendEnvelope(cn.out, jobs[i+1], finalData)
				inFlight = true
			}
		}
		if len(cn.out) > 0 {
			if written, err := cn.write(cn.out); err != nil {
				if envErr == nil {
					if written < dataLen {
						// The final dot did not leave.
						envErr = fmt.Errorf("write message: %w", err)
					} else {
						envErr = fmt.Errorf("end of data: %w: %w", eml.ErrUnknownOutcome, err)
					}
				}
				j.finish(envErr)
				return i + 1, nil
			}
		}
		if envErr != nil {
			j.finish(envErr)
			if tookData {
				cn.readReply(250) // the empty message's fate does not matter
				if cn.broken {
					return i + 1, nil
				}
			}
			continue
		}
		err := cn.endOfData()
		j.finish(err)
		if stop := cn.record(j); stop != nil {
			return i + 1, stop
		}
		if cn.broken {
			return i + 1, nil
		}
		if isClosing(err) {
			return i + 1, err
		}
	}
	return len(jobs), nil
}

// sendOneByOne is send with DATA for a server without PIPELINING: every
// command waits for its reply.
func (cn *conn) sendOneByOne(jobs []*job, reused bool, extend func()) (sent int, stop error) {
	for i, j := range jobs {
		if j.done {
			continue
		}
		if extend != nil {
			extend()
		}
		if err := cn.build(j); err != nil {
			j.finish(err)
			continue
		}
		envErr, _ := cn.readEnvelope(j, reused && i == 0, finalData)
		if ret, n, stop := cn.after(j, i, envErr); ret {
			return n, stop
		}
		if envErr != nil {
			j.finish(envErr)
			continue
		}
		cn.out = appendDotStuffed(cn.out[:0], cn.msg)
		if _, err := cn.write(cn.out); err != nil {
			// The final dot cannot have been taken: a failed write leaves
			// the tail of the data, dot and all, unsent.
			j.finish(fmt.Errorf("write message: %w", err))
			return i + 1, nil
		}
		err := cn.endOfData()
		j.finish(err)
		if stop := cn.record(j); stop != nil {
			return i + 1, stop
		}
		if cn.broken {
			return i + 1, nil
		}
		if isClosing(err) {
			return i + 1, err
		}
	}
	return len(jobs), nil
}

// record tells the recorder of j's message if the server accepted it. An
// error stops the call: what cannot be recorded must not pile up, and the
// connection, which may hold the next message's envelope, is closed.
func (cn *conn) record(j *job) error {
	if cn.recorder == nil || j.err != nil {
		return nil
	}
	if err := cn.recorder.Accepted(&j.msg); err != nil {
		cn.broken = true
		return fmt.Errorf("record accepted message: %w", err)
	}
	return nil
}

// build puts j's message bytes in cn.msg.
func (cn *conn) build(j *job) error {
	var err error
	if cn.msg, err = j.msg.AppendBytes(cn.msg[:0]); err != nil {
		return fmt.Errorf("build message: %w: %w", eml.ErrRejected, err)
	}
	return nil
}

// notSent records that j was not handed over because of err, in the
// named command.
func (cn *conn) notSent(j *job, command string, err error) error {
	j.err = fmt.Errorf("%s: %w", command, notSentError{err})
	j.tries++
	return nil
}

// The last command of an envelope.
const (
	finalData = iota // DATA: the message follows its 354
	finalBDAT        // BDAT with the message: its reply is the message's fate
	finalNone        // none: MAIL and RCPT alone, BDAT to follow
)

// envelope is the commands that open a mail transaction, in order; the
// fourth is DATA or BDAT.
var envelope = [4]struct {
	name   string
	expect int
}{{"RSET", 250}, {"MAIL FROM", 250}, {"RCPT TO", 25}, {"DATA", 354}}

// appendCommand appends envelope command c for j; the fourth, for
// finalBDAT, is BDAT and j's message (in cn.msg).
func (cn *conn) appendCommand(out []byte, c int, j *job, final int) []byte {
	switch c {
	case 0:
		return append(out, "RSET\r\n"...)
	case 1:
		out = append(append(append(out, "MAIL FROM:<"...), j.from...), '>')
		return append(append(out, cn.mailParams...), "\r\n"...)
	case 2:
		return append(append(append(out, "RCPT TO:<"...), j.to...), ">\r\n"...)
	}
	if final == finalBDAT {
		out = strconv.AppendInt(append(out, "BDAT "...), int64(len(cn.msg)), 10)
		return append(append(out, " LAST\r\n"...), cn.msg...)
	}
	return append(out, "DATA\r\n"...)
}

// appendEnvelope appends j's envelope, after RSET when the session may be
// in a transaction.
func (cn *conn) appendEnvelope(out []byte, j *job, final int) []byte {
	j.rset, cn.dirty = cn.dirty, false
	for c := range lastCommand(final) + 1 {
		if c > 0 || j.rset {
			out = cn.appendCommand(out, c, j, final)
		}
	}
	return out
}

func lastCommand(final int) int {
	if final == finalNone {
		return 2
	}
	return 3
}

// readEnvelope reads the replies to j's envelope, which with PIPELINING
// was written whole; without, it writes each command and stops at the
// first refusal. It reads every reply to what was written, even after one
// fails, so that the session stays in step, and returns the first
// refusal, classified, and whether the server took DATA all the same. A
// failure before any refusal, and a 421 to the first command when stale
// says the connection may have sat idle too long, are notSentErrors,
// except after a BDAT chunk was written whole: then the message's fate is
// unknown.
func (cn *conn) readEnvelope(j *job, stale bool, final int) (err error, tookData bool) {
	if !cn.pipelining {
		// The RSET of a failed transaction goes first.
		j.rset, cn.dirty = cn.dirty, false
	}
	first, last := 1, lastCommand(final)
	if j.rset {
		first = 0
	}
	expect := func(c int) int {
		if c == 3 && final == finalBDAT {
			return 250
		}
		return envelope[c].expect
	}
	var errs [len(envelope)]error
	for c := first; c <= last; c++ {
		if !cn.pipelining {
			if _, werr := cn.write(cn.appendCommand(cn.out[:0], c, j, final)); werr != nil {
				errs[c] = werr
				break
			}
		}
		if errs[c] = cn.readReply(expect(c)); cn.broken || errs[c] != nil && !cn.pipelining {
			break
		}
	}
	failed := -1
	for c := first; c <= last; c++ {
		if errs[c] != nil {
			failed = c
			break
		}
	}
	if failed < 0 {
		return nil, false
	}
	if errs[1] == nil {
		cn.dirty = true // MAIL was accepted: a transaction may be open
	}
	name := envelope[failed].name
	if failed == 3 && final == finalBDAT {
		name = "end of data"
	}
	var te *textproto.Error
	switch {
	case !errors.As(errs[failed], &te) && final == finalBDAT:
		return fmt.Errorf("%s: %w: %w", name, eml.ErrUnknownOutcome, errs[failed]), false
	case te == nil:
		return fmt.Errorf("%s: %w", name, notSentError{errs[failed]}), false
	case stale && failed == first && te.Code == 421:
		return fmt.Errorf("%s: %w", name, notSentError{classify(errs[failed], true)}), false
	}
	tookData = final == finalData && cn.pipelining && !cn.broken && errs[3] == nil
	return fmt.Errorf("%s: %w", name, classify(errs[failed], failed > 0)), tookData
}

// endOfData reads the reply to a message's final dot. A reply is
// classified; anything else (a read failure, a timeout) leaves the
// outcome unknown, since the server may have taken the message.
func (cn *conn) endOfData() error {
	err := cn.readReply(250)
	if err == nil {
		return nil
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return fmt.Errorf("end of data: %w", classify(err, true))
	}
	return fmt.Errorf("end of data: %w: %w", eml.ErrUnknownOutcome, err)
}

// isClosing reports whether err holds a 421 reply: the server is closing
// the session.
func isClosing(err error) bool {
	if err == nil {
		return false // (errors.As would allocate its target)
	}
	var te *textproto.Error
	return errors.As(err, &te) && te.Code == 421
}

// deadline guards cn's connection deadline between use and setDeadline.
type deadline struct {
	deadlineMu sync.Mutex
	cancelled  bool // ctx ended: the deadline stays in the past
}
