package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
)

// tokenCmd creates and lists editor tokens.
func tokenCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "list") {
		return fmt.Errorf("usage: broadsheet token create --name NAME [--scopes edit,send] | broadsheet token list")
	}
	var name, scopes string
	cfg, _, err := parseConfig("token "+args[0], args[1:], getenv, stderr, func(fs *flag.FlagSet) {
		if args[0] == "create" {
			fs.StringVar(&name, "name", "", "who the token is for (required)")
			fs.StringVar(&scopes, "scopes", "edit,send", "what it may do: edit (articles, digests, subscribers) and send")
		}
	})
	if err != nil {
		return ignoreHelp(err)
	}
	a, err := openApp(cfg, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	if args[0] == "list" {
		ts, err := a.service.EditorTokens(ctx)
		if err != nil {
			return err
		}
		for _, t := range ts {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Scopes, ","), t.CreatedAt.Format(time.RFC3339))
		}
		return nil
	}
	secret, t, err := a.service.CreateEditorToken(ctx, name, splitList(scopes))
	if err != nil {
		return userError(err)
	}
	fmt.Fprintf(stderr, "Editor token %q (%s) created. It is shown once:\n", t.Name, strings.Join(t.Scopes, ","))
	fmt.Fprintln(stdout, secret)
	return nil
}

// digestCmd builds this period's digest and sends it, waiting until every
// reader's copy is settled.
func digestCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "send" {
		return fmt.Errorf("usage: broadsheet digest send --frequency daily|weekly [--intro TEXT]")
	}
	var freq, intro string
	cfg, _, err := parseConfig("digest send", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
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
	st, created, err := a.service.CreateDigest(ctx, newsroom.DigestRequest{Frequency: freq, Intro: intro, Send: true})
	if err != nil {
		return userError(err)
	}
	if !created {
		fmt.Fprintf(stdout, "Digest %s already exists (%s); resuming it.\n", st.ID, st.Status)
	}
	fmt.Fprintf(stdout, "Sending %s: %q, %d articles\n", st.ID, st.Subject, len(st.Articles))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		st, err = a.service.Digest(ctx, st.ID)
		if err != nil {
			return err
		}
		c := st.Counters
		if st.Status == newsletter.DigestSent {
			fmt.Fprintf(stdout, "Sent %s: %d sent, %d skipped, %d failed, %d unknown\n", st.ID, c.Sent, c.Skipped, c.Failed, c.Unknown)
			return nil
		}
		fmt.Fprintf(stdout, "%s: %d of %d settled (%d sent)\n", st.ID, c.Settled(), c.Total, c.Sent)
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout, "Interrupted: the digest resumes where it stopped the next time Broadsheet starts.")
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// subscribersCmd imports and exports readers as CSV.
func subscribersCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "import" && args[0] != "export") {
		return fmt.Errorf("usage: broadsheet subscribers import FILE.csv | broadsheet subscribers export")
	}
	cfg, fs, err := parseConfig("subscribers "+args[0], args[1:], getenv, stderr, nil)
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
