// Package templates holds Broadsheet's templates, embedded in the binary:
// email/ for the digest (HTML and plain text) and pages/ for the web pages
// readers and editors see.
package templates

import "embed"

// FS is the embedded template tree.
//
//go:embed email pages
var FS embed.FS
