package main

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/broadsheet-news/broadsheet/internal/awsapp"
	"github.com/broadsheet-news/broadsheet/internal/awstest"
	"github.com/broadsheet-news/broadsheet/internal/harness"
	"github.com/broadsheet-news/broadsheet/internal/wordpress/wptest"
)

// functions are the Lambda functions: the SAM logical ID whose Makefile
// target builds the deployed bootstrap, and the sample event from events/
// that start-to-ready invokes it with.
var functions = []struct{ name, logicalID, event string }{
	{"api", "ApiFunction", "api-health.json"},
	{"digest", "DigestFunction", "digest.json"},
	{"sender", "SenderFunction", "sender.json"},
	{"feedback", "FeedbackFunction", "feedback-bounce.json"},
	{"ingest", "IngestFunction", "ingest.json"},
}

// startRuns is how many cold starts each median is taken over.
const startRuns = 10

// runFunctions prints one line per function:
//
//	BENCH function=api bootstrap_mb=… start_to_ready_ms=… host_mb=… init_ms=… invoke_ms=… warm_invoke_ms=… init_cpu_ms=… invoke_cpu_ms=… aws_calls=… init_aws_ms=… invoke_aws_ms=… invoke_own_ms=… rie_start_to_ready_ms=… min_ms=… max_ms=…
//
// The fields:
//   - bootstrap_mb: the stripped bootstrap that is deployed, built by the
//     Makefile's build-<LogicalId> target (linux/arm64); host_mb: the same
//     build for this machine, which is what runs here.
//   - start_to_ready_ms: from exec of the bootstrap to its response to the
//     first invocation, under the bench's own Runtime API (runtimeapi.go),
//     so that no emulator's start is in it. init_ms is the part up to its
//     first GET .../invocation/next (package init, config, clients: what
//     Lambda reports as Init Duration), invoke_ms the first invocation
//     itself, calls to the stand-ins included, and warm_invoke_ms the same
//     event invoked again in the same process (what the stand-ins and the
//     handler cost once connections are open and nothing is lazy).
//     init_cpu_ms and invoke_cpu_ms are the CPU time the bootstrap used
//     in each (all its threads, from /proc), which what else runs on the
//     machine hardly changes: the figure to compare two builds by.
//   - aws_calls, init_aws_ms and invoke_aws_ms: the calls to the stand-ins
//     until the first answer, and the time spent in them during init and
//     during the first invocation, measured in ten more cold starts whose
//     calls go through a timing proxy (standintimer.go): what of init_ms
//     and invoke_ms is DynamoDB Local's, SES's and SQS's, not the
//     function's; invoke_own_ms is the rest of the first invocation, the
//     function's own part (in those cold starts). The calls of the last
//     one are printed to stderr.
//   - rie_start_to_ready_ms: from starting aws-lambda-rie, with the
//     bootstrap under it, to the answer of the first invocation, as `sam
//     local` sees it.
//
// Each is the median of ten cold starts, the two ways interleaved, with
// the file cache warm; min_ms and max_ms are start_to_ready_ms's. The
// functions' AWS clients point at the stand-ins.
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
	site, err := startWordPress(root, time.Now())
	if err != nil {
		return err
	}
	defer site.Close()
	env := []string{
		awsapp.EnvWordPressURL + "=" + site.URL,
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
	timer, err := startStandInTimer(st.ddbURL, st.sqsURL, st.sesURL)
	if err != nil {
		return err
	}
	defer timer.close()
	var timedEnv []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if p, ok := timer.urls[v]; ok && strings.HasPrefix(k, "AWS_ENDPOINT_URL_") {
			v = p
		}
		timedEnv = append(timedEnv, k+"="+v)
	}
	for _, fn := range functions {
		dir := filepath.Join(work, "functions", fn.name)
		arm64, err := buildDeployed(ctx, root, fn.logicalID, filepath.Join(dir, "arm64"))
		if err != nil {
			return err
		}
		boot := filepath.Join(dir, "host", "bootstrap")
		if err := buildHost(ctx, root, fn.name, boot); err != nil {
			return err
		}
		host, err := os.Stat(boot)
		if err != nil {
			return err
		}
		event, err := os.ReadFile(filepath.Join(root, "events", fn.event))
		if err != nil {
			return err
		}
		var ready, inits, invokes, warm, rieReady, initCPU, invokeCPU []time.Duration
		for range startRuns {
			d, err := startToReady(ctx, rie, boot, env, event)
			if err != nil {
				return fmt.Errorf("function %s under aws-lambda-rie: %w", fn.name, err)
			}
			rieReady = append(rieReady, d)
			s, err := coldStart(ctx, boot, env, event)
			if err != nil {
				return fmt.Errorf("function %s under the bench's Runtime API: %w", fn.name, err)
			}
			ready, inits, invokes, warm = append(ready, s.ready), append(inits, s.init), append(invokes, s.invoke), append(warm, s.warm)
			initCPU, invokeCPU = append(initCPU, s.initCPU), append(invokeCPU, s.invokeCPU)
		}
		var calls []int
		var initAWS, invokeAWS, invokeOwn []time.Duration
		var last []timedCall
		for range startRuns {
			timer.reset()
			s, err := coldStart(ctx, boot, timedEnv, event)
			if err != nil {
				return fmt.Errorf("function %s, its AWS calls timed: %w", fn.name, err)
			}
			atInit, dInit := timer.between(s.at, s.at.Add(s.init))
			atInvoke, dInvoke := timer.between(s.at.Add(s.init), s.at.Add(s.ready))
			last = append(atInit, atInvoke...)
			calls = append(calls, len(last))
			initAWS, invokeAWS, invokeOwn = append(initAWS, dInit), append(invokeAWS, dInvoke), append(invokeOwn, s.invoke-dInvoke)
		}
		slices.Sort(calls)
		var ops []string
		for _, c := range last {
			ops = append(ops, fmt.Sprintf("%s %.1fms", c.op, ms(c.end.Sub(c.start))))
		}
		fmt.Fprintf(stderr, "bench: %s calls AWS until its first answer: %s\n", fn.name, strings.Join(ops, ", "))
		fmt.Fprintf(stdout, "BENCH function=%s bootstrap_mb=%.1f start_to_ready_ms=%.1f host_mb=%.1f init_ms=%.1f invoke_ms=%.1f warm_invoke_ms=%.1f init_cpu_ms=%.1f invoke_cpu_ms=%.1f aws_calls=%d init_aws_ms=%.1f invoke_aws_ms=%.1f invoke_own_ms=%.1f rie_start_to_ready_ms=%.1f min_ms=%.1f max_ms=%.1f\n",
			fn.name, mb(arm64), ms(median(ready)), mb(host.Size()), ms(median(inits)), ms(median(invokes)), ms(median(warm)),
			ms(median(initCPU)), ms(median(invokeCPU)),
			calls[len(calls)/2], ms(median(initAWS)), ms(median(invokeAWS)), ms(median(invokeOwn)),
			ms(median(rieReady)), ms(slices.Min(ready)), ms(slices.Max(ready)))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func mb(n int64) float64         { return float64(n) / (1 << 20) }

// median returns the median of ds, which it sorts.
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}

// buildDeployed runs `make build-<logicalID>` in root, as `sam build`
// does, into dir, and returns the bootstrap's size.
func buildDeployed(ctx context.Context, root, logicalID, dir string) (int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "build-"+logicalID, "ARTIFACTS_DIR="+dir)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("make build-%s: %v\n%s", logicalID, err, out)
	}
	info, err := os.Stat(filepath.Join(dir, "bootstrap"))
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

// buildHost builds ./functions/<name> as the Makefile does, but for this
// machine, to out.
func buildHost(ctx context.Context, root, name, out string) error {
	build := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, "./functions/"+name)
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v\n%s", name, err, out)
	}
	return nil
}

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
	cmd.Env = lambdaEnv(env, "", bootstrap) // the emulator passes it on, with its own
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

// start is one cold start under the bench's Runtime API.
type start struct {
	at     time.Time     // the exec
	ready  time.Duration // exec to the first response
	init   time.Duration // exec to the first GET next
	invoke time.Duration // the first next to its response
	warm   time.Duration // the second invocation's next to its response
	// The CPU time the bootstrap used until the first next, and from
	// there to the first response.
	initCPU, invokeCPU time.Duration
}

// coldStart runs bootstrap with AWS_LAMBDA_RUNTIME_API pointing at a
// fresh runtimeAPI that holds event twice, and times the first
// invocation from the exec and the second on its own. The bootstrap is
// killed afterwards.
func coldStart(ctx context.Context, bootstrap string, env []string, event []byte) (start, error) {
	api, err := startRuntimeAPI(event, event)
	if err != nil {
		return start{}, err
	}
	defer api.close()
	cmd := exec.Command(bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = lambdaEnv(env, api.addr, bootstrap)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return start{}, err
	}
	api.pid.Store(int64(cmd.Process.Pid))
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	s := start{at: t0}
	for i := range 2 {
		inv, err := api.wait(ctx, exited, 30*time.Second)
		if err == nil {
			err = inv.failed()
		}
		if err != nil {
			return start{}, fmt.Errorf("invocation %d: %w\n%s", i+1, err, logs.String())
		}
		if i == 0 {
			s.ready, s.init, s.invoke = inv.Answered.Sub(t0), inv.Next.Sub(t0), inv.Answered.Sub(inv.Next)
			s.initCPU, s.invokeCPU = inv.CPUNext, inv.CPUAnswered-inv.CPUNext
		} else {
			s.warm = inv.Answered.Sub(inv.Next)
		}
	}
	return s, nil
}

// lambdaEnv is the environment Lambda gives a function's runtime: the
// function's own variables (env) and those Lambda defines
// (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
// with runtimeAPI as AWS_LAMBDA_RUNTIME_API unless it is empty (the
// emulator sets it). Nothing else: not this machine's environment, whose
// variables would change what the SDK does at start (AWS_CA_BUNDLE, set
// here, makes every config load parse a CA bundle: about 10 ms) and which
// Lambda's does not have (no HOME either, so no shared config files).
func lambdaEnv(env []string, runtimeAPI, bootstrap string) []string {
	e := append(slices.Clip(env),
		"AWS_LAMBDA_FUNCTION_NAME="+runtimeFunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+runtimeFunctionName,
		"AWS_LAMBDA_LOG_STREAM_NAME=2026/11/26/[$LATEST]0123456789abcdef0123456789abcdef",
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"LAMBDA_TASK_ROOT="+filepath.Dir(bootstrap),
		"LAMBDA_RUNTIME_DIR="+filepath.Dir(bootstrap),
		"_HANDLER=bootstrap",
		"LANG=en_US.UTF-8",
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"TZ=:UTC",
	)
	if runtimeAPI != "" {
		e = append(e, "AWS_LAMBDA_RUNTIME_API="+runtimeAPI)
	}
	return e
}

// startWordPress starts a WordPress-shaped site on 127.0.0.1 (wptest,
// which filters by after and modified_after as the REST API does) with
// the real-shaped posts in internal/wordpress/testdata, re-dated to end
// two days before now: inside the first pull's week back, so the first
// cold start of the ingest function pulls them all, and older than the
// instant emails' six hours, so none goes out. The others start from its
// checkpoint and find only the overlap, as a scheduled pull mostly does.
func startWordPress(root string, now time.Time) (*wptest.Site, error) {
	data, err := os.ReadFile(filepath.Join(root, "internal", "wordpress", "testdata", "posts.json"))
	if err != nil {
		return nil, fmt.Errorf("wordpress posts: %w", err)
	}
	var posts []json.RawMessage
	if err := json.Unmarshal(data, &posts); err != nil {
		return nil, fmt.Errorf("wordpress posts: %w", err)
	}
	if posts, err = wptest.Redate(posts, now.Add(-48*time.Hour)); err != nil {
		return nil, fmt.Errorf("wordpress posts: %w", err)
	}
	return wptest.Start(posts...), nil
}
