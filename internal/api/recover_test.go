package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/newsroom"
)

// TestRecoverPanic shows the last line of defence: a service with no store
// panics on a sign-up, and the client still gets a clean 500 with no
// internal detail, the panic is logged, and the server keeps serving.
func TestRecoverPanic(t *testing.T) {
	var logs bytes.Buffer
	svc := newsroom.New(nil, nil, nil, nil, nil, nil, nil, newsroom.Config{})
	h, err := NewHandler(svc, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, accept := range []string{"application/json", "text/html"} {
		rq, _ := http.NewRequest("POST", srv.URL+"/subscribe", strings.NewReader(`{"email":"a@example.com"}`))
		rq.Header.Set("Content-Type", "application/json")
		rq.Header.Set("Accept", accept)
		res, err := http.DefaultClient.Do(rq)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code, Message string }
		}
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != 500 || err != nil || body.Error.Code != "internal" || body.Error.Message != "Internal error." {
			t.Errorf("got %d %+v (%v), want 500 internal", res.StatusCode, body, err)
		}
	}
	if !strings.Contains(logs.String(), "http handler panic") {
		t.Errorf("panic not logged: %s", logs.String())
	}
	res, err := http.Get(srv.URL + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("server down after a panic: %v", err)
	}
	res.Body.Close()
}

func TestClientIP(t *testing.T) {
	for _, tc := range []struct {
		remote, xff string
		trust       bool
		want, key   string
	}{
		{"192.0.2.1:1234", "", false, "192.0.2.1", "192.0.2.1"},
		{"192.0.2.1:1234", "203.0.113.5", false, "192.0.2.1", "192.0.2.1"},
		{"192.0.2.1:1234", "203.0.113.5, 198.51.100.2", true, "198.51.100.2", "198.51.100.2"},
		{"192.0.2.1:1234", "junk", true, "192.0.2.1", "192.0.2.1"},
		{"pipe", "", false, "", ""},
		{"[2001:db8:1:2:3:4:5:6]:443", "", false, "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.9]:1", "", false, "192.0.2.9", "192.0.2.9"},
	} {
		h := &handler{trustProxy: tc.trust}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		got := h.clientIP(r)
		if got != tc.want || limitKey(got) != tc.key {
			t.Errorf("%s %q trust=%v: got %q key %q, want %q key %q", tc.remote, tc.xff, tc.trust, got, limitKey(got), tc.want, tc.key)
		}
	}
}
