//go:build unix

package smtp

import (
	"errors"
	"syscall"
)

// peeker looks at a connection's socket without reading from it.
type peeker struct {
	rc   syscall.RawConn
	peek func(fd uintptr) bool // made once: rc.Read would make it escape per call
	buf  [1]byte
	err  error
}

// alive reports whether cn's connection is still open with nothing from
// the server waiting in it, by a non-blocking peek at the socket (one
// system call, no wait). checked is false when it cannot tell.
func (cn *conn) alive() (ok, checked bool) {
	p := &cn.peeker
	if p.rc == nil {
		sc, isSC := cn.nc.(syscall.Conn)
		if !isSC {
			return false, false
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false, false
		}
		p.rc = rc
		p.peek = func(fd uintptr) bool {
			_, _, p.err = syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return true // never wait for the socket
		}
	}
	if err := p.rc.Read(p.peek); err != nil {
		return false, true
	}
	// Nothing to read is what an idle, open session looks like; an end of
	// stream (no error), a byte (the server spoke) or an error is not.
	return errors.Is(p.err, syscall.EAGAIN) || errors.Is(p.err, syscall.EWOULDBLOCK), true
}
