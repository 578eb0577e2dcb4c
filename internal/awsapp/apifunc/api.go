// Package apifunc is the api Lambda function's handler: package awsapp's
// wiring, plus what only the api function links — the HTTP handler, the
// transactional emails (hermes) and the Lambda Invoke call that starts
// the digest function. Keeping them out of package awsapp keeps them out
// of the digest, sender and feedback bootstraps.
package apifunc

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/broadsheet-news/broadsheet/internal/api"
	"github.com/broadsheet-news/broadsheet/internal/awsapp"
	"github.com/broadsheet-news/broadsheet/internal/awsapp/awsenv"
	"github.com/broadsheet-news/broadsheet/internal/awsapp/sesmail"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
	"github.com/broadsheet-news/broadsheet/internal/render"
	"github.com/broadsheet-news/broadsheet/internal/render/transactional"
	"github.com/broadsheet-news/broadsheet/internal/secrets"
	"github.com/broadsheet-news/broadsheet/internal/settings"
)

// newTransactional and newDispatcher are the api function's own
// dependencies (see awsapp.APIDeps).
func newTransactional(site render.Site) (newsroom.Transactional, error) {
	r, err := transactional.New(site)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func newDispatcher(cfg aws.Config, digestFunction string) (newsroom.Dispatcher, error) {
	d, err := NewLambdaDispatcher(cfg, digestFunction)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// API is the api function's handler: the HTTP handler `broadsheet serve`
// runs, behind the API Gateway HTTP API adapter (payload format 2.0).
//
// The function's public URL, which every email link needs, is
// BROADSHEET_BASE_URL. The stack cannot always give it — the HTTP API's
// own URL cannot be passed to the function the API refers to — so when
// it is unset the app is built on the first request instead of at cold
// start, from https://, the domain name API Gateway reports for that
// request and its named stage, if any (StripStage).
type API struct {
	getenv func(string) string
	stdout io.Writer

	mu    sync.Mutex
	app   *awsapp.App
	proxy *httpadapter.HandlerAdapterV2
}

// NewAPI returns the api function's handler, built at once when
// BROADSHEET_BASE_URL is set.
func NewAPI(ctx context.Context, getenv func(string) string, stdout io.Writer) (*API, error) {
	a := &API{getenv: getenv, stdout: stdout}
	if getenv(settings.EnvBaseURL) == "" {
		return a, nil
	}
	if err := a.build(ctx, ""); err != nil {
		return nil, err
	}
	return a, nil
}

// App returns the app the handler runs, or nil before the first request
// when it is built then.
func (a *API) App() *awsapp.App {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.app
}

// build loads the app, with baseURL as BROADSHEET_BASE_URL when it is
// not empty. The caller holds a.mu or is the constructor.
func (a *API) build(ctx context.Context, baseURL string) error {
	getenv := a.getenv
	if baseURL != "" {
		getenv = func(k string) string {
			if k == settings.EnvBaseURL {
				return baseURL
			}
			return a.getenv(k)
		}
	}
	app, err := awsapp.LoadAPI(ctx, getenv, a.stdout, awsapp.APIDeps{
		Mailer:        sesmail.Mailer,
		Transactional: newTransactional,
		Dispatcher:    newDispatcher,
	})
	if err != nil {
		return err
	}
	// Read here, not in awsapp: only the api takes pushes.
	cfg, err := awsenv.Config(getenv)
	if err != nil {
		return fmt.Errorf("api: AWS config: %w", err)
	}
	wpSecret, err := secrets.WordPressSecret(ctx, getenv, cfg)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	h, err := api.NewHandler(app.Service, api.Options{Logger: app.Log, SiteName: app.Settings.SiteName, WordPressSecret: wpSecret})
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	a.app, a.proxy = app, httpadapter.NewV2(h)
	return nil
}

// Handle serves one HTTP API request. Errors become HTTP responses: none
// is returned, since API Gateway does not retry.
func (a *API) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ev, stage := StripStage(ev)
	proxy, err := a.handler(ctx, ev, stage)
	if err != nil {
		awsapp.NewLogger(a.getenv, a.stdout).ErrorContext(ctx, "api function cannot start", "err", err)
		return events.APIGatewayV2HTTPResponse{
			StatusCode: http.StatusServiceUnavailable,
			Headers:    map[string]string{"Content-Type": "application/json", "Retry-After": "5"},
			Body:       `{"error":"unavailable","message":"Broadsheet is starting; try again in a moment."}`,
		}, nil
	}
	res, err := proxy.ProxyWithContext(ctx, ev)
	if err != nil {
		a.App().Log.ErrorContext(ctx, "API Gateway event not served", "err", err, "path", ev.RawPath)
		return events.APIGatewayV2HTTPResponse{
			StatusCode: http.StatusBadRequest,
			Headers:    map[string]string{"Content-Type": "application/json"},
			Body:       `{"error":"invalid","message":"The request could not be read."}`,
		}, nil
	}
	return res, nil
}

// StripStage returns the request with the stage's name taken off the
// front of its path, and that prefix ("/prod"), when it came through a
// named stage: API Gateway puts the stage in rawPath then ("/prod/healthz"),
// and the routes are the same under every stage. The $default stage has
// no prefix; nor has a custom domain's API mapping, which rawPath does
// not show.
func StripStage(ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPRequest, string) {
	stage := ev.RequestContext.Stage
	if stage == "" || stage == "$default" || strings.ContainsAny(stage, "/?#") {
		return ev, ""
	}
	prefix := "/" + stage
	rest, ok := strings.CutPrefix(ev.RawPath, prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		return ev, ""
	}
	if rest == "" {
		rest = "/"
	}
	ev.RawPath = rest
	if p, ok := strings.CutPrefix(ev.RequestContext.HTTP.Path, prefix); ok && (p == "" || p[0] == '/') {
		ev.RequestContext.HTTP.Path = cmp.Or(p, "/")
	}
	return ev, prefix
}

// handler returns the adapter, building the app first if that waited for
// a request. A failed build is tried again by the next request. stage is
// the path prefix of the request's named stage, part of the public URL.
func (a *API) handler(ctx context.Context, ev events.APIGatewayV2HTTPRequest, stage string) (*httpadapter.HandlerAdapterV2, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proxy != nil {
		return a.proxy, nil
	}
	host := ev.RequestContext.DomainName
	if host == "" {
		host = ev.Headers["host"]
	}
	if host == "" || strings.ContainsAny(host, "/?#@ ") {
		return nil, fmt.Errorf("api: %s is unset and the request names no domain", settings.EnvBaseURL)
	}
	if err := a.build(ctx, "https://"+host+stage); err != nil {
		return nil, err
	}
	return a.proxy, nil
}
