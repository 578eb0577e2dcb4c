// Package wordpress connects Broadsheet to a WordPress site whose feeds
// are switched off: it pulls posts from the REST API (/wp-json/wp/v2/posts)
// and checks the posts the site pushes to POST /hooks/wordpress, signed
// by the plugin in infra/wordpress. Either way a post becomes a
// newsroom.ArticleInput and goes through newsroom.Service.IngestArticle,
// the same path for both, so a post seen twice is one article.
package wordpress

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
	"github.com/broadsheet-news/broadsheet/internal/newsroom"
)

// Post is a post as the REST API gives it in the view context, with the
// fields Broadsheet reads (see Fields) and the embedded author, terms and
// featured image (see Embed).
type Post struct {
	ID          int64    `json:"id"`
	Date        string   `json:"date"`         // site-local, "2026-11-26T07:30:00"
	DateGMT     string   `json:"date_gmt"`     // UTC, no zone
	Modified    string   `json:"modified"`     // site-local
	ModifiedGMT string   `json:"modified_gmt"` // UTC, no zone
	Link        string   `json:"link"`         // the permalink
	Status      string   `json:"status"`
	Type        string   `json:"type"`
	Title       rendered `json:"title"`
	Excerpt     rendered `json:"excerpt"`
	Categories  []int64  `json:"categories"`
	Embedded    embedded `json:"_embedded"`
}

type rendered struct {
	Rendered string `json:"rendered"`
}

// embedded is a post's _embedded object. Each relation is a list; wp:term
// is one list per taxonomy. A resource WordPress would not embed (a
// private author, a deleted image) comes as an error object, which
// decodes here as one without a name or URL and is ignored.
type embedded struct {
	Author []struct {
		Name string `json:"name"`
	} `json:"author"`
	Terms [][]term `json:"wp:term"`
	Media []struct {
		SourceURL string `json:"source_url"`
	} `json:"wp:featuredmedia"`
}

type term struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Slug     string `json:"slug"`
	Taxonomy string `json:"taxonomy"`
}

// Fields is the _fields list Broadsheet asks for: what Post reads, plus
// _links and _embedded, without which WordPress drops the embeds.
const Fields = "id,date,date_gmt,modified,modified_gmt,link,status,type,title,excerpt,categories,_links,_embedded"

// Embed is the _embed list: the relations Post reads.
const Embed = "author,wp:term,wp:featuredmedia"

// wpTime is the layout of the REST API's dates, which carry no zone.
const wpTime = "2006-01-02T15:04:05"

// Article returns the post as an article input for the newsroom, or
// EINVALID when it lacks what an article needs. Its sections come from
// its categories (see Sections); its Source is the post's shortlink on
// the permalink's host, https://host/?p=ID, which stays when the slug
// changes. Title and excerpt stay HTML: the newsroom decodes the title's
// entities and sanitises the excerpt.
func (p *Post) Article(known []newsletter.Section) (newsroom.ArticleInput, error) {
	if p.ID <= 0 {
		return newsroom.ArticleInput{}, newsletter.Errorf(newsletter.EINVALID, "Post has no ID.")
	}
	link, err := url.Parse(p.Link)
	if err != nil || (link.Scheme != "http" && link.Scheme != "https") || link.Host == "" {
		return newsroom.ArticleInput{}, newsletter.Errorf(newsletter.EINVALID, "Post %d has no absolute link.", p.ID)
	}
	published, err := parseGMT(p.DateGMT)
	if err != nil {
		return newsroom.ArticleInput{}, newsletter.Errorf(newsletter.EINVALID, "Post %d has no valid date_gmt.", p.ID)
	}
	modified, err := parseGMT(p.ModifiedGMT)
	if err != nil || modified.Before(published) {
		modified = published
	}
	in := newsroom.ArticleInput{
		URL:         p.Link,
		Source:      link.Scheme + "://" + link.Host + "/?p=" + strconv.FormatInt(p.ID, 10),
		Title:       p.Title.Rendered,
		Summary:     trimMore(p.Excerpt.Rendered),
		Sections:    p.Sections(known),
		PublishedAt: published,
		RevisedAt:   modified,
	}
	if len(p.Embedded.Author) > 0 {
		in.Author = newsletter.HTMLText(p.Embedded.Author[0].Name, false)
	}
	for _, m := range p.Embedded.Media {
		if m.SourceURL != "" {
			in.ImageURL = m.SourceURL
			break
		}
	}
	return in, nil
}

// Sections maps the post's categories to Broadsheet's sections. A
// category is a section when its slug, or its name made a slug, is a
// section's slug, or its name is a section's name ("Arts & Culture" and
// "arts-culture" are the same section). Categories with no section, such
// as WordPress's "Uncategorized", are left out; a post with none of the
// sections goes to the first section, so that readers who chose sections
// still hear of it. With no sections configured the categories' slugs
// are the sections.
func (p *Post) Sections(known []newsletter.Section) []string {
	var out []string
	add := func(slug string) {
		for _, s := range out {
			if s == slug {
				return
			}
		}
		out = append(out, slug)
	}
	for _, list := range p.Embedded.Terms {
		for _, t := range list {
			if t.Taxonomy != "category" {
				continue
			}
			if len(known) == 0 {
				if s := newsletter.Slugify(t.Slug); s != "" && s != "uncategorized" {
					add(s)
				}
				continue
			}
			if s, ok := section(known, t); ok {
				add(s)
			}
		}
	}
	if len(out) == 0 && len(known) > 0 {
		out = append(out, known[0].Slug)
	}
	if len(out) > newsletter.MaxSections {
		out = out[:newsletter.MaxSections]
	}
	return out
}

// section returns the section of known that category t is.
func section(known []newsletter.Section, t term) (string, bool) {
	name := newsletter.Slugify(newsletter.HTMLText(t.Name, false))
	slug := newsletter.Slugify(t.Slug)
	for _, s := range known {
		if s.Slug == slug || s.Slug == name || newsletter.Slugify(s.Name) == name {
			return s.Slug, true
		}
	}
	return "", false
}

// trimMore drops the "[…]" WordPress appends to a generated excerpt,
// which leads nowhere in an email.
func trimMore(excerpt string) string {
	for _, more := range []string{" [&hellip;]", "[&hellip;]", " [&#8230;]", "[&#8230;]", " […]"} {
		if i := strings.LastIndex(excerpt, more); i >= 0 && strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(excerpt[i+len(more):]), "</p>")) == "" {
			return excerpt[:i] + excerpt[i+len(more):]
		}
	}
	return excerpt
}

// parseGMT reads one of the REST API's _gmt dates.
func parseGMT(s string) (time.Time, error) {
	return time.ParseInLocation(wpTime, s, time.UTC)
}

// decodePosts decodes a page of posts, saying what was wrong without
// repeating the body.
func decodePosts(body []byte) ([]Post, error) {
	var posts []Post
	if err := json.Unmarshal(body, &posts); err != nil {
		return nil, jsonProblem(err)
	}
	return posts, nil
}
