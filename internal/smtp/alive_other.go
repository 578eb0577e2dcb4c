//go:build !unix

package smtp

type peeker struct{}

// alive cannot look at the socket here: the first message on a pooled
// connection waits for the replies to MAIL and RCPT before it is written.
func (cn *conn) alive() (ok, checked bool) { return false, false }
