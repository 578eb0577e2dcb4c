package apifunc

import (
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// TestStripStage: a request through a named stage has the stage in its
// rawPath; the routes are served the same under it, and the public URL
// keeps the prefix. The $default stage and custom-domain mappings (which
// rawPath does not show) are left alone.
func TestStripStage(t *testing.T) {
	for _, tc := range []struct {
		stage, rawPath     string
		wantPath, wantBase string
	}{
		{"prod", "/prod/healthz", "/healthz", "/prod"},
		{"prod", "/prod", "/", "/prod"},
		{"prod", "/prod/", "/", "/prod"},
		{"api", "/api/api/articles", "/api/articles", "/api"},
		{"prod", "/production/healthz", "/production/healthz", ""},
		{"prod", "/healthz", "/healthz", ""},
		{"$default", "/healthz", "/healthz", ""},
		{"", "/prod/healthz", "/prod/healthz", ""},
	} {
		ev := events.APIGatewayV2HTTPRequest{RawPath: tc.rawPath, RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage: tc.stage, HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Path: tc.rawPath},
		}}
		got, base := StripStage(ev)
		if got.RawPath != tc.wantPath || got.RequestContext.HTTP.Path != tc.wantPath || base != tc.wantBase {
			t.Errorf("stage %q, rawPath %q: path %q (context %q), prefix %q; want %q, %q",
				tc.stage, tc.rawPath, got.RawPath, got.RequestContext.HTTP.Path, base, tc.wantPath, tc.wantBase)
		}
	}
}
