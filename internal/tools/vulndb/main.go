// Command vulndb writes a Go vulnerability database in the v1 layout that
// govulncheck's -db file:///dir reads (index/db.json, index/modules.json,
// index/vulns.json, ID/<id>.json) from a folder of OSV JSON files, such as
// data/osv in the golang.org/x/vulndb module. `make vulncheck` runs it:
//
//	go run ./internal/tools/vulndb -vulns $VULNDB_MODULE/data/osv -out DIR
//
// It does what x/vulndb's own cmd/indexdb does and writes the same bytes
// for x/vulndb's data (less the .gz copies, which only an HTTP server
// needs). indexdb itself is not used: `go run` of it pulls 64 more modules
// (go-git, Google Cloud, OpenTelemetry, gRPC; about 800 MB) and took 3 min
// 21 s on a cold cache here. This needs nothing but the standard library.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"sort"
	"time"
)

func main() {
	vulns := flag.String("vulns", "", "folder of OSV JSON files (<id>.json)")
	out := flag.String("out", "", "folder to write the database to")
	flag.Parse()
	if *vulns == "" || *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	n, err := build(*vulns, *out)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("vulndb: %d entries from %s in %s\n", n, *vulns, *out)
}

// entry is the part of an OSV entry that the indexes need.
type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases"`
	Affected []struct {
		Package struct {
			Name string `json:"name"` // the module path, or "stdlib"
		} `json:"package"`
		Ranges []osvRange `json:"ranges"`
	} `json:"affected"`
}

type osvRange struct {
	Type   string     `json:"type"`
	Events []osvEvent `json:"events"`
}

type osvEvent struct {
	Introduced string `json:"introduced"`
	Fixed      string `json:"fixed"`
}

// osvTime is how the database writes times: RFC 3339 in UTC, whole seconds.
type osvTime time.Time

func (t osvTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format(time.RFC3339))
}

type moduleVuln struct {
	ID       string  `json:"id"`
	Modified osvTime `json:"modified"`
	Fixed    string  `json:"fixed,omitempty"`
}

type module struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type vuln struct {
	ID       string   `json:"id"`
	Modified osvTime  `json:"modified"`
	Aliases  []string `json:"aliases,omitempty"`
}

// build reads every *.json under src (index.json excepted, as indexdb
// does) and writes the database to dst. It returns the number of entries.
func build(src, dst string) (int, error) {
	var (
		latest  time.Time
		modules = map[string]*module{}
		vulns   []vuln
		seen    = map[string]bool{}
	)
	for _, d := range []string{"index", "ID"} {
		if err := os.MkdirAll(filepath.Join(dst, d), 0o755); err != nil {
			return 0, err
		}
	}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".json" || d.Name() == "index.json" {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if e.ID == "" {
			return fmt.Errorf("%s: no id", path)
		}
		if seen[e.ID] {
			return fmt.Errorf("%s: id %s appears twice", path, e.ID)
		}
		seen[e.ID] = true
		if e.Modified.After(latest) {
			latest = e.Modified
		}
		vulns = append(vulns, vuln{e.ID, osvTime(e.Modified), e.Aliases})
		for _, a := range e.Affected {
			m := modules[a.Package.Name]
			if m == nil {
				m = &module{Path: a.Package.Name, Vulns: []moduleVuln{}}
				modules[a.Package.Name] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{e.ID, osvTime(e.Modified), latestFixed(a.Ranges)})
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, "ID", e.ID+".json"), compact.Bytes(), 0o644)
	})
	if err != nil {
		return 0, err
	}

	mods := make([]*module, 0, len(modules))
	for _, m := range modules {
		sort.SliceStable(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	sort.Slice(vulns, func(i, j int) bool { return vulns[i].ID < vulns[j].ID })
	for name, v := range map[string]any{
		"db": struct {
			Modified osvTime `json:"modified"`
		}{osvTime(latest)},
		"modules": mods,
		"vulns":   vulns,
	} {
		b, err := json.Marshal(v)
		if err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(dst, "index", name+".json"), b, 0o644); err != nil {
			return 0, err
		}
	}
	return len(vulns), nil
}

// latestFixed is the version from which no SEMVER range is vulnerable, or
// "" if the last fix was followed by a new introduction: x/vulndb's
// osvutils.LatestFixed, which govulncheck uses to skip entries a module
// version is past.
func latestFixed(ranges []osvRange) string {
	var fixed string
	for _, r := range ranges {
		if r.Type != "SEMVER" {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed != "" && compareSemver(fixed, e.Fixed) < 0 {
				fixed = e.Fixed
			}
		}
		for _, e := range r.Events {
			if e.Introduced != "" && e.Introduced != "0" && compareSemver(fixed, e.Introduced) < 0 {
				fixed = ""
				break
			}
		}
	}
	return fixed
}
