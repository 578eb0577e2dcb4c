package api_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/testenv"
)

// TestWordPressPluginUnderPHP runs the plugin's own signing and sending
// code (infra/wordpress/broadsheet-push.php) under php against the real
// handler: what it sends is what POST /hooks/wordpress takes.
func TestWordPressPluginUnderPHP(t *testing.T) {
	php, err := exec.LookPath("php")
	if err != nil {
		testenv.Missing(t, "php is not installed: apt-get install -y php-cli (.ci/run does) to run the plugin's test")
	}
	e := MustEnv(t, withHook)
	// The plugin stamps requests with the real clock.
	e.clock.Add(time.Since(e.clock.Now()))
	post := filepath.Join(t.TempDir(), "post.json")
	if err := os.WriteFile(post, e.wpPost(nil), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(php, "testdata/plugin-harness.php", "../../infra/wordpress/broadsheet-push.php", post)
	cmd.Env = append(os.Environ(), "BROADSHEET_PUSH_URL="+e.srv.URL+"/hooks/wordpress", "BROADSHEET_PUSH_SECRET="+string(hookSecret))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("php: %v\n%s%s", err, out, stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	// Publishing fires both hooks but makes one push; the update makes a
	// second, which changes nothing (same revision).
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `200 {"status":"created"`) || !strings.HasPrefix(lines[1], `200 {"status":"unchanged"`) {
		t.Fatalf("plugin's requests: got\n%s%s\nwant one created, then one unchanged", out, stderr.String())
	}
	a, err := e.store.Article(t.Context(), strings.Split(strings.Split(lines[0], `"article":"`)[1], `"`)[0])
	if err != nil {
		t.Fatalf("pushed article: %v", err)
	}
	if a.Source != "https://ledger.example.com/?p=4101" || !strings.HasPrefix(a.Title, "Assembly passes the 2027 budget") {
		t.Errorf("pushed article: got %+v", a)
	}
	e.noServerErrors()
}
