package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runtimeAPI is a minimal Lambda Runtime API, the HTTP interface a
// custom runtime's bootstrap polls for its events
// (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), on
// 127.0.0.1. It hands out the events it was made with, one per
// GET /2018-06-01/runtime/invocation/next, with the headers Lambda sends
// (request ID, deadline, function ARN, trace ID), and records when each
// was asked for and when its response or error came back. Once the events
// are used up, next blocks, as Lambda's does between invocations.
//
// It exists so that the bench can time a bootstrap's own start without
// aws-lambda-rie's: the emulator's start, and its relaying of each
// invocation, are no part of what a function costs on Lambda.
type runtimeAPI struct {
	srv  *http.Server
	addr string // host:port, what AWS_LAMBDA_RUNTIME_API names
	arn  string // the invoked function's ARN
	// pid, once set, is the runtime's process, whose CPU time is read when
	// an invocation is asked for and when it is answered.
	pid atomic.Int64

	mu      sync.Mutex
	events  [][]byte
	current *invocation // handed out, not yet answered
	n       int         // invocations handed out so far
	closed  chan struct{}

	// done gets every invocation once it is answered, and the init error
	// when the runtime reports one (as an invocation with Init set).
	done chan *invocation
}

// invocation is one event handed to the runtime and what came back.
type invocation struct {
	ID       string
	Next     time.Time // when the runtime asked for it: its init (or previous invocation) was over
	Answered time.Time // when its response or error was read
	// The runtime's CPU time at Next and at Answered, once pid is set.
	CPUNext, CPUAnswered time.Duration
	Response             []byte
	// Set when the invocation failed (POST .../error, or an error trailer
	// on the response), or the runtime could not start (Init).
	ErrorType, ErrorMessage string
	Init                    bool
}

// failed returns the invocation's failure as an error, or nil.
func (inv *invocation) failed() error {
	switch {
	case inv.Init:
		return fmt.Errorf("init error %s: %s", inv.ErrorType, inv.ErrorMessage)
	case inv.ErrorType != "" || inv.ErrorMessage != "":
		return fmt.Errorf("invocation error %s: %s", inv.ErrorType, inv.ErrorMessage)
	}
	return nil
}

// maxResponse is Lambda's limit on a synchronous invocation's response.
const maxResponse = 6 << 20

// The Runtime API's paths, and the headers of an event.
const (
	runtimePrefix       = "/2018-06-01/runtime/"
	headerRequestID     = "Lambda-Runtime-Aws-Request-Id"
	headerDeadline      = "Lambda-Runtime-Deadline-Ms"
	headerFunctionARN   = "Lambda-Runtime-Invoked-Function-Arn"
	headerTraceID       = "Lambda-Runtime-Trace-Id"
	headerErrorType     = "Lambda-Runtime-Function-Error-Type"
	trailerErrorBody    = "Lambda-Runtime-Function-Error-Body"
	invocationDeadline  = 30 * time.Second
	runtimeFunctionName = "function"
)

// startRuntimeAPI serves the Runtime API on a free port of 127.0.0.1,
// with events to hand out in order.
func startRuntimeAPI(events ...[]byte) (*runtimeAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &runtimeAPI{
		addr:   ln.Addr().String(),
		arn:    "arn:aws:lambda:us-east-1:123456789012:function:" + runtimeFunctionName,
		events: events,
		closed: make(chan struct{}),
		done:   make(chan *invocation, len(events)+1),
	}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

// close stops the server; a runtime blocked on next gets an error.
func (r *runtimeAPI) close() {
	r.mu.Lock()
	select {
	case <-r.closed:
	default:
		close(r.closed)
	}
	r.mu.Unlock()
	_ = r.srv.Close()
}

// ServeHTTP routes the Runtime API's five calls.
func (r *runtimeAPI) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	path, ok := strings.CutPrefix(req.URL.Path, runtimePrefix)
	id, kind, _ := strings.Cut(strings.TrimPrefix(path, "invocation/"), "/")
	switch {
	case !ok:
		apiError(w, http.StatusNotFound, "UnknownPath", "no such path")
	case path == "invocation/next":
		if req.Method != http.MethodGet {
			apiError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", req.Method+" not allowed")
			return
		}
		r.next(w, req)
	case path == "init/error":
		if req.Method != http.MethodPost {
			apiError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", req.Method+" not allowed")
			return
		}
		r.initError(w, req)
	case strings.HasPrefix(path, "invocation/") && id != "" && (kind == "response" || kind == "error"):
		if req.Method != http.MethodPost {
			apiError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", req.Method+" not allowed")
			return
		}
		r.answer(w, req, id, kind == "error")
	default:
		apiError(w, http.StatusNotFound, "UnknownPath", "no such path")
	}
}

// next hands out the next event, or blocks until the server closes or the
// runtime hangs up.
func (r *runtimeAPI) next(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	r.mu.Lock()
	if len(r.events) == 0 {
		r.mu.Unlock()
		select {
		case <-r.closed:
		case <-req.Context().Done():
		}
		apiError(w, http.StatusInternalServerError, "NoMoreEvents", "the runtime API is closing")
		return
	}
	event := r.events[0]
	r.events = r.events[1:]
	r.n++
	inv := &invocation{ID: fmt.Sprintf("8476a536-e9f4-11e8-9739-%012d", r.n), Next: now}
	r.current = inv
	r.mu.Unlock()
	if pid := r.pid.Load(); pid != 0 {
		inv.CPUNext = processCPU(int(pid))
	}

	h := w.Header()
	h.Set(headerRequestID, inv.ID)
	h.Set(headerDeadline, strconv.FormatInt(now.Add(invocationDeadline).UnixMilli(), 10))
	h.Set(headerFunctionARN, r.arn)
	h.Set(headerTraceID, fmt.Sprintf("Root=1-%08x-%024d;Parent=%016d;Sampled=0", now.Unix(), r.n, r.n))
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(event)
}

// answer takes an invocation's response or error.
func (r *runtimeAPI) answer(w http.ResponseWriter, req *http.Request, id string, isError bool) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxResponse+1))
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequest", "reading the body: "+err.Error())
		return
	}
	if len(body) > maxResponse {
		apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response over 6 MB")
		return
	}
	now := time.Now()
	r.mu.Lock()
	inv := r.current
	if inv == nil || inv.ID != id {
		r.mu.Unlock()
		apiError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation in progress with ID "+id)
		return
	}
	r.current = nil
	r.mu.Unlock()

	inv.Answered, inv.Response = now, body
	if pid := r.pid.Load(); pid != 0 {
		inv.CPUAnswered = processCPU(int(pid))
	}
	switch {
	case isError:
		inv.ErrorType, inv.ErrorMessage = errorOf(body, req.Header.Get(headerErrorType))
		if inv.ErrorType == "" {
			inv.ErrorType = "Unknown"
		}
	case req.Trailer.Get(headerErrorType) != "":
		// A response whose stream failed: aws-lambda-go says so in trailers.
		inv.ErrorType = req.Trailer.Get(headerErrorType)
		inv.ErrorMessage = req.Trailer.Get(trailerErrorBody)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
	r.done <- inv
}

// initError takes the runtime's report that it cannot start.
func (r *runtimeAPI) initError(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, maxResponse))
	inv := &invocation{Answered: time.Now(), Init: true, Response: body}
	inv.ErrorType, inv.ErrorMessage = errorOf(body, req.Header.Get(headerErrorType))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
	select {
	case r.done <- inv:
	default:
	}
}

// errorOf reads an error document {"errorMessage", "errorType"}; the
// header's type wins over the body's.
func errorOf(body []byte, headerType string) (typ, msg string) {
	var e struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if json.Unmarshal(body, &e) != nil {
		e.ErrorMessage = string(body)
	}
	if headerType != "" {
		e.ErrorType = headerType
	}
	return e.ErrorType, e.ErrorMessage
}

// apiError answers as the Runtime API does when a call is wrong.
func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, typ})
	_, _ = w.Write(b)
}

// errExited is what wait returns when the bootstrap ended first.
var errExited = errors.New("the bootstrap exited")

// wait returns the next answered invocation, or an error when exited is
// closed first (the process ended), the timeout passes or ctx ends.
func (r *runtimeAPI) wait(ctx context.Context, exited <-chan struct{}, timeout time.Duration) (*invocation, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case inv := <-r.done:
		return inv, nil
	case <-exited:
		select { // an answer posted just before the exit
		case inv := <-r.done:
			return inv, nil
		default:
			return nil, errExited
		}
	case <-t.C:
		return nil, fmt.Errorf("no answer within %s", timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// processCPU returns the CPU time the process pid has used so far, its
// threads' together, in nanoseconds (/proc/<pid>/task/*/schedstat): unlike
// the wall time, it hardly changes with what else the machine runs.
func processCPU(pid int) time.Duration {
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			total += time.Duration(ns)
		}
	}
	return total
}
