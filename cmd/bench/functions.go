package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/harness"
)

// functions are the Lambda functions, each with the sample event from
// events/ that start-to-ready invokes it with.
var functions = []struct{ name, event string }{
	{"api", "api-health.json"},
	{"digest", "digest.json"},
	{"sender", "sender.json"},
	{"feedback", "feedback-bounce.json"},
}

// startRuns is how many cold starts the median is taken over.
const startRuns = 10

// runFunctions builds each function's bootstrap as the Makefile's
// build-<LogicalId> does, but for this machine, and prints its size and
// the median of ten start-to-ready times: from starting aws-lambda-rie to
// the answer of the first invocation (the bootstrap starts, reads its
// environment, builds its clients and answers; with the file cache warm).
// The functions' AWS clients point at the stand-ins.
func runFunctions(ctx context.Context, work string, stdout, stderr io.Writer) error {
	defer awstest.StopAll()
	root, err := harness.StandIn("bench", func(tb testing.TB) string { return awstest.Root(tb) })
	if err != nil {
		return err
	}
	rie, err := rieBinary()
	if err != nil {
		return err
	}
	st, err := startStack()
	if err != nil {
		return err
	}
	table, queueURL, err := st.table(ctx, "bench-functions")
	if err != nil {
		return err
	}
	env := []string{
		"BROADSHEET_TABLE=" + table,
		"BROADSHEET_QUEUE_URL=" + queueURL,
		"BROADSHEET_FROM=The Ledger <news@ledger.example>",
		"BROADSHEET_SIGNING_KEY=" + strings.Repeat("ab", 32),
		"BROADSHEET_DIGEST_FUNCTION=function",
		"BROADSHEET_BASE_URL=https://news.ledger.example",
		"AWS_ENDPOINT_URL_DYNAMODB=" + st.ddbURL,
		"AWS_ENDPOINT_URL_SQS=" + st.sqsURL,
		"AWS_ENDPOINT_URL_SESV2=" + st.sesURL,
		"AWS_REGION=" + awstest.Region, "AWS_DEFAULT_REGION=" + awstest.Region,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
	}
	for _, fn := range functions {
		boot := filepath.Join(work, "functions", fn.name, "bootstrap")
		build := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", boot, "./functions/"+fn.name)
		build.Dir = root
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", fn.name, err, out)
		}
		info, err := os.Stat(boot)
		if err != nil {
			return err
		}
		event, err := os.ReadFile(filepath.Join(root, "events", fn.event))
		if err != nil {
			return err
		}
		var times []time.Duration
		for range startRuns {
			d, err := startToReady(ctx, rie, boot, env, event)
			if err != nil {
				return fmt.Errorf("function %s: %w", fn.name, err)
			}
			times = append(times, d)
		}
		slices.Sort(times)
		median := (times[startRuns/2-1] + times[startRuns/2]) / 2
		fmt.Fprintf(stdout, "BENCH function=%s bootstrap_mb=%.1f start_to_ready_ms=%.1f min_ms=%.1f max_ms=%.1f\n", fn.name,
			float64(info.Size())/(1<<20), ms(median), ms(times[0]), ms(times[len(times)-1]))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rieBinary returns the path of aws-lambda-rie (`make aws-deps`).
func rieBinary() (string, error) {
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p, nil
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "aws-lambda-rie")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("aws-lambda-rie is missing: run make aws-deps")
	}
	return p, nil
}

// freePort returns a TCP port free on 127.0.0.1 now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startToReady starts bootstrap under the emulator and returns the time
// from the start to the first answered invocation, retrying every
// millisecond until the emulator listens. The emulator and the bootstrap
// are killed afterwards.
func startToReady(ctx context.Context, rie, bootstrap string, env []string, event []byte) (time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	apiPort, err := freePort()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(port),
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort), bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("aws-lambda-rie: %w", err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the emulator's group: it and the bootstrap
		_ = cmd.Wait()
	}()
	client := &http.Client{Timeout: 30 * time.Second}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/2015-03-31/functions/function/invocations"
	for time.Since(t0) < 30*time.Second && ctx.Err() == nil {
		res, err := client.Post(url, "application/json", bytes.NewReader(event))
		if err != nil {
			time.Sleep(time.Millisecond)
			continue
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		d := time.Since(t0)
		if res.StatusCode != http.StatusOK || bytes.Contains(body, []byte(`"errorType"`)) {
			return 0, fmt.Errorf("invocation: %d %s\n%s", res.StatusCode, body, logs.String())
		}
		return d, nil
	}
	return 0, fmt.Errorf("no answer within 30 s\n%s", logs.String())
}
