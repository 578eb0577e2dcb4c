package testenv

import "testing"

// recorder is a testing.TB that notes how Missing ended it.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper()      {}
func (r *recorder) Fatal(...any) { r.failed = true }
func (r *recorder) Skip(...any)  { r.skipped = true }

func TestMissing(t *testing.T) {
	for _, ci := range []string{"", "1"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		Missing(r, "php is not installed")
		if want := ci != ""; r.failed != want || r.skipped == want {
			t.Errorf("CI=%q: failed %v, skipped %v; want failed only in CI, skipped only outside", ci, r.failed, r.skipped)
		}
	}
}
