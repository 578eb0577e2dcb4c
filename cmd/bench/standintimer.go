package main

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// standInTimer sits between a function and the AWS stand-ins and times
// every call it forwards, from its arrival to the last byte of its answer:
// how long the function waited on AWS, which its start-to-ready time
// includes but which is no part of its own start. One reverse proxy per
// stand-in, each on its own port of 127.0.0.1; the Host header is passed
// on unchanged, so that the signature still matches.
type standInTimer struct {
	servers []*http.Server
	// urls maps each stand-in's URL to its proxy's.
	urls map[string]string

	mu    sync.Mutex
	calls []timedCall
}

// timedCall is one call forwarded: its operation (X-Amz-Target, or the
// method and path) and when it started and ended.
type timedCall struct {
	op         string
	start, end time.Time
}

// startStandInTimer starts a proxy for each stand-in URL.
func startStandInTimer(targets ...string) (*standInTimer, error) {
	t := &standInTimer{urls: map[string]string{}}
	for _, target := range targets {
		u, err := url.Parse(target)
		if err != nil {
			t.close()
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.close()
			return nil, err
		}
		rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
		}}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rp.ServeHTTP(w, r)
			end := time.Now()
			op := r.Header.Get("X-Amz-Target")
			if op == "" {
				op = r.Method + " " + r.URL.Path
			}
			t.mu.Lock()
			t.calls = append(t.calls, timedCall{op, start, end})
			t.mu.Unlock()
		})}
		go srv.Serve(ln)
		t.servers = append(t.servers, srv)
		t.urls[target] = "http://" + ln.Addr().String()
	}
	return t, nil
}

// reset forgets the calls timed so far.
func (t *standInTimer) reset() {
	t.mu.Lock()
	t.calls = nil
	t.mu.Unlock()
}

// between returns the calls that started in [from, to) and how long they
// took together.
func (t *standInTimer) between(from, to time.Time) (calls []timedCall, total time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.calls {
		if !c.start.Before(from) && c.start.Before(to) {
			calls = append(calls, c)
			total += c.end.Sub(c.start)
		}
	}
	return calls, total
}

func (t *standInTimer) close() {
	for _, s := range t.servers {
		_ = s.Close()
	}
}
