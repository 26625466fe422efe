package config

import (
	"sort"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

const helpTitle = "pgbr (pgBackRest 2.45 compatible)"

// Help returns the text of `pgbr help`, `pgbr help <command>` or
// `pgbr help <command> <option>`. args are the words after the program name;
// a leading "help" and any --options are ignored. Errors (unknown command or
// option) are returned as the text.
func Help(args []string) string {
	s, err := HelpText(args)
	if err != nil {
		return err.Error() + "\n"
	}
	return s
}

// HelpText is Help with errors: [048] for an unknown command, [031] for an
// option that is unknown or not valid for the command.
func HelpText(args []string) (string, error) {
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		words = append(words, a)
	}
	if len(words) > 0 && words[0] == "help" {
		words = words[1:]
	}
	switch len(words) {
	case 0:
		return helpGeneral(), nil
	case 1:
		return helpCommand(words[0])
	default:
		return helpOption(words[0], words[1])
	}
}

func helpGeneral() string {
	var b strings.Builder
	b.WriteString(helpTitle + " - General help\n\nUsage:\n    pgbr [options] [command]\n\nCommands:\n")
	for _, c := range commandNames {
		if internalCommands[c] {
			continue
		}
		b.WriteString("    " + pad(c, 16) + commandDesc[c] + "\n")
	}
	b.WriteString("\nUse 'pgbr help [command]' for more information.\n")
	return b.String()
}

func helpCategory(o *optDef) string {
	switch {
	case o.group == "repo":
		return "Repository Options"
	case o.group == "pg" || o.sec == secStanza:
		return "Stanza Options"
	case strings.HasPrefix(o.name, "log-"):
		return "Log Options"
	case o.sec == secCmdLine || (o.cmds != nil && len(o.cmds) <= 5):
		return "Command Options"
	}
	return "General Options"
}

func helpCommand(cmd string) (string, error) {
	if !commandValid[cmd] {
		return "", errs.New(errs.CommandInvalid, "invalid command '%s'", cmd)
	}
	var b strings.Builder
	b.WriteString(helpTitle + " - '" + cmd + "' command help\n\n" + commandDesc[cmd] + "\n")
	cats := map[string][]*optDef{}
	for _, o := range sortedDefs() {
		if !o.validFor(cmd, roleMain) || o.internalFor(cmd) {
			continue
		}
		cats[helpCategory(o)] = append(cats[helpCategory(o)], o)
	}
	order := []string{"Command Options", "General Options", "Log Options", "Repository Options", "Stanza Options"}
	for _, cat := range order {
		list := cats[cat]
		if len(list) == 0 {
			continue
		}
		b.WriteString("\n" + cat + ":\n\n")
		for _, o := range list {
			name := "--" + o.name
			if o.group != "" {
				name = "--" + fullName(o, 1)
			}
			line := o.desc
			if extra := helpDefault(o, cmd); extra != "" {
				line += " " + extra
			}
			writeWrapped(&b, "  "+pad(name, 33), line, 35, 100)
		}
	}
	b.WriteString("\nUse 'pgbr help " + cmd + " [option]' for more information.\n")
	return b.String(), nil
}

func helpDefault(o *optDef, cmd string) string {
	d, ok := o.defaultFor(cmd)
	if !ok {
		return ""
	}
	if o.typ == tBool {
		if d == "1" {
			d = "y"
		} else {
			d = "n"
		}
	}
	return "[default=" + d + "]"
}

func helpOption(cmd, name string) (string, error) {
	if !commandValid[cmd] {
		return "", errs.New(errs.CommandInvalid, "invalid command '%s'", cmd)
	}
	o, _, _, _, err := parseName(name, false)
	if err != nil {
		return "", err
	}
	if o == nil {
		return "", errs.New(errs.OptionInvalid, "option '%s' is not valid for command '%s'", name, cmd)
	}
	if !o.validFor(cmd, roleMain) {
		return "", errs.New(errs.OptionInvalid, "option '%s' is not valid for command '%s'", name, cmd)
	}
	var b strings.Builder
	b.WriteString(helpTitle + " - '" + cmd + "' command - '" + o.name + "' option help\n\n")
	writeWrapped(&b, "", o.desc, 0, 100)
	b.WriteString("\n")
	if d, ok := o.defaultFor(cmd); ok {
		if o.typ == tBool {
			d = map[string]string{"1": "y", "0": "n"}[d]
		}
		b.WriteString("default: " + d + "\n")
	}
	if allow := o.allowFor(cmd); allow != nil {
		b.WriteString("allowed: " + strings.Join(allow, ", ") + "\n")
	}
	if o.rng != nil {
		lo, hi := fmtNum(o.rng[0]), fmtNum(o.rng[1])
		if o.typ == tSize {
			lo, hi = fmtSize(o.rng[0]), fmtSize(o.rng[1])
		}
		b.WriteString("range: " + lo + " - " + hi + "\n")
	}
	b.WriteString("type: " + o.typ.String() + "\n")
	switch o.sec {
	case secCmdLine:
		b.WriteString("scope: command line / environment only\n")
	case secGlobal:
		b.WriteString("scope: config file [global] or stanza section, environment, command line\n")
	case secStanza:
		b.WriteString("scope: config file stanza section, environment, command line\n")
	}
	if o.group != "" {
		b.WriteString("indexed: " + o.group + "1.." + o.group + "256 (e.g. " + fullName(o, 1) + ")\n")
	}
	if o.secure {
		b.WriteString("secure: not allowed on the command line\n")
	}
	if o.newer != "" {
		b.WriteString("since: " + o.newer + " (not in pgBackRest 2.45)\n")
	}
	env := envPrefix + strings.ToUpper(strings.ReplaceAll(fullName(o, 1), "-", "_"))
	b.WriteString("environment: " + env + "\n")
	if len(o.depr) > 0 {
		var names []string
		for _, d := range o.depr {
			if d != o.name {
				names = append(names, strings.ReplaceAll(d, "?", "N"))
			}
		}
		sort.Strings(names)
		if len(names) > 0 {
			b.WriteString("deprecated names: " + strings.Join(names, ", ") + "\n")
		}
	}
	return b.String(), nil
}

func pad(s string, n int) string {
	if len(s) >= n {
		return s + " "
	}
	return s + strings.Repeat(" ", n-len(s))
}

// writeWrapped writes first + text wrapped at width, continuation lines
// indented by indent spaces.
func writeWrapped(b *strings.Builder, first, text string, indent, width int) {
	line := first
	words := strings.Fields(text)
	lineHasWord := false
	for _, w := range words {
		if lineHasWord && len(line)+1+len(w) > width {
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line = strings.Repeat(" ", indent)
			lineHasWord = false
		}
		if lineHasWord {
			line += " "
		}
		line += w
		lineHasWord = true
	}
	b.WriteString(strings.TrimRight(line, " ") + "\n")
}
