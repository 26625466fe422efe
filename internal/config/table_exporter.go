package config

import (
	"slices"
	"sort"
)

// pgbr's own command "exporter" (Prometheus metrics over HTTP, compatible
// with pgbackrest_exporter) is not a pgBackRest command. It reads what info
// reads, so it takes every option info takes (except the output format and
// the backup set) plus exporter-host and exporter-port.
//
// lock-path is also made valid for every command that runs: each command
// leaves its metrics state file under lock-path (pgBackRest 2.45 reads
// lock-path only for the commands that take locks).

func init() {
	// The command itself, in sorted position ("expire" < "exporter").
	i := sort.SearchStrings(commandNames, "exporter")
	commandNames = slices.Insert(commandNames, i, "exporter")
	commandValid["exporter"] = true
	commandDesc["exporter"] = "Serve Prometheus metrics of the repositories (pgbr only)."

	for _, o := range optDefs {
		if o.cmds == nil {
			continue
		}
		if r, ok := o.cmds["info"]; ok && o.name != "output" && o.name != "set" {
			cp := *r
			o.cmds["exporter"] = &cp
		}
		if o.name == "lock-path" {
			for _, c := range commandNames {
				if _, ok := o.cmds[c]; !ok && c != "help" && c != "version" && !internalCommands[c] &&
					c != "server" && c != "server-ping" {
					o.cmds[c] = &cmdRule{}
				}
			}
		}
	}

	add := []*optDef{
		{name: "exporter-host", sec: secGlobal, typ: tString, dflt: "127.0.0.1", hasDflt: true,
			cmds: cmds("exporter"), roles: []string{roleMain},
			desc: "Address the exporter listens on (pgbr only)."},
		{name: "exporter-port", sec: secGlobal, typ: tInt, dflt: "9854", hasDflt: true, rng: rng(0, 65535),
			cmds: cmds("exporter"), roles: []string{roleMain},
			desc: "TCP port the exporter listens on (pgbr only; 9854 as pgbackrest_exporter)."},
	}
	for _, o := range add {
		o.reset = true
		optDefs = append(optDefs, o)
		optByName[o.name] = o
		sortedDefsCache = append(sortedDefsCache, o)
	}
	sort.Slice(sortedDefsCache, func(i, j int) bool { return sortedDefsCache[i].name < sortedDefsCache[j].name })
}
