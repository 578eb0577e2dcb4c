package wordpress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits of the client.
const (
	// PerPage is the page size asked for: the REST API's maximum.
	PerPage = 100
	// MaxResponseBytes bounds one page: 100 posts with their excerpts and
	// embeds are a few hundred KB; a reply many times that is not a page
	// of posts and is not read to its end.
	MaxResponseBytes = 8 << 20
	// MaxPages bounds one run's pages per query: 100 pages are 10,000
	// posts, far more than a newspaper publishes between two runs. The
	// rest waits for the next run, from the checkpoint.
	MaxPages = 100
	// requestTimeout bounds one request.
	requestTimeout = 30 * time.Second
)

// Client reads posts from a WordPress site's REST API, anonymously: it
// sees published posts only, which is what readers may be sent.
type Client struct {
	base *url.URL
	http *http.Client
}

// NewClient returns a client for the site at siteURL (its home, such as
// https://news.example.com; the client adds /wp-json/wp/v2/posts). hc nil
// means a client with a 30 s timeout.
func NewClient(siteURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(siteURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("wordpress: site URL %q must be an absolute http(s) URL", siteURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	if hc == nil {
		hc = &http.Client{Timeout: requestTimeout}
	}
	return &Client{base: u, http: hc}, nil
}

// Site returns the site's URL as the client uses it.
func (c *Client) Site() string { return c.base.String() }

// Query selects posts: published after After or modified after
// ModifiedAfter (site-local times as the API writes them, exclusive),
// oldest first by the same date, so that posts published while a run
// pages through are on a later page rather than shifting the pages read.
type Query struct {
	After         string
	ModifiedAfter string
}

// Page is one page of posts and how many pages the query has.
type Page struct {
	Posts      []Post
	TotalPages int
}

// ErrResponse is returned, wrapped, for a reply that is not a page of
// posts: a status other than 200, a body over MaxResponseBytes, or one
// that is not JSON.
var ErrResponse = errors.New("wordpress: unusable response")

// Posts returns page n (from 1) of q's posts.
func (c *Client) Posts(ctx context.Context, q Query, n int) (*Page, error) {
	v := url.Values{}
	v.Set("per_page", strconv.Itoa(PerPage))
	v.Set("page", strconv.Itoa(n))
	v.Set("order", "asc")
	v.Set("_embed", Embed)
	v.Set("_fields", Fields)
	v.Set("orderby", "date")
	if q.After != "" {
		v.Set("after", q.After)
	}
	if q.ModifiedAfter != "" {
		v.Set("modified_after", q.ModifiedAfter)
		v.Set("orderby", "modified")
	}
	u := *c.base
	u.Path += "/wp-json/wp/v2/posts"
	u.RawQuery = v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("wordpress: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("wordpress: GET %s: %w", u.Path, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // lets the connection be reused
		return nil, fmt.Errorf("%w: GET %s page %d answered %s", ErrResponse, u.Path, n, res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("wordpress: read %s page %d: %w", u.Path, n, err)
	}
	if len(body) > MaxResponseBytes {
		return nil, fmt.Errorf("%w: %s page %d is over %d bytes", ErrResponse, u.Path, n, MaxResponseBytes)
	}
	posts, err := decodePosts(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s page %d: %v", ErrResponse, u.Path, n, err)
	}
	total, err := strconv.Atoi(res.Header.Get("X-WP-TotalPages"))
	if err != nil || total < 0 {
		// A cache in front of the site may drop the header: a full
		// page then says there may be another.
		total = n
		if len(posts) == PerPage {
			total = n + 1
		}
	}
	return &Page{Posts: posts, TotalPages: total}, nil
}
