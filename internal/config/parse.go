package config

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

const (
	keyMax     = 256
	envPrefix  = "PGBACKREST_"
	nameMaxLen = 64
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// rawVal is an option value as found in one source, before validation.
type rawVal struct {
	vals    []string
	lines   []int // config file line of each value
	negate  bool
	reset   bool
	src     Source
	file    string
	section string
	env     string // environment variable name
	spelled string // the name as written
}

// where describes the origin of a value for error messages.
type where struct {
	name    string // full option name
	src     Source
	file    string
	line    int
	env     string
	section string
}

func (w *where) String() string {
	if w == nil {
		return ""
	}
	switch w.src {
	case SourceParam:
		return " on the command line"
	case SourceEnv:
		return sprintf(" in environment variable '%s'", w.env)
	case SourceConfig:
		if w.line > 0 {
			return sprintf(" in file '%s' line %d", w.file, w.line)
		}
		return sprintf(" in file '%s'", w.file)
	}
	return ""
}

func (r *rawVal) where(name string, i int) *where {
	w := &where{name: name, src: r.src, file: r.file, env: r.env, section: r.section}
	if i < len(r.lines) {
		w.line = r.lines[i]
	} else if len(r.lines) > 0 {
		w.line = r.lines[0]
	}
	return w
}

// parseName resolves an option name as written (without leading --) to its
// definition and key index. negate/reset report the no-/reset- prefixes.
// prefix enables unique-prefix matching (command line only). A nil definition
// with nil error means the option is unknown.
func parseName(candidate string, prefix bool) (o *optDef, idx int, negate, reset bool, err error) {
	if len(candidate) > nameMaxLen {
		return nil, 0, false, false, errs.New(errs.OptionInvalid,
			"option '%s' exceeds maximum size of %d", candidate, nameMaxLen)
	}
	name := candidate
	if strings.HasPrefix(name, "no-") {
		negate, name = true, name[3:]
	} else if strings.HasPrefix(name, "reset-") {
		reset, name = true, name[6:]
	}
	indexed := false
	if dash := strings.IndexByte(name, '-'); dash >= 0 {
		if dash == 0 {
			return nil, 0, false, false, errs.New(errs.OptionInvalid, "option '%s' cannot begin with a dash", candidate)
		}
		n := dash
		for n > 0 && name[n-1] >= '0' && name[n-1] <= '9' {
			n--
		}
		if n == 0 {
			return nil, 0, false, false, errs.New(errs.OptionInvalid, "option '%s' cannot begin with a number", candidate)
		}
		if n != dash {
			k, convErr := strconv.Atoi(name[n:dash])
			if convErr != nil || k > keyMax {
				return nil, 0, false, false, errs.New(errs.OptionInvalid,
					"option '%s' key exceeds maximum of %d", candidate, keyMax)
			}
			if k < 1 {
				return nil, 0, false, false, errs.New(errs.OptionInvalid,
					"option '%s' key must be between 1 and %d", candidate, keyMax)
			}
			indexed, idx = true, k
			name = name[:n] + name[dash:]
		}
	}

	deprecated := false
	o = optByName[name]
	if o == nil && prefix {
		o = uniquePrefix(name)
	}
	if o == nil {
		if d, ok := deprIndexed[name]; ok {
			o, deprecated = d, true
		} else if d, ok := deprUnindex[name]; ok {
			if indexed {
				return nil, 0, false, false, errs.New(errs.OptionInvalid,
					"deprecated option '%s' cannot have an index", candidate)
			}
			o, deprecated = d, true
		}
	}
	if o == nil {
		return nil, 0, false, false, nil
	}
	if negate && !o.negate {
		return nil, 0, false, false, errs.New(errs.OptionInvalid, "option '%s' cannot be negated", candidate)
	}
	if reset && !o.reset {
		return nil, 0, false, false, errs.New(errs.OptionInvalid, "option '%s' cannot be reset", candidate)
	}
	if indexed && o.group == "" {
		return nil, 0, false, false, errs.New(errs.OptionInvalid, "option '%s' cannot have an index", candidate)
	}
	_ = deprecated
	if o.group != "" && !indexed {
		idx = 1 // the unindexed spelling is key 1
	}
	if o.group == "" {
		idx = 0
	}
	return o, idx, negate, reset, nil
}

func uniquePrefix(name string) *optDef {
	if name == "" {
		return nil
	}
	var found *optDef
	n := 0
	for _, o := range optDefs {
		if strings.HasPrefix(o.name, name) {
			found = o
			n++
		}
	}
	if n == 1 {
		return found
	}
	return nil
}

// ---------------------------------------------------------------------------------------------------------------

type parser struct {
	c    *Config
	raw  map[string]*rawVal // by full name; first source found wins
	keyO map[string]*optDef // full name → def
	keyI map[string]int     // full name → index
	// readFile and readDir are replaceable for tests.
	readFile func(string) ([]byte, error)
	readDir  func(string) ([]string, error)
}

// Parse parses a command line (without the program name) and the environment
// (os.Environ() form), loads the configuration files and returns the resolved
// configuration of the command.
func Parse(args []string, environ []string) (cfg *Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			cfg, err = nil, errs.New(errs.Assert, "internal error while parsing configuration: %v", r)
		}
	}()
	p := newParser()
	return p.parse(args, environ)
}

func newParser() *parser {
	return &parser{
		c:        &Config{vals: map[string]*optVal{}, keys: map[string][]int{}},
		raw:      map[string]*rawVal{},
		keyO:     map[string]*optDef{},
		keyI:     map[string]int{},
		readFile: os.ReadFile,
		readDir:  readConfDir,
	}
}

func readConfDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if len(n) > len(".conf") && strings.HasSuffix(n, ".conf") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (p *parser) parse(args, environ []string) (*Config, error) {
	if err := p.parseArgs(args); err != nil {
		return nil, err
	}
	c := p.c
	if c.help || c.command == "version" {
		// Nothing to validate; keep command-line values for display.
		for full, r := range p.raw {
			o := p.keyO[full]
			v := &optVal{opt: o, idx: p.keyI[full], src: r.src, negate: r.negate, reset: r.reset}
			if !r.negate && !r.reset {
				if convertValue(v, r.vals, nil, c.command) == nil {
					v.set = true
				}
			}
			c.vals[full] = v
		}
		return c, nil
	}
	if err := p.parseEnv(environ); err != nil {
		return nil, err
	}
	if err := p.loadConfig(); err != nil {
		return nil, err
	}
	if err := p.resolve(); err != nil {
		return nil, err
	}
	if err := p.update(); err != nil {
		return nil, err
	}
	return c, nil
}

// ---------------------------------------------------------------------------------------------------------------
// Phase 1: command line.

func (p *parser) parseArgs(args []string) error {
	c := p.c
	commandSet := false
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if strings.HasPrefix(arg, "-") {
			if !strings.HasPrefix(arg, "--") {
				return errs.New(errs.OptionInvalid, "option '%s' must begin with --", arg)
			}
			body := arg[2:]
			name, value, hasVal := strings.Cut(body, "=")
			o, idx, negate, reset, err := parseName(name, true)
			if err != nil {
				return err
			}
			if o == nil {
				if err := refuseNewer(name, value, "command line"); err != nil {
					return err
				}
				return errs.New(errs.OptionInvalid, "invalid option '--%s'", body)
			}
			full := fullName(o, idx)
			if !negate && !reset {
				if o.typ == tBool {
					if hasVal {
						switch {
						case value == "n":
							negate = true
							hasVal = false
						case value == "y":
							hasVal = false
						case value == "prefer" && o.prefer:
						default:
							return errs.New(errs.OptionInvalidValue,
								"boolean option '--%s' argument must be 'y' or 'n'", name)
						}
					}
				} else if !hasVal {
					if i == len(args)-1 {
						return errs.New(errs.OptionInvalid, "option '--%s' requires an argument", name)
					}
					i++
					value, hasVal = args[i], true
				}
			} else if hasVal {
				return errs.New(errs.OptionInvalid, "option '%s' does not allow an argument", name)
			}
			if o.secure {
				return errs.New(errs.OptionInvalid,
					"option '%s' is not allowed on the command-line\n"+
						"HINT: this option could expose secrets in the process list.\n"+
						"HINT: specify the option in a configuration file or an environment variable instead.", full)
			}
			r, found := p.raw[full]
			if !found {
				r = &rawVal{negate: negate, reset: reset, src: SourceParam, spelled: name}
				if hasVal {
					r.vals = []string{value}
				}
				p.setRaw(full, o, idx, r)
			} else {
				switch {
				case r.negate && negate:
					return errs.New(errs.OptionInvalid, "option '%s' is negated multiple times", full)
				case r.reset && reset:
					return errs.New(errs.OptionInvalid, "option '%s' is reset multiple times", full)
				case (r.reset && negate) || (r.negate && reset):
					return errs.New(errs.OptionInvalid, "option '%s' cannot be negated and reset", full)
				case r.negate != negate:
					return errs.New(errs.OptionInvalid, "option '%s' cannot be set and negated", full)
				case r.reset != reset:
					return errs.New(errs.OptionInvalid, "option '%s' cannot be set and reset", full)
				case hasVal && o.typ.multi():
					r.vals = append(r.vals, value)
				default:
					return errs.New(errs.OptionInvalid, "option '%s' cannot be set multiple times", full)
				}
			}
			c.cliArgs = append(c.cliArgs, cliArg{name: full, value: value, hasVal: hasVal, negate: negate,
				reset: reset, redact: o.redact})
			continue
		}

		if !commandSet {
			cmd, role := arg, roleMain
			if !commandValid[cmd] {
				if a, b, ok := strings.Cut(arg, ":"); ok && commandValid[a] && !strings.Contains(b, ":") {
					cmd, role = a, b
					if !contains(append([]string{roleMain}, commandRoles[a]...), role) ||
						(role != roleMain && !contains(commandRoles[a], role)) {
						return errs.New(errs.CommandInvalid, "invalid command/role combination '%s'", arg)
					}
				} else {
					return errs.New(errs.CommandInvalid, "invalid command '%s'", arg)
				}
			}
			if cmd == "help" {
				c.help = true
				c.command = "help"
				commandSet = true
				continue
			}
			c.command, c.role = cmd, role
			commandSet = true
			continue
		}
		c.params = append(c.params, arg)
	}
	if !commandSet {
		if len(args) > 0 {
			return errs.New(errs.CommandRequired, "no command found")
		}
		c.help = true
		c.command = "help"
	}
	if c.role == "" {
		c.role = roleMain
	}
	if len(c.params) > 0 && !c.help && !paramCommands[c.command] {
		return errs.New(errs.ParamInvalid, "command does not allow parameters")
	}
	return nil
}

func (p *parser) setRaw(full string, o *optDef, idx int, r *rawVal) {
	p.raw[full] = r
	p.keyO[full] = o
	p.keyI[full] = idx
}

// ---------------------------------------------------------------------------------------------------------------
// Phase 2: environment.

func (p *parser) parseEnv(environ []string) error {
	c := p.c
	for _, kv := range environ {
		if !strings.HasPrefix(kv, envPrefix) {
			continue
		}
		eq := strings.IndexByte(kv, '=')
		if eq < 0 {
			continue
		}
		envName := kv[:eq]
		value := kv[eq+1:]
		key := strings.ReplaceAll(strings.ToLower(envName[len(envPrefix):]), "_", "-")
		o, idx, negate, reset, err := parseName(key, false)
		if err != nil {
			c.addWarning("environment contains invalid option '%s': %v", key, err)
			continue
		}
		if o == nil {
			if err := refuseNewer(key, value, "environment"); err != nil {
				return err
			}
			c.addWarning("environment contains invalid option '%s'", key)
			continue
		}
		if negate {
			c.addWarning("environment contains invalid negate option '%s'", key)
			continue
		}
		if reset {
			c.addWarning("environment contains invalid reset option '%s'", key)
			continue
		}
		if !o.validFor(c.command, c.role) {
			continue
		}
		full := fullName(o, idx)
		if value == "" {
			return errs.New(errs.OptionInvalidValue, "environment variable '%s' must have a value", key)
		}
		if _, found := p.raw[full]; found {
			continue
		}
		r := &rawVal{src: SourceEnv, env: envName, spelled: key}
		switch {
		case o.typ == tBool:
			switch {
			case value == "n":
				r.negate = true
			case value == "y":
			case value == "prefer" && o.prefer:
				r.vals = []string{value}
			default:
				return errs.New(errs.OptionInvalidValue,
					"environment boolean option '%s' must be 'y' or 'n' (environment variable '%s')", key, envName)
			}
		case o.typ.multi():
			r.vals = strings.Split(value, ":")
		default:
			r.vals = []string{value}
		}
		p.setRaw(full, o, idx, r)
	}
	return nil
}

// ---------------------------------------------------------------------------------------------------------------
// Phase 3: configuration files.

type iniEntry struct {
	value string
	file  string
	line  int
}

type iniSection struct {
	keys []string // in order of first appearance
	vals map[string][]iniEntry
}

type iniFile struct {
	sections map[string]*iniSection
}

func newIni() *iniFile { return &iniFile{sections: map[string]*iniSection{}} }

// parseIni adds the content of one file to ini (pgBackRest concatenates all
// files, so a key repeated across files is a repeated key).
func (ini *iniFile) parse(file string, data []byte) error {
	text := string(data)
	section := ""
	lineNo := 0
	for len(text) > 0 || lineNo == 0 {
		var line string
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, ""
		}
		lineNo++
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			if text == "" {
				break
			}
			continue
		}
		if line[0] == '[' {
			if line[len(line)-1] != ']' {
				return errs.New(errs.Format, "ini section should end with ] in file '%s' line %d: %s", file, lineNo, line)
			}
			section = line[1 : len(line)-1]
			if section == "" {
				return errs.New(errs.Format, "invalid empty section in file '%s' line %d: %s", file, lineNo, line)
			}
		} else {
			if section == "" {
				return errs.New(errs.Format, "key/value found outside of section in file '%s' line %d: %s",
					file, lineNo, line)
			}
			eq := strings.IndexByte(line, '=')
			if eq < 0 {
				return errs.New(errs.Format, "missing '=' in key/value in file '%s' line %d: %s", file, lineNo, line)
			}
			key := strings.TrimSpace(line[:eq])
			value := strings.TrimSpace(line[eq+1:])
			if key == "" {
				return errs.New(errs.Format, "key is zero-length in file '%s' line %d: %s", file, lineNo, line)
			}
			s := ini.sections[section]
			if s == nil {
				s = &iniSection{vals: map[string][]iniEntry{}}
				ini.sections[section] = s
			}
			if _, ok := s.vals[key]; !ok {
				s.keys = append(s.keys, key)
			}
			s.vals[key] = append(s.vals[key], iniEntry{value: value, file: file, line: lineNo})
		}
		if text == "" {
			break
		}
	}
	return nil
}

// configFiles returns the files to load, following pgBackRest's rules for
// --config, --config-path, --config-include-path and --no-config.
func (p *parser) configFiles() ([]string, error) {
	get := func(name string) (*rawVal, bool) {
		r, ok := p.raw[name]
		return r, ok && r != nil
	}
	cfgR, configFound := get("config")
	cfgPathR, configPathFound := get("config-path")
	incR, includeFound := get("config-include-path")
	if configFound && cfgR.reset {
		configFound = false
	}
	if configPathFound && (cfgPathR.reset || len(cfgPathR.vals) == 0) {
		configPathFound = false
	}
	if includeFound && (incR.reset || len(incR.vals) == 0) {
		includeFound = false
	}

	defConfig := "/etc/pgbackrest/pgbackrest.conf"
	defInclude := "/etc/pgbackrest/conf.d"
	const origConfig = "/etc/pgbackrest.conf"
	defConfigCurrent := defConfig
	if configPathFound {
		base := cfgPathR.vals[0]
		defConfig = strings.TrimSuffix(base, "/") + "/pgbackrest.conf"
		defInclude = strings.TrimSuffix(base, "/") + "/conf.d"
	}

	loadConfig, loadInclude := true, true
	configRequired := configFound && !cfgR.negate && len(cfgR.vals) > 0
	includeRequired := includeFound
	if configFound && cfgR.negate {
		loadConfig, configRequired = false, false
	}
	if configFound && !(configPathFound || includeFound) {
		loadInclude, includeRequired = false, false
	}

	var files []string
	if loadConfig {
		name := defConfig
		if configRequired {
			name = cfgR.vals[0]
		}
		switch ok, err := p.fileExists(name); {
		case err != nil:
			return nil, err
		case ok:
			files = append(files, name)
		case configRequired:
			return nil, errs.New(errs.FileMissing, "unable to open missing file '%s' for read", name)
		case name == defConfigCurrent:
			if ok2, err := p.fileExists(origConfig); err != nil {
				return nil, err
			} else if ok2 {
				files = append(files, origConfig)
			}
		}
	}
	if loadInclude {
		dir := defInclude
		if includeRequired {
			dir = incR.vals[0]
		}
		names, err := p.readDir(dir)
		if err != nil {
			if os.IsNotExist(err) {
				if includeRequired {
					return nil, errs.New(errs.PathMissing, "unable to list file info for missing path '%s'", dir)
				}
			} else {
				return nil, errs.Wrap(errs.PathOpen, err, "unable to list files in path '%s'", dir)
			}
		}
		for _, n := range names {
			files = append(files, filepath.Join(dir, n))
		}
	}
	return files, nil
}

func (p *parser) fileExists(name string) (bool, error) {
	_, err := p.readFile(name)
	if err == nil {
		return true, nil
	}
	if os.IsNotExist(err) {
		return false, nil
	}
	return false, errs.Wrap(errs.FileOpen, err, "unable to open file '%s' for read", name)
}

func (p *parser) loadConfig() error {
	files, err := p.configFiles()
	if err != nil {
		return err
	}
	ini := newIni()
	for _, f := range files {
		data, err := p.readFile(f)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return errs.Wrap(errs.FileOpen, err, "unable to open file '%s' for read", f)
		}
		if err := ini.parse(f, data); err != nil {
			return err
		}
	}
	return p.applyIni(ini)
}

// applyIni takes option values from the sections relevant to the command.
func (p *parser) applyIni(ini *iniFile) error {
	c := p.c
	stanza := ""
	if r, ok := p.raw["stanza"]; ok && len(r.vals) > 0 && !r.reset {
		stanza = r.vals[0]
	}
	var sections []string
	if stanza != "" {
		sections = append(sections, stanza+":"+c.command, stanza)
	}
	sections = append(sections, "global:"+c.command, "global")

	for si, section := range sections {
		s := ini.sections[section]
		if s == nil {
			continue
		}
		found := map[string]string{}
		for _, key := range s.keys {
			entries := s.vals[key]
			first := entries[0]
			o, idx, negate, reset, err := parseName(key, false)
			if err != nil {
				c.addWarning("configuration file contains invalid option '%s' (file '%s' line %d): %v", key, first.file, first.line, err)
				continue
			}
			if o == nil {
				if err := refuseNewer(key, first.value, "configuration file '"+first.file+"'"); err != nil {
					return err
				}
				c.addWarning("configuration file contains invalid option '%s' (file '%s' line %d)", key, first.file, first.line)
				continue
			}
			if negate {
				c.addWarning("configuration file contains negate option '%s' (file '%s' line %d)", key, first.file, first.line)
				continue
			}
			if reset {
				c.addWarning("configuration file contains reset option '%s' (file '%s' line %d)", key, first.file, first.line)
				continue
			}
			if o.sec == secCmdLine {
				c.addWarning("configuration file contains command-line only option '%s' (file '%s' line %d)",
					key, first.file, first.line)
				continue
			}
			full := fullName(o, idx)
			if prev, dup := found[full]; dup {
				return errs.New(errs.OptionInvalid,
					"configuration file contains duplicate options ('%s', '%s') in section '[%s]' (file '%s' line %d)",
					key, prev, section, first.file, first.line)
			}
			found[full] = key
			if !o.validFor(c.command, c.role) {
				if si%2 == 0 {
					c.addWarning("configuration file contains option '%s' invalid for section '%s' (file '%s' line %d)",
						key, section, first.file, first.line)
				}
				continue
			}
			if o.sec == secStanza && (section == "global" || strings.HasPrefix(section, "global:")) {
				c.addWarning("configuration file contains stanza-only option '%s' in global section '%s' (file '%s' line %d)",
					key, section, first.file, first.line)
				continue
			}
			if _, done := p.raw[full]; done {
				continue
			}
			r := &rawVal{src: SourceConfig, file: first.file, section: section, spelled: key}
			if len(entries) > 1 {
				if !o.typ.multi() {
					return errs.New(errs.OptionInvalid,
						"option '%s' cannot be set multiple times (file '%s' lines %s, section '[%s]')",
						full, first.file, joinLines(entries), section)
				}
				for _, e := range entries {
					if e.value == "" {
						return errs.New(errs.OptionInvalidValue,
							"section '%s', key '%s' must have a value (file '%s' line %d)", section, key, e.file, e.line)
					}
					r.vals = append(r.vals, e.value)
					r.lines = append(r.lines, e.line)
				}
			} else {
				if first.value == "" {
					return errs.New(errs.OptionInvalidValue,
						"section '%s', key '%s' must have a value (file '%s' line %d)", section, key, first.file, first.line)
				}
				r.lines = []int{first.line}
				if o.typ == tBool {
					switch {
					case first.value == "n":
						r.negate = true
					case first.value == "y":
					case first.value == "prefer" && o.prefer:
						r.vals = []string{first.value}
					default:
						return errs.New(errs.OptionInvalidValue,
							"boolean option '%s' must be 'y' or 'n' (file '%s' line %d)", key, first.file, first.line)
					}
				} else {
					r.vals = []string{first.value}
				}
			}
			p.setRaw(full, o, idx, r)
		}
	}
	return nil
}

func joinLines(entries []iniEntry) string {
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = strconv.Itoa(e.line)
		if e.file != entries[0].file {
			parts[i] = e.file + ":" + parts[i]
		}
	}
	return strings.Join(parts, ", ")
}

// ---------------------------------------------------------------------------------------------------------------
// Phase 4/5: resolve every option valid for the command.

type resolver struct {
	p       *parser
	done    map[string]*optVal
	working map[string]bool
}

func (p *parser) resolve() error {
	c := p.c
	// Options given on the command line must be valid for the command.
	for full, r := range p.raw {
		o := p.keyO[full]
		if r.src == SourceParam && !o.validFor(c.command, c.role) {
			return errs.New(errs.OptionInvalid, "option '%s' not valid for command '%s'", o.name, c.command)
		}
	}

	// Keys in use per group.
	candidates := map[string]map[int]bool{"repo": {}, "pg": {}}
	for full, r := range p.raw {
		o := p.keyO[full]
		if o.group == "" || r.reset || !o.validFor(c.command, c.role) {
			continue
		}
		candidates[o.group][p.keyI[full]] = true
	}
	groupKeys := map[string][]int{}
	for g, m := range candidates {
		var ks []int
		for k := range m {
			ks = append(ks, k)
		}
		if g == "pg" && len(ks) > 0 && !m[1] {
			ks = append(ks, 1) // pgBackRest always keeps pg key 1 in the map
		}
		if len(ks) == 0 {
			ks = []int{1}
		}
		sort.Ints(ks)
		groupKeys[g] = ks
	}
	c.keys = groupKeys

	rs := &resolver{p: p, done: map[string]*optVal{}, working: map[string]bool{}}
	for _, o := range optDefs {
		if !o.validFor(c.command, c.role) {
			continue
		}
		idxs := []int{0}
		if o.group != "" {
			idxs = groupKeys[o.group]
		}
		for _, idx := range idxs {
			if _, err := rs.resolve(o, idx); err != nil {
				return err
			}
		}
	}
	for k, v := range rs.done {
		c.vals[k] = v
	}

	// Drop group keys whose options are all at their defaults (unless none is left).
	for g, ks := range groupKeys {
		var keep []int
		for _, k := range ks {
			for _, o := range optDefs {
				if o.group != g {
					continue
				}
				if v, ok := rs.done[fullName(o, k)]; ok && v.src != SourceDefault {
					keep = append(keep, k)
					break
				}
			}
		}
		if len(keep) == 0 {
			keep = []int{1}
		}
		for _, k := range ks {
			if !containsInt(keep, k) {
				for _, o := range optDefs {
					if o.group == g {
						delete(c.vals, fullName(o, k))
					}
				}
			}
		}
		c.keys[g] = keep
	}
	return nil
}

func (rs *resolver) resolve(o *optDef, idx int) (*optVal, error) {
	p := rs.p
	c := p.c
	full := fullName(o, idx)
	if v, ok := rs.done[full]; ok {
		return v, nil
	}
	if rs.working[full] {
		return nil, errs.New(errs.Assert, "option dependency loop at '%s'", full)
	}
	rs.working[full] = true
	defer delete(rs.working, full)

	v := &optVal{opt: o, idx: idx}
	r := p.raw[full]
	if r != nil {
		v.negate, v.reset = r.negate, r.reset
	}
	optionSet := r != nil && (o.typ == tBool || !r.negate) && !r.reset

	// Dependency.
	depOK := true
	var dep *depend
	var depVal *optVal
	if dep = o.dependFor(c.command); dep != nil {
		do := optByName[dep.option]
		depIdx := 0
		if do.group != "" {
			depIdx = idx
			if o.group == "" {
				depIdx = 1
			}
		}
		if do.validFor(c.command, c.role) {
			dv, err := rs.resolve(do, depIdx)
			if err != nil {
				return nil, err
			}
			depVal = dv
			depOK = dv.set && (len(dep.values) == 0 || contains(dep.values, dv.compare()))
		} else {
			depOK = false
		}
		if !depOK && optionSet && r.src == SourceParam {
			depName := fullName(do, depIdx)
			if depVal == nil || !depVal.set {
				return nil, errs.New(errs.OptionInvalid, "option '%s' not valid without option '%s'", full, depName)
			}
			suffix := ""
			if do.typ == tBool {
				if len(dep.values) > 0 && dep.values[0] == "0" {
					depName = "no-" + depName
				}
			} else if len(dep.values) == 1 {
				suffix = sprintf(" = '%s'", dep.values[0])
			} else if len(dep.values) > 1 {
				q := make([]string, len(dep.values))
				for i, s := range dep.values {
					q[i] = "'" + s + "'"
				}
				suffix = " in (" + strings.Join(q, ", ") + ")"
			}
			return nil, errs.New(errs.OptionInvalid, "option '%s' not valid without option '%s'%s", full, depName, suffix)
		}
	}

	if depOK {
		switch {
		case optionSet:
			v.src = r.src
			if o.beta {
				if br, ok := p.raw["beta"]; !ok || br.negate || br.reset {
					return nil, errs.New(errs.OptionInvalid,
						"option '%s' is not valid without option 'beta'\n"+
							"HINT: beta features require the --beta option to prevent accidental usage.", full)
				}
			}
			if o.typ == tBool {
				v.b = !r.negate
				v.disp = boolText(v.b)
				v.set = true
				if o.prefer && len(r.vals) == 1 && r.vals[0] == "prefer" {
					v.s, v.disp = "prefer", "prefer"
				}
			} else {
				if err := convertValueRaw(v, r, full, c.command); err != nil {
					return nil, err
				}
				v.set = true
			}
		case r != nil && r.negate:
			// --no-config and similar: negated non-boolean, no value.
			v.src = r.src
		default:
			if d, ok := o.defaultFor(c.command); ok {
				if err := convertValue(v, []string{d}, nil, c.command); err != nil {
					return nil, errs.Wrap(errs.Assert, err, "invalid default for option '%s'", full)
				}
				v.set = true
				v.src = SourceDefault
			} else if o.requiredFor(c.command) && !c.help {
				hint := ""
				if o.sec == secStanza {
					hint = "\nHINT: does this stanza exist?"
				} else if dep != nil && len(dep.values) > 0 && depVal != nil {
					hint = sprintf("\nHINT: it is required when option '%s' = '%s'.",
						fullName(depVal.opt, depVal.idx), depVal.disp)
				}
				return nil, errs.New(errs.OptionRequired, "%s command requires option: %s%s", c.command, full, hint)
			}
		}
	} else if dep.hasDflt {
		if err := convertValue(v, []string{dep.dflt}, nil, c.command); err == nil {
			v.set = true
		}
		v.src = SourceDefault
		v.negate = false
	}
	rs.done[full] = v
	return v, nil
}

// compare returns the value in the form used by dependency lists.
func (v *optVal) compare() string {
	if v.opt.typ == tBool {
		if v.b {
			return "1"
		}
		return "0"
	}
	return v.s
}

func boolText(b bool) string {
	if b {
		return "y"
	}
	return "n"
}

func convertValueRaw(v *optVal, r *rawVal, full, cmd string) error {
	return convertValueWhere(v, r.vals, func(i int) *where { return r.where(full, i) }, cmd)
}

// convertValue converts and validates values for v.opt; w gives the origin for
// messages (nil: a default).
func convertValue(v *optVal, vals []string, w *where, cmd string) error {
	return convertValueWhere(v, vals, func(int) *where { return w }, cmd)
}

func convertValueWhere(v *optVal, vals []string, wf func(int) *where, cmd string) error {
	o := v.opt
	name := fullName(o, v.idx)
	bad := func(i int, value, why string) error {
		return errs.New(errs.OptionInvalidValue, "option '%s' has invalid value '%s'%s: %s", name, value, wf(i).String(), why)
	}
	switch o.typ {
	case tBool:
		if len(vals) == 0 {
			v.b = true
			return nil
		}
		switch vals[0] {
		case "1", "y":
			v.b = true
		case "0", "n":
			v.b = false
		case "prefer":
			if !o.prefer {
				return bad(0, vals[0], "must be 'y' or 'n'")
			}
			v.b, v.s = true, "prefer"
			v.disp = "prefer"
			return nil
		default:
			return bad(0, vals[0], "must be 'y' or 'n'")
		}
		v.disp = boolText(v.b)
		return nil
	case tList:
		v.list = append([]string(nil), vals...)
		v.disp = strings.Join(vals, ":")
		return nil
	case tHash:
		v.hash = nil
		for i, kv := range vals {
			k, val, ok := strings.Cut(kv, "=")
			if !ok {
				return errs.New(errs.OptionInvalid, "key/value '%s' not valid for '%s' option%s: must be key=value",
					kv, name, wf(i).String())
			}
			v.hash = append(v.hash, [2]string{k, val})
		}
		v.disp = strings.Join(vals, ":")
		return nil
	}
	if len(vals) == 0 {
		return bad(0, "", "a value is required")
	}
	value := vals[0]
	v.disp = value
	switch o.typ {
	case tInt:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return bad(0, value, "must be an integer")
		}
		if o.rng != nil && (float64(n) < o.rng[0] || float64(n) > o.rng[1]) {
			return bad(0, value, sprintf("out of range, must be between %s and %s", fmtNum(o.rng[0]), fmtNum(o.rng[1])))
		}
		v.i = n
	case tSize:
		n, err := parseSize(value)
		if err != nil {
			return bad(0, value, "must be a size in bytes with an optional unit (b, k/kb/kib, m/mb/mib, g, t, p)")
		}
		if o.rng != nil && (float64(n) < o.rng[0] || float64(n) > o.rng[1]) {
			return bad(0, value, sprintf("out of range, must be between %s and %s", fmtSize(o.rng[0]), fmtSize(o.rng[1])))
		}
		if allow := o.allowFor(cmd); allow != nil {
			okv := false
			for _, a := range allow {
				if an, err := parseSize(a); err == nil && an == n {
					okv = true
					break
				}
			}
			if !okv {
				return bad(0, value, "must be one of "+strings.Join(allow, ", "))
			}
		}
		v.i = n
	case tTime:
		ms, err := parseTime(value)
		if err != nil {
			return bad(0, value, "must be a number of seconds (decimals allowed)")
		}
		if o.rng != nil && (float64(ms) < math.Round(o.rng[0]*1000) || float64(ms) > math.Round(o.rng[1]*1000)) {
			return bad(0, value, sprintf("out of range, must be between %s and %s seconds", fmtNum(o.rng[0]), fmtNum(o.rng[1])))
		}
		v.i = ms
	case tString, tPath, tEnum:
		if value == "" {
			return bad(0, value, "must not be empty")
		}
		if o.typ == tPath {
			if !strings.HasPrefix(value, "/") {
				return bad(0, value, "must begin with /")
			}
			if strings.Contains(value, "//") {
				return bad(0, value, "cannot contain //")
			}
			if len(value) > 1 && strings.HasSuffix(value, "/") {
				value = value[:len(value)-1]
			}
		}
		if allow := o.allowFor(cmd); allow != nil && !contains(allow, value) {
			return bad(0, value, "must be one of "+strings.Join(allow, ", "))
		}
		v.s = value
	}
	return nil
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func fmtSize(f float64) string {
	n := int64(f)
	units := []string{"PiB", "TiB", "GiB", "MiB", "KiB"}
	mults := []int64{pib, tib, gib, mib, kib}
	for i, m := range mults {
		if n >= m && n%m == 0 {
			return strconv.FormatInt(n/m, 10) + units[i]
		}
	}
	return strconv.FormatInt(n, 10)
}

// parseSize parses a size: digits with an optional case-insensitive unit b,
// k/kb/kib, m/mb/mib, g/gb/gib, t/tb/tib, p/pb/pib (all powers of 1024).
func parseSize(s string) (int64, error) {
	l := strings.ToLower(s)
	i := 0
	for i < len(l) && l[i] >= '0' && l[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid size '%s'", s)
	}
	n, err := strconv.ParseInt(l[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size '%s'", s)
	}
	var mult int64
	switch l[i:] {
	case "", "b":
		mult = 1
	case "k", "kb", "kib":
		mult = kib
	case "m", "mb", "mib":
		mult = mib
	case "g", "gb", "gib":
		mult = gib
	case "t", "tb", "tib":
		mult = tib
	case "p", "pb", "pib":
		mult = pib
	default:
		return 0, fmt.Errorf("invalid size '%s'", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size '%s' is too large", s)
	}
	return n * mult, nil
}

// parseTime parses seconds (decimals allowed) and returns milliseconds.
func parseTime(s string) (int64, error) {
	if s == "" || strings.ContainsAny(s, "eExXpPnN_ \t") {
		return 0, fmt.Errorf("invalid time '%s'", s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > 1e12 || f < -1e12 {
		return 0, fmt.Errorf("invalid time '%s'", s)
	}
	return int64(math.Round(f * 1000)), nil
}
