package config

import "strconv"

// Opt names one option of the option table. Its field is unexported so that
// only the variables of optnames.go (generated from the table, see
// TestOptNames) can be passed to the accessors: a misspelt option name is a
// compile error, not a silent zero value.
type Opt struct {
	name  string // canonical name; group options without index ("repo-path") or with ("repo2-path")
	group string // "", "repo" or "pg"
	base  string // group options: the name without index ("repo-path")
}

// String returns the option name as written in pgbackrest.conf and on the
// command line ("process-max", "repo-path", "repo2-path").
func (o Opt) String() string { return o.name }

// Index returns the option of a group ("repo", "pg") with the key index
// ("repo-path".Index(2) is "repo2-path"; index 1 is "repo1-path", which the
// parser resolves like the unindexed "repo-path"). Index panics for an
// option that is not in a group: that is a programming error, caught by the
// first test that runs the code.
func (o Opt) Index(key int) Opt {
	if o.group == "" {
		panic("config: option '" + o.name + "' is not in a group and has no index")
	}
	base := o.base
	if base == "" {
		base = o.name
	}
	return Opt{name: o.group + strconv.Itoa(key) + base[len(o.group):], group: o.group, base: base}
}
