// Package config is pgBackRest-compatible configuration: command line,
// PGBACKREST_* environment and pgbackrest.conf (plus conf.d) parsed into one
// resolved set of options, driven by the single option table in table.go.
//
// The rules follow pgBackRest 2.45: precedence command line > environment >
// config file ([stanza:command] > [stanza] > [global:command] > [global]),
// indexed option groups repo1..256 and pg1..256, deprecated aliases, negation
// (--no-x) and reset (--reset-x), per-command validity, defaults, allowed
// values, ranges, dependencies and required options.
package config

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// Source tells where an option value came from.
type Source int

const (
	SourceDefault Source = iota // the table default (or unset)
	SourceConfig                // a configuration file
	SourceEnv                   // a PGBACKREST_* environment variable
	SourceParam                 // the command line
)

func (s Source) String() string {
	switch s {
	case SourceConfig:
		return "config"
	case SourceEnv:
		return "env"
	case SourceParam:
		return "param"
	}
	return "default"
}

// optVal is one resolved option value (one index of a group option).
type optVal struct {
	opt    *optDef
	idx    int // 0 for options outside a group
	set    bool
	src    Source
	negate bool // --no-x / x=n
	reset  bool // --reset-x
	b      bool
	i      int64 // int, size (bytes), time (milliseconds)
	s      string
	list   []string
	hash   [][2]string
	disp   string // value as given
}

// Config is the resolved configuration of one command invocation.
type Config struct {
	command  string
	role     string
	params   []string
	vals     map[string]*optVal // by full indexed name
	keys     map[string][]int   // "repo"/"pg" → keys in use
	warnings []string
	cliArgs  []cliArg
	help     bool
}

type cliArg struct {
	name   string // full normalised name
	value  string
	hasVal bool
	negate bool
	reset  bool
	redact bool
}

// Commands returns the valid command names (pgBackRest 2.45), including the
// internal ones.
func Commands() []string { return append([]string(nil), commandNames...) }

// Command returns the command name ("backup", "archive-push", "help", "version", ...).
func (c *Config) Command() string { return c.command }

// Role returns the command role: "main" (default), "async", "local" or "remote".
func (c *Config) Role() string {
	if c.role == "" {
		return roleMain
	}
	return c.role
}

// Params returns the positional parameters after the command.
func (c *Config) Params() []string { return append([]string(nil), c.params...) }

// Warnings returns the warnings produced while loading, for the caller to log.
func (c *Config) Warnings() []string { return append([]string(nil), c.warnings...) }

func (c *Config) addWarning(format string, args ...any) {
	c.warnings = append(c.warnings, sprintf(format, args...))
}

// StringByName is String for an option name given at run time ("repo2-path",
// e.g. from a loop over names); found is false for an unknown name.
func (c *Config) StringByName(name string) (value string, found bool) {
	if _, ok := c.lookup(name); !ok {
		return "", false
	}
	return c.String(Opt{name: name}), true
}

// lookup returns the resolved value for a full name, or a default value built
// from the table when the option has no resolved value (unused group index,
// option not valid for the command). ok is false for unknown names.
func (c *Config) lookup(name string) (*optVal, bool) {
	if v, ok := c.vals[name]; ok {
		return v, true
	}
	o, idx, _, _, err := parseName(name, false)
	if err != nil || o == nil {
		return nil, false
	}
	full := fullName(o, idx)
	if v, ok := c.vals[full]; ok {
		return v, true
	}
	v := &optVal{opt: o, idx: idx}
	if d, ok := o.defaultFor(c.command); ok {
		if err := convertValue(v, []string{d}, nil, c.command); err == nil {
			v.set = true
		}
	}
	v.src = SourceDefault
	return v, true
}

// String returns the value as a string: booleans "y"/"n", lists and hashes
// joined with ':' (hash entries as key=value). "" when unset or unknown.
func (c *Config) String(o Opt) string {
	v, ok := c.lookup(o.name)
	if !ok || !v.set {
		return ""
	}
	switch v.opt.typ {
	case tBool:
		if v.s == "prefer" {
			return "prefer"
		}
		if v.b {
			return "y"
		}
		return "n"
	case tInt:
		return strconv.FormatInt(v.i, 10)
	case tList:
		return strings.Join(v.list, ":")
	case tHash:
		parts := make([]string, len(v.hash))
		for i, kv := range v.hash {
			parts[i] = kv[0] + "=" + kv[1]
		}
		return strings.Join(parts, ":")
	case tString, tPath, tEnum:
		return v.s
	}
	return v.disp
}

// Bool returns a boolean option (false when unset).
func (c *Config) Bool(o Opt) bool {
	v, ok := c.lookup(o.name)
	if !ok || !v.set || v.opt.typ != tBool {
		return false
	}
	return v.b
}

// Int returns an integer option (size options in bytes, time options in
// whole seconds); 0 when unset.
func (c *Config) Int(o Opt) int64 {
	v, ok := c.lookup(o.name)
	if !ok || !v.set {
		return 0
	}
	switch v.opt.typ {
	case tInt, tSize:
		return v.i
	case tTime:
		return v.i / 1000
	}
	return 0
}

// Size returns a size option in bytes (integers are returned as is).
func (c *Config) Size(o Opt) int64 {
	v, ok := c.lookup(o.name)
	if !ok || !v.set {
		return 0
	}
	switch v.opt.typ {
	case tInt, tSize:
		return v.i
	}
	return 0
}

// Duration returns a time option (seconds with decimals in 2.45).
func (c *Config) Duration(o Opt) time.Duration {
	v, ok := c.lookup(o.name)
	if !ok || !v.set {
		return 0
	}
	switch v.opt.typ {
	case tTime:
		return time.Duration(v.i) * time.Millisecond
	case tInt:
		return time.Duration(v.i) * time.Second
	}
	return 0
}

// List returns a list option's values (a single value for other types).
func (c *Config) List(o Opt) []string {
	v, ok := c.lookup(o.name)
	if !ok || !v.set {
		return nil
	}
	switch v.opt.typ {
	case tList:
		return append([]string(nil), v.list...)
	case tHash:
		out := make([]string, len(v.hash))
		for i, kv := range v.hash {
			out[i] = kv[0] + "=" + kv[1]
		}
		return out
	}
	return []string{c.String(o)}
}

// Hash returns a hash option's key=value pairs in the order given.
func (c *Config) Hash(o Opt) [][2]string {
	v, ok := c.lookup(o.name)
	if !ok || !v.set || v.opt.typ != tHash {
		return nil
	}
	return append([][2]string(nil), v.hash...)
}

// IsSet reports whether the option has a value from a source other than the
// default (command line, environment or config file). A negated boolean
// (--no-x, x=n) is set.
func (c *Config) IsSet(o Opt) bool {
	v, ok := c.lookup(o.name)
	return ok && v.src != SourceDefault && (v.set || v.negate)
}

// Has reports whether the option has any value, default included.
func (c *Config) Has(o Opt) bool {
	v, ok := c.lookup(o.name)
	return ok && v.set
}

// Source returns where the option value came from.
func (c *Config) Source(o Opt) Source {
	v, ok := c.lookup(o.name)
	if !ok {
		return SourceDefault
	}
	return v.src
}

// RepoKeys returns the repository keys in use (sorted); [1] when none is set.
func (c *Config) RepoKeys() []int { return c.groupKeys("repo") }

// PgKeys returns the PostgreSQL keys in use (sorted); [1] when none is set.
func (c *Config) PgKeys() []int { return c.groupKeys("pg") }

func (c *Config) groupKeys(g string) []int {
	if k := c.keys[g]; len(k) > 0 {
		return append([]int(nil), k...)
	}
	return []int{1}
}

// Set overrides an option value (source: command line). The value is
// validated like a command-line value; list and hash values are separated by
// ':'; booleans take y/n.
func (c *Config) Set(opt Opt, value string) error {
	return c.SetByName(opt.name, value)
}

// SetByName is Set for an option name given at run time ("repo2-path");
// an unknown name is an error.
func (c *Config) SetByName(name, value string) error {
	o, idx, _, _, err := parseName(name, false)
	if err != nil {
		return err
	}
	if o == nil {
		return errs.New(errs.OptionInvalid, "invalid option '%s'", name)
	}
	full := fullName(o, idx)
	v := &optVal{opt: o, idx: idx, src: SourceParam}
	var vals []string
	switch {
	case o.typ == tBool:
		switch value {
		case "y":
		case "n":
			v.negate = true
		default:
			return errs.New(errs.OptionInvalidValue, "boolean option '%s' must be 'y' or 'n'", full)
		}
	case o.typ.multi():
		vals = strings.Split(value, ":")
	default:
		vals = []string{value}
	}
	w := &where{name: full, src: SourceParam}
	if err := convertValue(v, vals, w, c.command); err != nil {
		return err
	}
	v.set = true
	if c.vals == nil {
		c.vals = map[string]*optVal{}
	}
	c.vals[full] = v
	if o.group != "" && !containsInt(c.keys[o.group], idx) {
		if c.keys == nil {
			c.keys = map[string][]int{}
		}
		c.keys[o.group] = append(c.keys[o.group], idx)
		sort.Ints(c.keys[o.group])
	}
	return nil
}

// CommandLineArgs returns the options given on the command line, normalised to
// --name=value (indexed names in full, deprecated names replaced), booleans as
// --name / --no-name, in the order given. Secure and redacted options are
// never included.
func (c *Config) CommandLineArgs() []string {
	var out []string
	for _, a := range c.cliArgs {
		if a.redact {
			continue
		}
		switch {
		case a.reset:
			out = append(out, "--reset-"+a.name)
		case a.negate:
			out = append(out, "--no-"+a.name)
		case a.hasVal:
			out = append(out, "--"+a.name+"="+a.value)
		default:
			out = append(out, "--"+a.name)
		}
	}
	return out
}

// LogParams returns the text pgBackRest prints after "<command> command begin
// <version>: ": the parameters in brackets, then every option valid for the
// command that is not at its default, sorted by name (indexes in key order),
// booleans as --name or --no-name, list and hash options repeated, values with
// spaces quoted and secure values as <redacted>.
func (c *Config) LogParams() string {
	var b strings.Builder
	if len(c.params) > 0 {
		b.WriteString("[")
		for i, p := range c.params {
			if i > 0 {
				b.WriteString(", ")
			}
			if strings.Contains(p, " ") {
				p = `"` + p + `"`
			}
			b.WriteString(p)
		}
		b.WriteString("]")
	}
	add := func(s string) {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString(s)
	}
	for _, o := range sortedDefs() {
		// compress is folded into compress-type after parsing (pgBackRest
		// invalidates it), so it is never shown.
		if !o.validFor(c.command, c.role) || o.name == "compress" {
			continue
		}
		idxs := []int{0}
		if o.group != "" {
			idxs = c.groupKeys(o.group)
		}
		for _, idx := range idxs {
			v, ok := c.vals[fullName(o, idx)]
			if !ok {
				continue
			}
			name := fullName(o, idx)
			switch {
			case v.negate && v.src != SourceDefault:
				add("--no-" + name)
			case v.reset:
				add("--reset-" + name)
			case v.src == SourceDefault || !v.set:
			case o.redact:
				add("--" + name + "=<redacted>")
			case o.typ == tBool && v.s != "prefer":
				add("--" + name)
			default:
				var vals []string
				switch o.typ {
				case tList:
					vals = v.list
				case tHash:
					for _, kv := range v.hash {
						vals = append(vals, kv[0]+"="+kv[1])
					}
				default:
					vals = []string{v.disp}
				}
				for _, s := range vals {
					if strings.Contains(s, " ") {
						s = `"` + s + `"`
					}
					add("--" + name + "=" + s)
				}
			}
		}
	}
	return b.String()
}

// sortedDefsCache is built in init (read-only afterwards, safe for concurrent use).
var sortedDefsCache []*optDef

func sortedDefs() []*optDef { return sortedDefsCache }

// fullName returns the indexed name ("repo1-path") of a group option, the
// plain name otherwise.
func fullName(o *optDef, idx int) string {
	if o.group == "" || idx == 0 {
		return o.name
	}
	return o.group + strconv.Itoa(idx) + o.name[len(o.group):]
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
