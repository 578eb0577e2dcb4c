package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/want is what x/vulndb's cmd/indexdb (at the Makefile's
// VULNDB_VERSION) wrote for testdata/osv, less its .gz copies.
func TestBuildWritesWhatIndexdbWrites(t *testing.T) {
	out := t.TempDir()
	n, err := build("testdata/osv", out)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("build counted %d entries, want 4", n)
	}
	want, got := files(t, "testdata/want"), files(t, out)
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s not written", name)
		case g != w:
			t.Errorf("%s:\n got %s\nwant %s", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s written, but indexdb writes no such file", name)
		}
	}
}

func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		m[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBuildRefuses(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"an id twice": {"a.json": `{"id":"GO-1"}`, "b.json": `{"id":"GO-1"}`},
		"bad JSON":    {"GO-1.json": `{"id":`},
		"no id":       {"GO-1.json": `{"affected":[]}`},
		"a bad time":  {"GO-1.json": `{"id":"GO-1","modified":"yesterday"}`},
	} {
		t.Run(name, func(t *testing.T) {
			src := t.TempDir()
			for f, body := range files {
				if err := os.WriteFile(filepath.Join(src, f), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := build(src, t.TempDir()); err == nil {
				t.Error("build succeeded")
			}
		})
	}
}

func TestCompareSemver(t *testing.T) {
	// Each version is below the next one.
	ascending := []string{
		"", "v1.0.0", "1.0.0.0", // invalid ones are below everything
		"0.0.0-20250721152936-fe86ceb2c3fa",
		"0.0.0-20260626085133-7cb96ac80a6d",
		"0.0.1",
		"1.0.0-0",
		"1.0.0-alpha",
		"1.0.0-alpha.1",
		"1.0.0-alpha.beta",
		"1.0.0-rc.2",
		"1.0.0-rc.10",
		"1.0.0",
		"1.9.0",
		"1.10.0-0",
		"1.10.0",
		"1.26.9",
		"10.0.0",
	}
	for i, a := range ascending {
		for j, b := range ascending {
			want := 0
			switch {
			case i < 3 && j < 3:
				want = 0 // invalid versions are all equal
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := compareSemver(a, b); got != want {
				t.Errorf("compareSemver(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
	for _, eq := range [][2]string{
		{"1", "1.0.0"}, {"1.2", "1.2.0"}, {"1.2.3+build", "1.2.3"}, {"1.2.3-rc.1+a", "1.2.3-rc.1+b"},
	} {
		if c := compareSemver(eq[0], eq[1]); c != 0 {
			t.Errorf("compareSemver(%q, %q) = %d, want 0", eq[0], eq[1], c)
		}
	}
	for _, bad := range []string{"01.0.0", "1.0.0-01", "1.0.0-", "1.0.0+", "1.0.0-a..b", "1.0-rc.1", "1.0+b", "1.0.0.0", "1.0.0-ü", "x"} {
		if _, ok := parseSemver(bad); ok {
			t.Errorf("parseSemver(%q) accepted it", bad)
		}
	}
}

func TestLatestFixed(t *testing.T) {
	r := func(events ...string) osvRange {
		var o osvRange
		o.Type = "SEMVER"
		for _, e := range events {
			if v, ok := strings.CutPrefix(e, "f "); ok {
				o.Events = append(o.Events, osvEvent{Fixed: v})
			} else {
				o.Events = append(o.Events, osvEvent{Introduced: strings.TrimPrefix(e, "i ")})
			}
		}
		return o
	}
	for _, c := range []struct {
		ranges []osvRange
		want   string
	}{
		{nil, ""},
		{[]osvRange{r("i 0")}, ""},
		{[]osvRange{r("i 0", "f 1.2.0")}, "1.2.0"},
		{[]osvRange{r("i 0", "f 1.25.9", "i 1.26.0-0", "f 1.26.9")}, "1.26.9"},
		{[]osvRange{r("i 0", "f 1.2.0", "i 1.5.0")}, ""},
		{[]osvRange{r("i 0", "f 1.0.0-rc.10", "i 1.0.0-rc.2")}, "1.0.0-rc.10"},
		{[]osvRange{r("i 0", "f 1.2.0"), r("i 2.0.0", "f 2.1.0")}, "2.1.0"},
		{[]osvRange{r("i 0", "f 1.2.0"), {Type: "ECOSYSTEM"}}, "1.2.0"},
	} {
		if got := latestFixed(c.ranges); got != c.want {
			t.Errorf("latestFixed(%+v) = %q, want %q", c.ranges, got, c.want)
		}
	}
}
