package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// buildLambda builds the Go package pkg (a path from the module root) as
// a Lambda bootstrap, as the Makefile does but for this machine.
func buildLambda(t *testing.T, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// runBootstrap starts bootstrap against api and returns a channel closed when it
// exits; it is killed when the test ends.
func runBootstrap(t *testing.T, api *runtimeAPI, bootstrap string, env ...string) <-chan struct{} {
	t.Helper()
	cmd := exec.Command(bootstrap)
	cmd.Env = lambdaEnv(env, api.addr, bootstrap)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	return exited
}

// TestRuntimeAPI runs a real aws-lambda-go bootstrap against the bench's
// Runtime API: it gets each event with its request ID, deadline, function
// ARN and trace ID, its answers and errors come back to the invocation
// they belong to, and once the events are used up it waits.
func TestRuntimeAPI(t *testing.T) {
	boot := buildLambda(t, "./cmd/bench/testdata/echo")
	api, err := startRuntimeAPI([]byte(`{"echo":"one"}`), []byte(`{"fail":"no such digest"}`), []byte(`{"echo":"three"}`), []byte(`{"exit":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer api.close()
	start := time.Now()
	exited := runBootstrap(t, api, boot)
	ctx := context.Background()

	var got []*invocation
	for range 3 {
		inv, err := api.wait(ctx, exited, 30*time.Second)
		if err != nil {
			t.Fatalf("after %d invocations: %v", len(got), err)
		}
		got = append(got, inv)
	}
	for i, inv := range got {
		if inv.Next.Before(start) || inv.Answered.Before(inv.Next) || (i > 0 && inv.Next.Before(got[i-1].Answered)) {
			t.Errorf("invocation %d: asked for at %v, answered at %v: out of order", i+1, inv.Next.Sub(start), inv.Answered.Sub(start))
		}
	}
	for _, i := range []int{0, 2} {
		var a struct {
			Echo, RequestID, FunctionARN, TraceID string
			DeadlineInMs                          int64
		}
		if err := json.Unmarshal(got[i].Response, &a); err != nil || got[i].failed() != nil {
			t.Fatalf("invocation %d: %s, %v, %v", i+1, got[i].Response, err, got[i].failed())
		}
		if want := []string{"one", "", "three"}[i]; a.Echo != want || a.RequestID != got[i].ID || a.FunctionARN != api.arn || !strings.HasPrefix(a.TraceID, "Root=1-") {
			t.Errorf("invocation %d: the function saw %+v; want echo %q, request ID %s, ARN %s and a trace ID", i+1, a, want, got[i].ID, api.arn)
		}
		if a.DeadlineInMs < 20_000 || a.DeadlineInMs > invocationDeadline.Milliseconds() {
			t.Errorf("invocation %d: %d ms left before the deadline, want about %d", i+1, a.DeadlineInMs, invocationDeadline.Milliseconds())
		}
	}
	if err := got[1].failed(); err == nil || got[1].ErrorMessage != "no such digest" || got[1].ErrorType == "" {
		t.Errorf("failing invocation: %+v, %v; want its error message and type", got[1], err)
	}
	if got[0].ID == got[2].ID {
		t.Errorf("two invocations with one request ID %s", got[0].ID)
	}

	// The fourth event makes the function exit without answering.
	if inv, err := api.wait(ctx, exited, 30*time.Second); !errors.Is(err, errExited) {
		t.Errorf("after the function exited: %+v, %v; want errExited", inv, err)
	}
}

// TestRuntimeAPIContract: what a runtime can get wrong is refused as the
// Runtime API refuses it, an init error is reported, and next waits while
// there is no event.
func TestRuntimeAPIContract(t *testing.T) {
	api, err := startRuntimeAPI([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer api.close()
	base := "http://" + api.addr + "/2018-06-01/runtime/"
	do := func(method, path, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	res, err := http.Get(base + "invocation/next")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	id := res.Header.Get(headerRequestID)
	if res.StatusCode != 200 || id == "" || res.Header.Get(headerDeadline) == "" || res.Header.Get(headerFunctionARN) == "" {
		t.Fatalf("next: %d %v", res.StatusCode, res.Header)
	}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"POST", "invocation/not-" + id + "/response", http.StatusBadRequest},
		{"POST", "invocation/" + id + "/answer", http.StatusNotFound},
		{"GET", "invocation/" + id + "/response", http.StatusMethodNotAllowed},
		{"POST", "invocation/next", http.StatusMethodNotAllowed},
		{"GET", "../2015-03-31/functions/function/invocations", http.StatusNotFound},
		{"POST", "invocation/" + id + "/response", http.StatusAccepted},
		{"POST", "invocation/" + id + "/response", http.StatusBadRequest}, // answered already
		{"POST", "init/error", http.StatusAccepted},
	} {
		if got := do(tc.method, tc.path, `{"errorMessage":"cannot start","errorType":"Runtime.Unknown"}`); got != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
	ctx := context.Background()
	if inv, err := api.wait(ctx, nil, time.Second); err != nil || inv.ID != id || inv.failed() != nil {
		t.Errorf("the answered invocation: %+v, %v", inv, err)
	}
	if inv, err := api.wait(ctx, nil, time.Second); err != nil || !inv.Init || inv.ErrorType != "Runtime.Unknown" || inv.ErrorMessage != "cannot start" {
		t.Errorf("the init error: %+v, %v", inv, err)
	}

	// With no event left, next waits until the server closes.
	done := make(chan int)
	go func() {
		res, err := http.Get(base + "invocation/next")
		if err != nil {
			done <- 0
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	select {
	case code := <-done:
		t.Fatalf("next with no event left answered %d at once", code)
	case <-time.After(100 * time.Millisecond):
	}
	api.close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("next still waiting after the server closed")
	}
}

// TestColdStartAPIFunction runs the real api bootstrap against the bench's
// Runtime API, as the bench does: its health check needs no AWS call.
func TestColdStartAPIFunction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the api bootstrap")
	}
	boot := buildLambda(t, "./functions/api")
	event, err := os.ReadFile("../../events/api-health.json")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"BROADSHEET_TABLE=broadsheet", "BROADSHEET_FROM=The Ledger <news@ledger.example>",
		"BROADSHEET_SIGNING_KEY=" + strings.Repeat("ab", 32), "BROADSHEET_DIGEST_FUNCTION=function",
		"BROADSHEET_BASE_URL=https://news.ledger.example",
		"AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
	}
	s, err := coldStart(context.Background(), boot, env, event)
	if err != nil {
		t.Fatal(err)
	}
	if s.init <= 0 || s.invoke <= 0 || s.warm <= 0 || s.ready != s.init+s.invoke {
		t.Errorf("cold start %+v: want init + invoke = ready, all above zero", s)
	}
	// The answer itself.
	api, err := startRuntimeAPI(event)
	if err != nil {
		t.Fatal(err)
	}
	defer api.close()
	inv, err := api.wait(context.Background(), runBootstrap(t, api, boot, env...), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var res events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(inv.Response, &res); err != nil || res.StatusCode != 200 || strings.TrimSpace(res.Body) != `{"status":"ok"}` {
		t.Errorf("GET /healthz: %s, %v; want 200 {\"status\":\"ok\"}", inv.Response, err)
	}
}
