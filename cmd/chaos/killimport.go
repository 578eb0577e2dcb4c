package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// runKillImport SIGKILLs `broadsheet subscribers import` at random
// moments of a large import, then runs it again to the end: the store
// must hold every address once, and the last run must report as added
// exactly the readers the killed runs had not stored (and the others as
// unchanged). Each reader is stored in one bbolt transaction with its
// address index, so a kill leaves no half-stored reader.
func runKillImport(ctx context.Context, env *runEnv, r *result) error {
	r.exact = true
	r.set("scenario", "kill")
	r.set("path", "laptop-import")
	readers, kills := env.pick(20000, 3000), env.pick(5, 2)
	rng := env.rng("kill-import")
	bin, err := env.broadsheetBinary(ctx)
	if err != nil {
		return err
	}
	dir, cleanup, err := env.tempDir("kill-import")
	if err != nil {
		return err
	}
	defer cleanup()
	file := filepath.Join(dir, "readers.csv")
	var b strings.Builder
	b.WriteString("email,status,frequency\n")
	for i := range readers {
		fmt.Fprintf(&b, "%s,confirmed,daily\n", readerEmail(i))
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		return err
	}
	// The import of file into the data folder data, to the end.
	importAll := func(data string) (string, error) {
		args := []string{"subscribers", "import", "--data", data, file}
		cmd := exec.CommandContext(ctx, bin, args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if err != nil {
			return out.String(), fmt.Errorf("broadsheet %s: %w: %s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String(), nil
	}

	// How long a whole import takes here, to kill the real ones within it.
	t0 := time.Now()
	if _, err := importAll(filepath.Join(dir, "scratch")); err != nil {
		return err
	}
	whole := time.Since(t0)

	data := filepath.Join(dir, "data")
	killed := 0
	for range kills {
		stored, err := exported(ctx, bin, data)
		if err != nil {
			return err
		}
		left := readers - len(stored)
		if left < readers/10 {
			break // too little left to kill a run half-way through
		}
		// Somewhere in the middle of what this run has left to store.
		u := 0.2 + 0.6*rng.Float64()
		wait := time.Duration(u * float64(whole) * float64(left) / float64(readers))
		cmd := exec.CommandContext(ctx, bin, "subscribers", "import", "--data", data, file)
		if err := cmd.Start(); err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(wait):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			killed++
			continue
		}
		break // it finished first: nothing left to kill
	}
	before, err := exported(ctx, bin, data)
	if err != nil {
		return err
	}
	out, err := importAll(data)
	if err != nil {
		return err
	}
	var added, updated, unchanged int
	if _, err := fmt.Sscanf(out, "Imported: %d added, %d updated, %d unchanged", &added, &updated, &unchanged); err != nil {
		return fmt.Errorf("the last import said %q: %w", out, err)
	}
	after, err := exported(ctx, bin, data)
	if err != nil {
		return err
	}
	missing, dups := 0, 0
	for i := range readers {
		switch n := after[readerEmail(i)]; {
		case n == 0:
			missing++
		case n > 1:
			dups++
		}
	}
	r.set("recipients", readers)
	r.set("kills", killed)
	r.want(killed > 0, "no import was killed: each finished within its wait")
	r.zero("missing", missing)
	r.zero("duplicates", dups)
	r.set("stored_before_retry", len(before))
	r.set("retry_added", added)
	r.set("retry_unchanged", unchanged)
	r.want(len(before) > 0 && len(before) < readers, "the killed imports stored %d of %d readers, want some", len(before), readers)
	r.want(added == readers-len(before) && unchanged == len(before) && updated == 0,
		"the retry reported %d added, %d updated, %d unchanged; want %d added, 0 updated, %d unchanged", added, updated, unchanged, readers-len(before), len(before))
	return nil
}

// exported runs `broadsheet subscribers export` and returns how often
// each address appears in it.
func exported(ctx context.Context, bin, data string) (map[string]int, error) {
	cmd := exec.CommandContext(ctx, bin, "subscribers", "export", "--data", data)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("broadsheet subscribers export: %w: %s", err, errOut.String())
	}
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	seen := map[string]int{}
	for _, row := range rows[1:] {
		seen[row[0]]++
	}
	return seen, nil
}
