package feedbackfunc_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/awsapp/feedbackfunc"
)

// TestLoad: the handler is built from the environment alone, with no AWS
// call, and a missing setting is named.
func TestLoad(t *testing.T) {
	env := map[string]string{
		"BROADSHEET_TABLE": "broadsheet", "AWS_REGION": "eu-west-1",
		"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:1", // nothing listens: nothing may be called
	}
	getenv := func(k string) string { return env[k] }
	h, err := feedbackfunc.Load(context.Background(), getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if h.Log == nil || h.Feedback == nil || h.Feedback.Logger != h.Log {
		t.Errorf("handler %+v: want a logger and a processor that logs to it", h)
	}
	for _, missing := range []string{"BROADSHEET_TABLE", "AWS_REGION", "AWS_ACCESS_KEY_ID"} {
		v := env[missing]
		delete(env, missing)
		if _, err := feedbackfunc.Load(context.Background(), getenv, io.Discard); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("without %s: %v, want an error naming it", missing, err)
		}
		env[missing] = v
	}
}
