package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/broadsheet-news/broadsheet/internal/dynamo"
	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
)

// tokenCmd creates, lists and revokes editor tokens, in the data folder's store or,
// with --table, in the DynamoDB table of a deployed stack.
func tokenCmd(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "list" && args[0] != "revoke") {
		return fmt.Errorf("usage: broadsheet token create --name NAME [--scopes edit,send] [--table TABLE] | broadsheet token list [--table TABLE] | broadsheet token revoke [--table TABLE] NAME|ID")
	}
	var name, scopes, table string
	cfg, fs, err := parseConfig("token "+args[0], args[1:], env, stderr, func(fs *flag.FlagSet) {
		if args[0] == "create" {
			fs.StringVar(&name, "name", "", "who the token is for (required)")
			fs.StringVar(&scopes, "scopes", "edit,send", "what it may do: edit (articles, digests, subscribers) and send")
		}
		fs.StringVar(&table, "table", env.getenv("BROADSHEET_TABLE"), "the DynamoDB table of a deployed stack, instead of the data folder (AWS credentials from the environment) [BROADSHEET_TABLE]")
	})
	if err != nil {
		return ignoreHelp(err)
	}
	svc, done, err := tokenService(ctx, cfg, table, stderr)
	if err != nil {
		return err
	}
	defer done()
	if args[0] == "revoke" {
		if fs.NArg() != 1 {
			return fmt.Errorf("usage: broadsheet token revoke [--table TABLE] NAME|ID")
		}
		t, err := svc.RevokeEditorToken(ctx, fs.Arg(0))
		if err != nil {
			return userError(err)
		}
		fmt.Fprintf(stderr, "Editor token %q (%s) revoked: its secret and its console sessions no longer work.\n", t.Name, t.ID)
		return nil
	}
	if args[0] == "list" {
		ts, err := svc.EditorTokens(ctx)
		if err != nil {
			return err
		}
		for _, t := range ts {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Scopes, ","), t.CreatedAt.Format(time.RFC3339))
		}
		return nil
	}
	secret, t, err := svc.CreateEditorToken(ctx, name, splitList(scopes))
	if err != nil {
		return userError(err)
	}
	fmt.Fprintf(stderr, "Editor token %q (%s) created. It is shown once:\n", t.Name, strings.Join(t.Scopes, ","))
	fmt.Fprintln(stdout, secret)
	return nil
}

// tokenService returns a newsroom for the token commands: the laptop app,
// or, for a deployed stack, one on the DynamoDB table alone (editor tokens
// touch nothing but the store).
func tokenService(ctx context.Context, cfg *config, table string, stderr io.Writer) (*newsroom.Service, func(), error) {
	if table == "" {
		a, err := openApp(cfg, stderr)
		if err != nil {
			return nil, nil, err
		}
		return a.service, func() { a.Close() }, nil
	}
	awscfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("aws config: %w", err)
	}
	store := dynamo.New(dynamodb.NewFromConfig(awscfg), table)
	return newsroom.New(store, nil, nil, nil, nil, nil, nil, newsroom.Config{Site: cfg.Site()}), func() {}, nil
}

// digestCmd builds this period's digest and sends it, waiting until every
// reader's copy is settled.
func digestCmd(ctx context.Context, args []string, env environ, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "send" {
		return fmt.Errorf("usage: broadsheet digest send --frequency daily|weekly [--intro TEXT]")
	}
	var freq, intro string
	cfg, _, err := parseConfig("digest send", args[1:], env, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&freq, "frequency", "daily", "daily or weekly")
		fs.StringVar(&intro, "intro", "", "the editor's note at the top")
	})
	if err != nil {
		return ignoreHelp(err)
	}
	a, err := openApp(cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	a.queue.Start(ctx)
	if err := a.engine.Resume(ctx); err != nil {
		return err
	}
	stop := a.recoverWhileRunning(ctx)
	defer stop() // before the store closes
	st, created, err := a.service.CreateDigest(ctx, newsroom.DigestRequest{Frequency: freq, Intro: intro, Send: true})
	if err != nil {
		return userError(err)
	}
	if !created {
		fmt.Fprintf(stdout, "Digest %s already exists (%s); resuming it.\n", st.ID, st.Status)
	}
	fmt.Fprintf(stdout, "Sending %s: %q, %d articles\n", st.ID, st.Subject, len(st.Articles))
	// On a terminal, one progress bar redrawn in place; otherwise (a log,
	// a pipe) a plain line a second.
	bar := isTerminal(stdout)
	every := time.Second
	if bar {
		every = 250 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	p := progress{start: time.Now(), first: -1}
	endBar := func() {
		if bar {
			fmt.Fprintln(stdout)
		}
	}
	for {
		st, err = a.service.Digest(ctx, st.ID)
		if err != nil {
			endBar()
			return err
		}
		c := st.Counters
		if bar {
			fmt.Fprintf(stdout, "\r%s", p.bar(c.Settled(), c.Total, time.Now()))
		}
		if st.Status == newsletter.DigestSent {
			endBar()
			fmt.Fprintf(stdout, "Sent %s: %d sent, %d skipped, %d failed, %d unknown\n", st.ID, c.Sent, c.Skipped, c.Failed, c.Unknown)
			return nil
		}
		if st.Status == newsletter.DigestPaused {
			endBar()
			fmt.Fprintf(stdout, "Paused %s: %s. %d sent so far; run send again to resume.\n", st.ID, st.PausedReason, c.Sent)
			return fmt.Errorf("digest %s paused", st.ID)
		}
		if !bar {
			fmt.Fprintf(stdout, "%s: %d of %d settled (%d sent)\n", st.ID, c.Settled(), c.Total, c.Sent)
		}
		select {
		case <-ctx.Done():
			endBar()
			fmt.Fprintln(stdout, "Interrupted: the digest resumes where it stopped the next time Broadsheet starts.")
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// isTerminal reports whether w is a terminal (a character device), where
// a progress bar can be redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress draws a send's progress bar, with its rate and the time left.
// The rate counts from the first figure it saw, so a resumed digest's
// earlier sends do not inflate it.
type progress struct {
	start time.Time
	first int64 // settled at the first draw; -1 before it
}

// barWidth is the bar's width in characters.
const barWidth = 30

// bar returns the progress line for done of total settled at now.
func (p *progress) bar(done, total int64, now time.Time) string {
	if p.first < 0 {
		p.first = done
	}
	frac := 0.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	filled := int(frac * barWidth)
	line := fmt.Sprintf("[%s%s] %3.0f%% %d/%d", strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled), frac*100, done, total)
	elapsed := now.Sub(p.start).Seconds()
	if rate := float64(done-p.first) / elapsed; elapsed > 0 && rate > 0 {
		line += fmt.Sprintf("  %.0f/s", rate)
		if left := total - done; left > 0 {
			line += "  ETA " + time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second).String()
		} else {
			line += "  ETA 0s"
		}
	} else {
		line += "  ETA …"
	}
	return line + "\x1b[K" // clear what a longer earlier line left
}

// subscribersCmd imports and exports readers as CSV.
func subscribersCmd(ctx context.Context, args []string, env environ, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "import" && args[0] != "export") {
		return fmt.Errorf("usage: broadsheet subscribers import FILE.csv | broadsheet subscribers export")
	}
	cfg, fs, err := parseConfig("subscribers "+args[0], args[1:], env, stderr, nil)
	if err != nil {
		return ignoreHelp(err)
	}
	var in io.Reader
	if args[0] == "import" {
		if fs.NArg() != 1 {
			return fmt.Errorf("usage: broadsheet subscribers import FILE.csv (- for standard input)")
		}
		if in = stdin; fs.Arg(0) != "-" {
			f, err := os.Open(fs.Arg(0))
			if err != nil {
				return err
			}
			defer f.Close()
			in = f
		}
	}
	a, err := openApp(cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	if args[0] == "export" {
		return a.service.ExportSubscribers(ctx, stdout)
	}
	res, err := a.service.ImportSubscribers(ctx, in)
	if err != nil {
		return userError(err)
	}
	fmt.Fprintf(stdout, "Imported: %d added, %d updated, %d unchanged\n", res.Added, res.Updated, res.Unchanged)
	return nil
}

// userError shows a newsletter error's message rather than its code.
func userError(err error) error {
	if code := newsletter.ErrorCode(err); code != newsletter.EINTERNAL {
		return fmt.Errorf("%s", newsletter.ErrorMessage(err))
	}
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
