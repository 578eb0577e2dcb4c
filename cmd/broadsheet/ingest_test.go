package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/wordpress/wptest"
)

func TestIngestCommand(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	site := wptest.New(t, wptest.Load(t, "../../internal/wordpress/testdata/posts.json")...)

	out, err := runCLI(t, nil, "ingest", "--data", data, "--site", site.URL)
	if err != nil || !strings.Contains(out, "3 new, 0 updated") {
		t.Fatalf("first ingest: %q, %v; want 3 new", out, err)
	}
	// The checkpoint survived the process: a second run finds nothing new.
	out, err = runCLI(t, nil, "ingest", "--data", data, "--site", site.URL)
	if err != nil || !strings.Contains(out, "0 new, 0 updated") {
		t.Fatalf("second ingest: %q, %v; want nothing new", out, err)
	}
	site.FailNext(http.StatusInternalServerError, []byte("oops"))
	if out, err = runCLI(t, nil, "ingest", "--data", data, "--site", site.URL); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("ingest from a failing site: %q, %v; want an error naming the 500", out, err)
	}
	if _, err := runCLI(t, nil, "ingest", "--data", data); err == nil || !strings.Contains(err.Error(), "--site") {
		t.Fatalf("ingest without a site: %v; want an error naming --site", err)
	}
	if _, err := runCLI(t, nil, "ingest", "--data", data, "--site", "ftp://x"); err == nil {
		t.Fatal("ingest from an ftp URL: want an error")
	}
}
