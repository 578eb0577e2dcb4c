package awstest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RIEVersion is the aws-lambda-rie that `make aws-deps` installs.
const RIEVersion = "v0.0.0-20261030222936-bef5c4ba774d"

// Lambda is a function's real bootstrap binary running under the Lambda
// Runtime Interface Emulator, the same emulator `sam local` runs inside its
// containers.
type Lambda struct {
	*Server
	mu sync.Mutex // the emulator takes one invocation at a time
}

// rie returns the path of aws-lambda-rie, or reports it missing.
func rie(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p
	}
	gobin, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gobin)), "bin", "aws-lambda-rie")
	if _, err := os.Stat(p); err != nil {
		Missing(tb, "aws-lambda-rie (go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@"+RIEVersion+")")
	}
	return p
}

// BuildBootstrap builds ./functions/<name> as a Lambda bootstrap for this
// machine (the deployed one is built for arm64 by the Makefile) into a
// temporary folder and returns its path.
func BuildBootstrap(tb testing.TB, name string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), name, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, "./functions/"+name)
	cmd.Dir = Root(tb)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("awstest: build %s: %v\n%s", name, err, b)
	}
	return out
}

// StartLambda runs bootstrap under the emulator with the given extra
// environment (KEY=value) and stops it when the test ends.
func StartLambda(tb testing.TB, bootstrap string, env ...string) *Lambda {
	tb.Helper()
	port, apiPort := FreePort(tb), FreePort(tb)
	// Parallel callers may pass one slice: append to a copy, never to it.
	env = append(slices.Clip(env), "AWS_REGION="+Region, "AWS_DEFAULT_REGION="+Region, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	s := Start(tb, "aws-lambda-rie "+filepath.Base(filepath.Dir(bootstrap)), port, filepath.Dir(bootstrap), env,
		rie(tb), "--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(port),
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort), bootstrap)
	tb.Cleanup(s.Stop)
	return &Lambda{Server: s}
}

// Invoke sends one event and returns the function's answer. A handler
// error comes back as {"errorMessage","errorType"}; InvokeOK fails on it.
func (l *Lambda) Invoke(tb testing.TB, event any) []byte {
	tb.Helper()
	body, ok := event.([]byte)
	if !ok {
		var err error
		if body, err = json.Marshal(event); err != nil {
			tb.Fatal(err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	client := &http.Client{Timeout: time.Minute}
	res, err := client.Post(l.Endpoint+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("invoke %s: %v\n%s", l.Name, err, l.out.String())
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		tb.Fatalf("invoke %s: status %d, %v: %s\n%s", l.Name, res.StatusCode, err, b, l.out.String())
	}
	return b
}

// InvokeOK is Invoke that fails the test when the handler returned an
// error.
func (l *Lambda) InvokeOK(tb testing.TB, event any) []byte {
	tb.Helper()
	b := l.Invoke(tb, event)
	var e struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	if json.Unmarshal(b, &e) == nil && e.ErrorType != "" {
		tb.Fatalf("%s returned %s: %s\n%s", l.Name, e.ErrorType, e.ErrorMessage, l.out.String())
	}
	return b
}

// Logs returns what the function has printed so far.
func (l *Lambda) Logs() string { return l.out.String() }
