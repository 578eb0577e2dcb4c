package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// letter is one .eml file from the outbox, decoded for reading.
type letter struct {
	File       string
	To         string
	Subject    string
	Header     mail.Header
	Text, HTML string
}

// outboxCmd lists the outbox, or shows the newest email decoded: what a
// laptop install "sent", readable without a mail client.
func outboxCmd(args []string, env environ, stdout, stderr io.Writer) error {
	var last bool
	cfg, _, err := parseConfig("outbox", args, env, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&last, "last", false, "show the newest email: its headers and its text part")
	})
	if err != nil {
		return ignoreHelp(err)
	}
	files, err := filepath.Glob(filepath.Join(cfg.Data, "outbox", "*.eml"))
	if err != nil {
		return err
	}
	sort.Strings(files) // names start with the UTC time they were written
	if len(files) == 0 {
		fmt.Fprintf(stdout, "The outbox (%s) is empty.\n", filepath.Join(cfg.Data, "outbox"))
		return nil
	}
	if last {
		l, err := readLetter(files[len(files)-1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "File: %s\n", l.File)
		for _, h := range []string{"From", "To", "Subject", "Date", "Message-Id", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post"} {
			if v := l.Header.Get(h); v != "" {
				if h == "Subject" {
					v = l.Subject
				}
				fmt.Fprintf(stdout, "%s: %s\n", h, v)
			}
		}
		fmt.Fprintf(stdout, "\n%s\n", l.Text)
		return nil
	}
	for _, f := range files {
		l, err := readLetter(f)
		if err != nil {
			fmt.Fprintf(stdout, "%s\t(unreadable: %v)\n", filepath.Base(f), err)
			continue
		}
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", filepath.Base(f), l.To, l.Subject)
	}
	return nil
}

// readLetter parses an .eml file and decodes its subject and text and
// HTML parts.
func readLetter(path string) (*letter, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return nil, fmt.Errorf("%s: subject: %w", path, err)
	}
	to, err := mail.ParseAddress(msg.Header.Get("To"))
	if err != nil {
		return nil, fmt.Errorf("%s: to: %w", path, err)
	}
	l := &letter{File: path, To: to.Address, Subject: subject, Header: msg.Header}
	if err := l.readPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

func (l *letter) readPart(contentType, encoding string, body io.Reader) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return fmt.Errorf("multipart: %w", err)
			}
			if err := l.readPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	if strings.EqualFold(encoding, "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("read part: %w", err)
	}
	switch mt {
	case "text/plain":
		l.Text = string(b)
	case "text/html":
		l.HTML = string(b)
	}
	return nil
}
