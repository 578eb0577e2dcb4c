package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// ipLimiter keeps a token bucket per client IP.
type ipLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newIPLimiter(limit rate.Limit, burst int, now func() time.Time) *ipLimiter {
	return &ipLimiter{limit: limit, burst: burst, now: now, buckets: map[string]*bucket{}}
}

// refill is how long an idle bucket takes to fill up again; after that it is
// indistinguishable from a new one and can be dropped.
func (l *ipLimiter) refill() time.Duration {
	if l.limit == rate.Inf || l.limit <= 0 {
		return time.Minute
	}
	return max(time.Minute, time.Duration(float64(l.burst)/float64(l.limit)*float64(time.Second)))
}

// get returns ip's bucket, dropping full idle buckets now and then so the
// map does not grow without end.
func (l *ipLimiter) get(ip string, now time.Time) *rate.Limiter {
	ip = limitKey(ip)
	if now.Sub(l.lastSweep) > l.refill() {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > l.refill() {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	b, ok := l.buckets[ip]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[ip] = b
	}
	b.seen = now
	return b.lim
}

// allow spends one token of ip's bucket, or returns an ERATELIMITED error
// when there is none.
func (l *ipLimiter) allow(ip string) error {
	if l.limit == rate.Inf {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	lim := l.get(ip, now)
	if lim.AllowN(now, 1) {
		return nil
	}
	return l.limited(lim, now)
}

// check returns an ERATELIMITED error when ip's bucket is empty, without
// spending anything; spend then charges a failure.
func (l *ipLimiter) check(ip string) error {
	if l.limit == rate.Inf {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	lim := l.get(ip, now)
	if lim.TokensAt(now) >= 1 {
		return nil
	}
	return l.limited(lim, now)
}

// spend takes one token from ip's bucket, if it has one.
func (l *ipLimiter) spend(ip string) {
	if l.limit == rate.Inf {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.get(ip, now).AllowN(now, 1)
}

func (l *ipLimiter) limited(lim *rate.Limiter, now time.Time) error {
	var after time.Duration
	if l.limit > 0 {
		missing := 1 - lim.TokensAt(now)
		after = time.Duration(missing / float64(l.limit) * float64(time.Second))
	}
	return &rateLimitError{
		err:   newsletter.Errorf(newsletter.ERATELIMITED, "Too many requests. Please wait a little and try again."),
		after: after,
	}
}

// clientIP returns the IP address of r's client. With TrustProxy it is the
// last entry of X-Forwarded-For, the one our proxy appended; earlier entries
// are whatever the client claimed.
func (h *handler) clientIP(r *http.Request) string {
	raw := r.RemoteAddr
	if host, _, err := net.SplitHostPort(raw); err == nil {
		raw = host
	}
	if h.trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if addr, err := netip.ParseAddr(strings.TrimSpace(last)); err == nil {
				raw = addr.String()
			}
		}
	}
	addr, err := netip.ParseAddr(raw)
	if err != nil {
		return ""
	}
	return addr.Unmap().WithZone("").String()
}

// limitKey returns the rate-limit key of an IP address: the address itself,
// or for IPv6 its /64 network, which one household or server usually holds
// whole.
func limitKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Is6() {
		return ip
	}
	if p, err := addr.Prefix(64); err == nil {
		return p.String()
	}
	return ip
}
