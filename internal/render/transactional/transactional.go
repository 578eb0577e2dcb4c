// Package transactional builds Broadsheet's transactional emails — the
// double opt-in confirmation, the welcome and the goodbye — with hermes.
//
// It is a package of its own, apart from package render, so that only the
// binaries that send these emails link hermes and what it pulls in (sprig,
// goquery, blackfriday, premailer): about 1.2 MB of a Lambda bootstrap that
// executes templates, 0.4 MB of one that merely imports hermes.
package transactional

import (
	"fmt"
	"strings"

	"github.com/matcornic/hermes/v2"

	"github.com/broadsheet-news/broadsheet/internal/render"
)

// Renderer builds the transactional emails of one site. It is safe for
// concurrent use.
type Renderer struct {
	site render.Site
}

// New checks the site as render.New does (see render.Site.Normalize) and
// returns its renderer.
func New(site render.Site) (*Renderer, error) {
	site, err := site.Normalize()
	if err != nil {
		return nil, fmt.Errorf("transactional: %w", err)
	}
	return &Renderer{site: site}, nil
}

// buttonColor is the digest's accent colour, so that the emails match.
const buttonColor = "#b3261e"

// Confirmation builds the double opt-in email, whose button leads to
// confirmURL.
func (r *Renderer) Confirmation(confirmURL string) (*render.Mail, error) {
	name := r.site.Name
	return r.mail("Confirm your subscription to "+name, hermes.Body{
		Title: "Confirm your subscription",
		Intros: []string{
			"Someone, hopefully you, asked to receive " + name + " by email at this address.",
		},
		Actions: []hermes.Action{{
			Instructions: "To start receiving the digest, please confirm your address:",
			Button:       hermes.Button{Text: "Confirm my subscription", Link: confirmURL, Color: buttonColor},
		}},
		Outros: []string{
			"If you did not ask for this, ignore this email: you will not be subscribed and we will not write again.",
		},
		Signature: "Thank you",
	})
}

// Welcome builds the email sent once a reader confirms, with their
// preferences and unsubscribe links.
func (r *Renderer) Welcome(preferencesURL, unsubscribeURL string) (*render.Mail, error) {
	name := r.site.Name
	return r.mail("Welcome to "+name, hermes.Body{
		Title: "You are subscribed",
		Intros: []string{
			"Thank you for confirming your address. Your first digest from " + name + " will arrive in your inbox soon.",
		},
		Actions: []hermes.Action{{
			Instructions: "Choose your sections, how often you hear from us and how the digest looks, at any time:",
			Button:       hermes.Button{Text: "Manage my preferences", Link: preferencesURL, Color: buttonColor},
		}},
		Outros: []string{
			"Changed your mind? Unsubscribe with one click: " + unsubscribeURL,
		},
		Signature: "Welcome aboard",
	})
}

// Goodbye builds the email that confirms an unsubscribe, with a link to
// subscribe again.
func (r *Renderer) Goodbye(resubscribeURL string) (*render.Mail, error) {
	name := r.site.Name
	return r.mail("You have unsubscribed from "+name, hermes.Body{
		Title: "You are unsubscribed",
		Intros: []string{
			"You will not receive any more digests from " + name + ". This email only confirms it; we will not write again.",
		},
		Actions: []hermes.Action{{
			Instructions: "Unsubscribed by mistake?",
			Button:       hermes.Button{Text: "Subscribe again", Link: resubscribeURL, Color: buttonColor},
		}},
		Signature: "Thank you for reading",
	})
}

// mail renders body with hermes' default theme.
//
// hermes v2.1.0 returns its errors, but calls into code that can panic:
// goquery panics when premailer's HTML does not parse, cascadia and sprig
// panic on bad input, html2text panics on a table outside PrettyTables. A
// panic in an email must not take a Lambda down, so it is recovered here and
// becomes an error. (premailer parses the theme's fixed stylesheet in a
// goroutine of its own, which no recover here can reach; that stylesheet does
// not depend on any input, and the golden tests exercise it.)
func (r *Renderer) mail(subject string, body hermes.Body) (m *render.Mail, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("render %q: hermes panicked: %v", subject, p)
		}
	}()
	// A new Hermes per call: its Generate methods write defaults into the
	// receiver, so a shared one would race.
	h := hermes.Hermes{
		Theme: new(hermes.Default),
		Product: hermes.Product{
			Name:      r.site.Name,
			Link:      r.site.HomeURL,
			Copyright: r.footer(),
		},
	}
	email := hermes.Email{Body: body}
	html, err := h.GenerateHTML(email)
	if err != nil {
		return nil, fmt.Errorf("render %q HTML: %w", subject, err)
	}
	text, err := h.GeneratePlainText(email)
	if err != nil {
		return nil, fmt.Errorf("render %q text: %w", subject, err)
	}
	// The theme puts Copyright (our footer, with the postal address) at the
	// end of both parts.
	return &render.Mail{Subject: subject, HTML: []byte(html), Text: []byte(strings.TrimSpace(text) + "\n")}, nil
}

// footer is the line at the foot of every transactional email: the site
// and the publisher's postal address.
func (r *Renderer) footer() string {
	if r.site.PostalAddress == "" {
		return r.site.Name
	}
	return r.site.Name + " · " + r.site.PostalAddress
}
