package main

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// harness lets this command use packages awstest and smtptest, which start
// their servers for tests and report through a testing.TB: it is one,
// outside any test, as in cmd/chaos. Fatal and Skip end the calling
// goroutine, as in a test, and the error is read back by standIn. A
// stand-in that is missing is an error here, never a skip.
type harness struct {
	testing.TB // never called: every method the packages use is below
	mu         sync.Mutex
	err        error
}

func (h *harness) Helper()             {}
func (h *harness) Name() string        { return "bench" }
func (h *harness) Cleanup(func())      {}
func (h *harness) Logf(string, ...any) {}
func (h *harness) fail(msg string) {
	h.mu.Lock()
	if h.err == nil {
		h.err = fmt.Errorf("stand-in: %s", msg)
	}
	h.mu.Unlock()
	runtime.Goexit()
}
func (h *harness) Fatal(args ...any)                 { h.fail(fmt.Sprint(args...)) }
func (h *harness) Fatalf(format string, args ...any) { h.fail(fmt.Sprintf(format, args...)) }
func (h *harness) Skip(args ...any)                  { h.fail(fmt.Sprint(args...)) }
func (h *harness) Skipf(format string, args ...any)  { h.fail(fmt.Sprintf(format, args...)) }
func (h *harness) TempDir() string                   { h.fail("TempDir is not available"); return "" }

// standIn runs a function that needs a testing.TB on its own goroutine,
// so that a Fatal ends that goroutine only, and returns its result or its
// failure.
func standIn[T any](f func(testing.TB) T) (T, error) {
	h := &harness{}
	var v T
	done := make(chan struct{})
	go func() {
		defer close(done)
		v = f(h)
	}()
	<-done
	h.mu.Lock()
	defer h.mu.Unlock()
	return v, h.err
}
