// Package lazyre holds package-level regular expressions compiled on first
// use instead of at process start: every pgbr process (an archive-push
// PostgreSQL starts per WAL segment, say) would otherwise compile all of
// them, most for commands it does not run.
package lazyre

import (
	"regexp"
	"sync"
)

// Regexp is a regular expression compiled when first used; an invalid
// expression panics then, as regexp.MustCompile would at start.
type Regexp struct {
	expr string
	once sync.Once
	re   *regexp.Regexp
}

// New returns expr, to be compiled on first use.
func New(expr string) *Regexp { return &Regexp{expr: expr} }

// Regexp returns the compiled expression.
func (r *Regexp) Regexp() *regexp.Regexp {
	r.once.Do(func() { r.re = regexp.MustCompile(r.expr) })
	return r.re
}

// MatchString is regexp.Regexp.MatchString.
func (r *Regexp) MatchString(s string) bool { return r.Regexp().MatchString(s) }

// FindStringSubmatch is regexp.Regexp.FindStringSubmatch.
func (r *Regexp) FindStringSubmatch(s string) []string { return r.Regexp().FindStringSubmatch(s) }

// ReplaceAllString is regexp.Regexp.ReplaceAllString.
func (r *Regexp) ReplaceAllString(src, repl string) string {
	return r.Regexp().ReplaceAllString(src, repl)
}

// String returns the expression.
func (r *Regexp) String() string { return r.expr }
