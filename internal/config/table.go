package config

// The option table: one entry per option, the single source of truth for the
// parser, validation, defaults, environment names and help. It follows the
// pgBackRest 2.45 option model (src/build/config/config.yaml): options belong to
// a section (command line only, global or stanza), may be members of the
// indexed groups "repo" and "pg" (repo1-path … repo256-path), are valid for a
// set of commands (and command roles), have per-command defaults, allowed
// values, ranges and dependencies on other options.
//
// A handful of options newer than 2.45 that pgbr supports (mostly S3
// credential options) are included and marked as such in their description.

import (
	"sort"
	"strings"
)

type optType int

const (
	tBool optType = iota
	tInt
	tSize
	tTime
	tString
	tPath
	tEnum // pgBackRest's string-id: a string restricted to an allow list
	tList
	tHash
)

func (t optType) String() string {
	switch t {
	case tBool:
		return "boolean"
	case tInt:
		return "integer"
	case tSize:
		return "size"
	case tTime:
		return "time"
	case tString, tEnum:
		return "string"
	case tPath:
		return "path"
	case tList:
		return "list"
	case tHash:
		return "hash"
	}
	return "unknown"
}

func (t optType) multi() bool { return t == tList || t == tHash }

type section int

const (
	secCmdLine section = iota // command line (and environment) only
	secGlobal                 // any section of a config file
	secStanza                 // stanza sections only ([global] gives a warning)
)

// Command roles.
const (
	roleMain   = "main"
	roleAsync  = "async"
	roleLocal  = "local"
	roleRemote = "remote"
)

// depend: the option is only valid when another option (same index for group
// options) is set, and, when values is not empty, has one of these values.
// For a boolean dependency values are "1"/"0". When the dependency is not met
// the option is unset, or takes dflt when hasDflt.
type depend struct {
	option  string
	values  []string
	dflt    string
	hasDflt bool
}

// cmdRule refines an option for one command.
type cmdRule struct {
	dflt     *string
	required *bool
	allow    []string
	dep      *depend
	roles    []string // nil: the option's roles
	internal bool
}

type optDef struct {
	name     string // canonical name; group options without their index ("repo-path")
	typ      optType
	sec      section
	group    string // "", "repo" or "pg"
	dflt     string
	hasDflt  bool
	required bool
	allow    []string
	rng      *[2]float64         // seconds for time, bytes for size
	cmds     map[string]*cmdRule // nil: valid for every command
	roles    []string            // nil: every role of the command
	dep      *depend
	secure   bool // never on the command line, redacted in logs
	redact   bool // redacted in logs and left out of CommandLineArgs (secure implies it)
	negate   bool
	prefer   bool // a boolean that also takes the value "prefer" (backup-standby, pgBackRest 2.52)
	reset    bool
	internal bool
	beta     bool
	newer    string   // pgBackRest version that introduced it when newer than 2.45
	depr     []string // deprecated names; "db?-path" stands for the indexed forms, "db-path" for the unindexed one
	desc     string
}

var (
	commandNames = []string{
		"annotate", "archive-get", "archive-push", "backup", "check", "expire", "help", "info", "manifest",
		"repo-create", "repo-get", "repo-ls", "repo-put", "repo-rm", "restore", "server", "server-ping",
		"stanza-create", "stanza-delete", "stanza-upgrade", "start", "stop", "verify", "version",
	}
	internalCommands = map[string]bool{"manifest": true, "repo-create": true, "repo-put": true, "repo-rm": true}
	paramCommands    = map[string]bool{
		"archive-get": true, "archive-push": true, "help": true, "repo-get": true, "repo-ls": true,
		"repo-put": true, "repo-rm": true, "server-ping": true,
	}
	commandRoles = map[string][]string{
		"annotate":       {roleMain, roleRemote},
		"archive-get":    {roleMain, roleAsync, roleLocal, roleRemote},
		"archive-push":   {roleMain, roleAsync, roleLocal, roleRemote},
		"backup":         {roleMain, roleLocal, roleRemote},
		"check":          {roleMain, roleRemote},
		"info":           {roleMain, roleRemote},
		"manifest":       {roleMain, roleRemote},
		"repo-create":    {roleMain, roleRemote},
		"repo-get":       {roleMain, roleRemote},
		"repo-ls":        {roleMain, roleRemote},
		"repo-put":       {roleMain, roleRemote},
		"repo-rm":        {roleMain, roleRemote},
		"restore":        {roleMain, roleLocal, roleRemote},
		"stanza-create":  {roleMain, roleRemote},
		"stanza-delete":  {roleMain, roleRemote},
		"stanza-upgrade": {roleMain, roleRemote},
		"verify":         {roleMain, roleLocal, roleRemote},
	}
	commandDesc = map[string]string{
		"annotate":       "Add or modify backup annotation.",
		"archive-get":    "Get a WAL segment from the archive.",
		"archive-push":   "Push a WAL segment to the archive.",
		"backup":         "Backup a database cluster.",
		"check":          "Check the configuration.",
		"expire":         "Expire backups that exceed retention.",
		"help":           "Get help.",
		"info":           "Retrieve information about backups.",
		"manifest":       "Show the manifest of a backup (internal).",
		"repo-create":    "Create the repository (internal).",
		"repo-get":       "Get a file from a repository.",
		"repo-ls":        "List files in a repository.",
		"repo-put":       "Put a file in a repository (internal).",
		"repo-rm":        "Remove files from a repository (internal).",
		"restore":        "Restore a database cluster.",
		"server":         "pgBackRest server.",
		"server-ping":    "Ping pgBackRest server.",
		"stanza-create":  "Create the required stanza data.",
		"stanza-delete":  "Delete a stanza.",
		"stanza-upgrade": "Upgrade a stanza.",
		"start":          "Allow pgBackRest processes to run.",
		"stop":           "Stop pgBackRest processes from running.",
		"verify":         "Verify contents of the repository.",
		"version":        "Get version.",
	}
)

// Command lists shared by several options (main role).
var (
	cmdsBuffer = []string{"annotate", "archive-get", "archive-push", "backup", "check", "expire", "info", "manifest",
		"repo-create", "repo-get", "repo-ls", "repo-put", "repo-rm", "restore", "server", "server-ping",
		"stanza-create", "stanza-delete", "stanza-upgrade", "verify"}
	cmdsCmd = []string{"archive-get", "archive-push", "backup", "check", "info", "manifest", "repo-create",
		"repo-get", "repo-ls", "repo-put", "repo-rm", "restore", "stanza-create", "stanza-delete",
		"stanza-upgrade", "verify"}
	cmdsRepo = []string{"annotate", "archive-get", "archive-push", "backup", "check", "expire", "info", "manifest",
		"repo-create", "repo-get", "repo-ls", "repo-put", "repo-rm", "restore", "stanza-create", "stanza-delete",
		"stanza-upgrade", "verify"}
	cmdsRepoHostCmd = []string{"annotate", "archive-get", "archive-push", "check", "info", "manifest", "repo-create",
		"repo-get", "repo-ls", "repo-put", "repo-rm", "restore", "stanza-create", "stanza-delete",
		"stanza-upgrade", "verify"}
	cmdsRepoLocal = []string{"annotate", "archive-get", "archive-push", "backup", "check", "expire", "info",
		"manifest", "repo-create", "repo-get", "repo-ls", "repo-put", "repo-rm", "restore", "stanza-create",
		"stanza-delete", "stanza-upgrade", "verify"}
	cmdsPgLocal    = []string{"archive-get", "archive-push", "backup", "check", "manifest", "restore", "stanza-create", "stanza-delete", "stanza-upgrade"}
	cmdsPgDatabase = []string{"backup", "check", "stanza-create", "stanza-delete", "stanza-upgrade"}
	cmdsPgHostCmd  = []string{"backup", "check", "manifest", "stanza-create", "stanza-delete", "stanza-upgrade"}
	cmdsLogSub     = []string{"annotate", "archive-get", "archive-push", "backup", "check", "info", "manifest",
		"repo-create", "repo-get", "repo-ls", "repo-put", "repo-rm", "restore", "stanza-create", "stanza-delete",
		"stanza-upgrade", "verify"}
	cmdsRetention = []string{"backup", "expire"}
)

// repoCmds is the command list of repo-type and the options that copy it
// (backup runs them in the main and local roles only, not remote).
func repoCmds() map[string]*cmdRule {
	m := cmds(cmdsRepo...)
	m["backup"] = &cmdRule{roles: []string{roleMain, roleLocal}}
	return m
}

// noRule is the rule of a command that refines nothing. Rules are never
// changed once in the table (the exporter's init copies the ones it
// adapts), so every map shares this one: the table is built at the start
// of every process.
var noRule = &cmdRule{}

// cmds returns a map of empty rules for the commands.
func cmds(names ...string) map[string]*cmdRule {
	m := make(map[string]*cmdRule, len(names))
	for _, n := range names {
		m[n] = noRule
	}
	return m
}

func strp(s string) *string { return &s }
func boolp(b bool) *bool    { return &b }
func rng(lo, hi float64) *[2]float64 {
	return &[2]float64{lo, hi}
}

const (
	kib = 1024
	mib = 1024 * kib
	gib = 1024 * mib
	tib = 1024 * gib
	pib = 1024 * tib
)

var logLevels = []string{"off", "error", "warn", "info", "detail", "debug", "trace"}

// optionTable returns the definitions. Fields not given get these defaults
// (applied in init): required = no default and not marked optional.
func optionTable() []*optDef {
	with := func(m map[string]*cmdRule, cmd string, r *cmdRule) map[string]*cmdRule {
		m[cmd] = r
		return m
	}
	mainOnly := []string{roleMain}
	mainAsync := []string{roleMain, roleAsync}
	mainAsyncLocal := []string{roleMain, roleAsync, roleLocal}
	notReq := boolp(false)
	isReq := boolp(true)
	depType := func(v ...string) *depend { return &depend{option: "type", values: v} }

	return []*optDef{
		// Command-line only options.
		{name: "config", typ: tString, dflt: "/etc/pgbackrest/pgbackrest.conf", hasDflt: true, negate: true,
			desc: "pgBackRest configuration file."},
		{name: "config-include-path", typ: tPath, dflt: "/etc/pgbackrest/conf.d", hasDflt: true,
			desc: "Path to additional pgBackRest configuration files."},
		{name: "config-path", typ: tPath, dflt: "/etc/pgbackrest", hasDflt: true,
			desc: "Base path of pgBackRest configuration files."},
		{name: "dry-run", typ: tBool, dflt: "0", hasDflt: true, cmds: cmds("expire"), roles: mainOnly,
			desc: "Execute a dry-run for the command."},
		{name: "force", typ: tBool, dflt: "0", hasDflt: true, roles: mainOnly,
			cmds: map[string]*cmdRule{
				"backup":        {dep: &depend{option: "online", values: []string{"0"}}},
				"restore":       {},
				"stanza-create": {internal: true},
				"stanza-delete": {},
				"stop":          {},
			},
			desc: "Force the command (backup: offline backup with postmaster.pid present; restore: overwrite; stop: terminate processes)."},
		{name: "online", typ: tBool, dflt: "1", hasDflt: true, negate: true, roles: mainOnly,
			cmds: cmds("backup", "stanza-create", "stanza-upgrade"),
			desc: "Check that the cluster is online (--no-online for an offline backup)."},
		{name: "output", typ: tEnum, dflt: "text", hasDflt: true, allow: []string{"text", "json"}, roles: mainOnly,
			cmds: with(cmds("info", "repo-ls", "manifest"), "verify",
				&cmdRule{dflt: strp("none"), allow: []string{"none", "text"}}),
			desc: "Output format."},
		{name: "progress", typ: tBool, negate: true, roles: mainOnly, newer: "pgbr",
			cmds: cmds("backup", "restore", "verify"),
			desc: "Show a live progress line (files, bytes, rate, time left) (default: when stdout and stderr are terminals)."},
		{name: "set", typ: tString, required: false, roles: mainOnly,
			cmds: map[string]*cmdRule{
				"annotate": {required: isReq},
				"expire":   {},
				"info":     {dep: &depend{option: "stanza"}},
				"manifest": {dflt: strp("latest"), required: isReq},
				"restore":  {dflt: strp("latest"), required: isReq},
				"verify":   {internal: true},
			},
			desc: "Backup set (label) to operate on."},
		{name: "stanza", typ: tString, required: true,
			cmds: map[string]*cmdRule{
				"annotate": {}, "archive-get": {}, "archive-push": {}, "backup": {}, "check": {}, "expire": {},
				"info": {required: notReq}, "manifest": {}, "repo-create": {required: notReq},
				"repo-get": {required: notReq}, "repo-ls": {required: notReq}, "repo-put": {required: notReq},
				"repo-rm": {required: notReq}, "restore": {}, "stanza-create": {}, "stanza-delete": {},
				"stanza-upgrade": {}, "start": {required: notReq}, "stop": {required: notReq}, "verify": {},
			},
			desc: "Defines the stanza."},
		{name: "target", typ: tString, required: true, cmds: cmds("restore"), roles: mainOnly,
			dep: depType("lsn", "name", "time", "xid"), desc: "Recovery target."},
		{name: "target-action", typ: tEnum, dflt: "pause", hasDflt: true, allow: []string{"pause", "promote", "shutdown"},
			cmds: cmds("restore"), roles: mainOnly, dep: depType("immediate", "lsn", "name", "time", "xid"),
			desc: "Action to take when the recovery target is reached."},
		{name: "target-exclusive", typ: tBool, dflt: "0", hasDflt: true, cmds: cmds("restore"), roles: mainOnly,
			dep: depType("lsn", "time", "xid"), desc: "Stop just before the recovery target is reached."},
		{name: "target-timeline", typ: tString, cmds: cmds("restore"), roles: mainOnly,
			dep: depType("default", "lsn", "name", "standby", "time", "xid"), desc: "Recover along a timeline."},
		{name: "type", typ: tEnum, required: true, roles: mainOnly,
			cmds: map[string]*cmdRule{
				"backup": {allow: []string{"full", "diff", "incr"}, dflt: strp("incr")},
				"info":   {allow: []string{"full", "diff", "incr"}, required: notReq},
				"restore": {allow: []string{"lsn", "name", "time", "xid", "preserve", "none", "immediate", "default", "standby"},
					dflt: strp("default")},
			},
			desc: "Backup type (backup: full, diff, incr) or recovery type (restore)."},
		{name: "verbose", typ: tBool, dflt: "0", hasDflt: true, cmds: cmds("verify"), roles: mainOnly,
			desc: "Verbose output."},

		// Command-line only local/remote options.
		{name: "exec-id", typ: tString, internal: true, desc: "Execution id (unique per process tree)."},
		{name: "process", typ: tInt, internal: true, rng: rng(0, 1024), roles: []string{roleLocal, roleRemote},
			cmds: cmds(append([]string{"annotate"}, cmdsCmd...)...), desc: "Process id of a local or remote process."},
		{name: "remote-type", typ: tEnum, internal: true, allow: []string{"pg", "repo"},
			roles: []string{roleLocal, roleRemote}, cmds: cmds(append([]string{"annotate"}, cmdsCmd...)...),
			desc: "Type of remote."},

		// Command-line only storage options.
		{name: "cipher-pass", typ: tString, internal: true, redact: true, cmds: cmds("repo-get", "repo-put"),
			roles: mainOnly, desc: "Cipher passphrase for repo-get/repo-put."},
		{name: "filter", typ: tString, cmds: cmds("manifest", "repo-ls"), roles: mainOnly,
			desc: "Filter output with a regular expression."},
		{name: "ignore-missing", typ: tBool, dflt: "0", hasDflt: true, cmds: cmds("repo-get"), roles: mainOnly,
			desc: "Ignore a missing file."},
		{name: "raw", typ: tBool, dflt: "0", hasDflt: true, cmds: cmds("repo-get", "repo-put"), roles: mainOnly,
			desc: "Do not transform data (no decompression or decryption)."},
		{name: "recurse", typ: tBool, dflt: "0", hasDflt: true, cmds: cmds("repo-ls", "repo-rm"), roles: mainOnly,
			desc: "Include all subpaths."},
		{name: "sort", typ: tEnum, dflt: "asc", hasDflt: true, allow: []string{"none", "asc", "desc"},
			cmds: cmds("repo-ls"), roles: mainOnly, desc: "Sort output."},

		// General options.
		{name: "archive-timeout", sec: secGlobal, typ: tTime, dflt: "60", hasDflt: true, rng: rng(0.1, 86400),
			cmds: cmds("archive-get", "archive-push", "backup", "check"), roles: mainOnly,
			desc: "Archive timeout in seconds: how long to wait for WAL to be archived."},
		{name: "beta", sec: secGlobal, typ: tBool, dflt: "0", hasDflt: true, internal: true,
			desc: "Allow beta features."},
		{name: "buffer-size", sec: secGlobal, typ: tSize, dflt: "1MiB", hasDflt: true,
			allow: []string{"16KiB", "32KiB", "64KiB", "128KiB", "256KiB", "512KiB", "1MiB", "2MiB", "4MiB", "8MiB", "16MiB"},
			cmds:  cmds(cmdsBuffer...), desc: "Buffer size for I/O operations."},
		{name: "cmd", sec: secGlobal, typ: tString, cmds: cmds(cmdsCmd...), roles: mainAsyncLocal,
			desc: "pgBackRest command: the executable to run for local and remote processes."},
		{name: "cmd-ssh", sec: secGlobal, typ: tString, dflt: "ssh", hasDflt: true, required: true,
			cmds: cmds(cmdsCmd...), roles: mainAsyncLocal, desc: "SSH client command."},
		{name: "compress", sec: secGlobal, typ: tBool, dflt: "1", hasDflt: true, negate: true,
			cmds: cmds("archive-push", "backup"), roles: mainOnly,
			desc: "Use file compression (deprecated: use compress-type; n means compress-type=none)."},
		{name: "compress-level", sec: secGlobal, typ: tInt, cmds: cmds("archive-push", "backup"), roles: mainAsync,
			desc: "File compression level (default depends on compress-type: gz 6, bz2 9, lz4 1, zst 3)."},
		{name: "compress-level-network", sec: secGlobal, typ: tInt, dflt: "3", hasDflt: true, rng: rng(0, 9),
			cmds: cmds("annotate", "archive-get", "archive-push", "backup", "check", "info", "manifest", "repo-get",
				"repo-ls", "repo-put", "restore", "stanza-create", "stanza-delete", "stanza-upgrade", "verify"),
			roles: mainAsyncLocal, desc: "Network compression level."},
		{name: "compress-type", sec: secGlobal, typ: tEnum, dflt: "gz", hasDflt: true,
			allow: []string{"none", "bz2", "gz", "lz4", "zst"}, cmds: cmds("archive-push", "backup"), roles: mainAsync,
			desc: "File compression type."},
		{name: "db-timeout", sec: secGlobal, typ: tTime, dflt: "1800", hasDflt: true, rng: rng(0.1, 604800),
			cmds: cmds("archive-get", "archive-push", "backup", "check", "repo-create", "repo-get", "repo-ls",
				"repo-put", "repo-rm", "stanza-create", "stanza-delete", "stanza-upgrade"),
			desc: "Database query timeout in seconds."},
		{name: "delta", sec: secGlobal, typ: tBool, dflt: "0", hasDflt: true, negate: true,
			cmds: cmds("backup", "restore"), roles: mainOnly, desc: "Restore or backup using checksums."},
		{name: "io-timeout", sec: secGlobal, typ: tTime, dflt: "60", hasDflt: true, rng: rng(0.1, 3600),
			cmds: cmds(cmdsBuffer...), desc: "I/O timeout in seconds."},
		{name: "job-retry", sec: secGlobal, typ: tInt, dflt: "2", hasDflt: true, rng: rng(0, 360), internal: true,
			cmds: with(with(cmds("backup", "restore", "verify"), "archive-get", &cmdRule{dflt: strp("1")}),
				"archive-push", &cmdRule{dflt: strp("1")}),
			roles: mainAsyncLocal, desc: "Number of job retries."},
		{name: "job-retry-interval", sec: secGlobal, typ: tTime, dflt: "15", hasDflt: true, rng: rng(0, 900), internal: true,
			cmds: with(with(cmds("backup", "restore", "verify"), "archive-get", &cmdRule{dflt: strp("1")}),
				"archive-push", &cmdRule{dflt: strp("1")}),
			roles: mainAsyncLocal, desc: "Interval between job retries in seconds."},
		{name: "lock-path", sec: secGlobal, typ: tPath, dflt: "/tmp/pgbackrest", hasDflt: true,
			cmds: cmds("annotate", "archive-get", "archive-push", "backup", "expire", "info", "restore",
				"stanza-create", "stanza-delete", "stanza-upgrade", "start", "stop"),
			desc: "Path where lock files are stored."},
		{name: "neutral-umask", sec: secGlobal, typ: tBool, dflt: "1", hasDflt: true, negate: true,
			cmds: cmds("annotate", "archive-get", "archive-push", "backup", "check", "expire", "repo-create",
				"repo-get", "repo-ls", "repo-put", "repo-rm", "restore", "stanza-create", "stanza-delete",
				"stanza-upgrade", "start", "stop", "verify"),
			desc: "Use a neutral umask (0000)."},
		{name: "process-max", sec: secGlobal, typ: tInt, dflt: "1", hasDflt: true, rng: rng(1, 999),
			cmds: cmds("archive-get", "archive-push", "backup", "restore", "verify"), roles: mainAsync,
			desc: "Max processes to use for compress/transfer."},
		{name: "protocol-timeout", sec: secGlobal, typ: tTime, dflt: "1830", hasDflt: true, rng: rng(0.1, 604800),
			cmds: cmds("annotate", "archive-get", "archive-push", "backup", "check", "info", "manifest",
				"repo-create", "repo-get", "repo-ls", "repo-put", "repo-rm", "restore", "server", "stanza-create",
				"stanza-delete", "stanza-upgrade", "verify"),
			desc: "Protocol timeout in seconds (must be greater than db-timeout)."},
		{name: "sck-block", sec: secGlobal, typ: tBool, dflt: "0", hasDflt: true, negate: true, internal: true,
			cmds: cmds(cmdsBuffer...), desc: "Force blocking mode on sockets."},
		{name: "sck-keep-alive", sec: secGlobal, typ: tBool, dflt: "1", hasDflt: true, negate: true,
			cmds: cmds(cmdsBuffer...), desc: "Keep-alive enable."},
		{name: "spool-path", sec: secGlobal, typ: tPath, dflt: "/var/spool/pgbackrest", hasDflt: true,
			roles: mainAsyncLocal,
			cmds: map[string]*cmdRule{
				"archive-get":  {dep: &depend{option: "archive-async", values: []string{"1"}}},
				"archive-push": {dep: &depend{option: "archive-async", values: []string{"1"}}},
				"restore":      {internal: true},
			},
			desc: "Path where transient data is stored (asynchronous archiving)."},
		{name: "tcp-keep-alive-count", sec: secGlobal, typ: tInt, rng: rng(1, 32), cmds: cmds(cmdsBuffer...),
			dep: &depend{option: "sck-keep-alive", values: []string{"1"}}, desc: "Keep-alive count."},
		{name: "tcp-keep-alive-idle", sec: secGlobal, typ: tInt, rng: rng(1, 3600), cmds: cmds(cmdsBuffer...),
			dep: &depend{option: "sck-keep-alive", values: []string{"1"}}, desc: "Keep-alive idle time in seconds."},
		{name: "tcp-keep-alive-interval", sec: secGlobal, typ: tInt, rng: rng(1, 900), cmds: cmds(cmdsBuffer...),
			dep: &depend{option: "sck-keep-alive", values: []string{"1"}}, desc: "Keep-alive interval time in seconds."},
		{name: "tls-server-ca-file", sec: secGlobal, typ: tPath, required: true, cmds: cmds("server"),
			desc: "TLS server certificate authority file."},
		{name: "tls-server-cert-file", sec: secGlobal, typ: tPath, required: true, cmds: cmds("server"),
			desc: "TLS server certificate file."},
		{name: "tls-server-key-file", sec: secGlobal, typ: tPath, required: true, cmds: cmds("server"),
			desc: "TLS server key file."},
		{name: "tls-server-auth", sec: secGlobal, typ: tHash, required: true, cmds: cmds("server"),
			desc: "TLS server authorized clients (client-cn=stanza list)."},
		{name: "tls-server-address", sec: secGlobal, typ: tString, dflt: "localhost", hasDflt: true,
			cmds: cmds("server", "server-ping"), desc: "TLS server address."},
		{name: "tls-server-port", sec: secGlobal, typ: tInt, dflt: "8432", hasDflt: true, rng: rng(1, 65535),
			cmds: cmds("server", "server-ping"), desc: "TLS server port."},

		// Logging options.
		{name: "log-level-console", sec: secGlobal, typ: tEnum, dflt: "warn", hasDflt: true, allow: logLevels,
			desc: "Level for console logging."},
		{name: "log-level-file", sec: secGlobal, typ: tEnum, dflt: "info", hasDflt: true, allow: logLevels,
			desc: "Level for file logging."},
		{name: "log-level-stderr", sec: secGlobal, typ: tEnum, dflt: "warn", hasDflt: true, allow: logLevels,
			desc: "Level for stderr logging."},
		{name: "log-path", sec: secGlobal, typ: tPath, dflt: "/var/log/pgbackrest", hasDflt: true,
			desc: "Path where log files are stored."},
		{name: "log-subprocess", sec: secGlobal, typ: tBool, dflt: "0", hasDflt: true, negate: true,
			cmds: cmds(cmdsLogSub...), desc: "Enable logging in subprocesses."},
		{name: "log-timestamp", sec: secGlobal, typ: tBool, dflt: "1", hasDflt: true, negate: true,
			desc: "Enable timestamp in logging."},

		// Archive options.
		{name: "archive-async", sec: secGlobal, typ: tBool, dflt: "0", hasDflt: true, negate: true,
			cmds: cmds("archive-get", "archive-push"), desc: "Push/get WAL segments asynchronously."},
		{name: "archive-get-queue-max", sec: secGlobal, typ: tSize, dflt: "128MiB", hasDflt: true, rng: rng(0, 4*pib),
			cmds: cmds("archive-get"), roles: mainAsync, desc: "Maximum size of the asynchronous archive-get queue."},
		{name: "archive-header-check", sec: secGlobal, typ: tBool, dflt: "1", hasDflt: true, negate: true,
			cmds: cmds("archive-push"), roles: mainAsync, desc: "Check PostgreSQL version/id in WAL headers."},
		{name: "archive-missing-retry", sec: secGlobal, typ: tBool, dflt: "1", hasDflt: true, negate: true,
			cmds: cmds("archive-get"), roles: mainOnly, desc: "Retry missing WAL segment."},
		{name: "archive-push-queue-max", sec: secGlobal, typ: tSize, rng: rng(0, 4*pib), cmds: cmds("archive-push"),
			roles: mainAsync, depr: []string{"archive-queue-max"},
			desc: "Maximum size of the PostgreSQL archive queue (WAL is dropped when exceeded)."},

		// Backup options.
		{name: "annotation", sec: secGlobal, typ: tHash, roles: mainOnly,
			cmds: with(cmds("backup"), "annotate", &cmdRule{required: isReq}),
			desc: "Annotations (key=value) to add to the backup."},
		{name: "archive-check", sec: secGlobal, typ: tBool, dflt: "1", hasDflt: true, negate: true, roles: mainAsync,
			cmds: with(cmds("archive-push", "check"), "backup",
				&cmdRule{dep: &depend{option: "online", values: []string{"1"}, dflt: "0", hasDflt: true}}),
			desc: "Check that WAL segments are in the archive before backup completes."},
		{name: "archive-copy", sec: secGlobal, typ: tBool, dflt: "0", hasDflt: true, negate: true, roles: mainOnly,
			cmds: with(map[string]*cmdRule{}, "backup",
				&cmdRule{dep: &depend{option: "archive-check", values: []string{"1"}, dflt: "0", hasDflt: true}}),
			desc: "Copy WAL segments needed for consistency to the backup."},
		{name: "archive-mode-check", sec: secGlobal, typ: tBool, dflt: "1", hasDflt: true, negate: true,
			cmds: cmds("archive-push", "backup", "check"), roles: mainAsync,
			dep:  &depend{option: "archive-check", values: []string{"1"}, dflt: "0", hasDflt: true},
			desc: "Check the PostgreSQL archive_mode setting."},
		{name: "backup-standby", sec: secGlobal, typ: tBool, dflt: "0", hasDflt: true, negate: true, prefer: true,
			cmds: cmds("backup", "check"), roles: mainOnly, desc: "Backup from the standby cluster (y, n or prefer)."},
		{name: "checksum-page", sec: secGlobal, typ: tBool, negate: true, cmds: cmds("backup"), roles: mainOnly,
			desc: "Validate data page checksums (default: on when the cluster has checksums)."},
		{name: "exclude", sec: secGlobal, typ: tList, cmds: cmds("backup"), roles: mainOnly,
			desc: "Exclude paths/files from the backup."},
		{name: "expire-auto", sec: secGlobal, typ: tBool, dflt: "1", hasDflt: true, negate: true, cmds: cmds("backup"),
			roles: mainOnly, desc: "Automatically run the expire command after a successful backup."},
		{name: "manifest-save-threshold", sec: secGlobal, typ: tSize, dflt: "1GiB", hasDflt: true, rng: rng(1, tib),
			cmds: cmds("backup"), roles: mainOnly, desc: "Manifest save threshold during backup."},
		{name: "resume", sec: secGlobal, typ: tBool, dflt: "1", hasDflt: true, negate: true, cmds: cmds("backup"),
			roles: mainOnly, desc: "Allow resume of a failed backup."},
		{name: "start-fast", sec: secGlobal, typ: tBool, dflt: "0", hasDflt: true, negate: true, cmds: cmds("backup"),
			roles: mainOnly, desc: "Force a checkpoint to start the backup quickly."},
		{name: "stop-auto", sec: secGlobal, typ: tBool, dflt: "0", hasDflt: true, negate: true, cmds: cmds("backup"),
			roles: mainOnly, desc: "Stop a prior failed backup on a new backup (PostgreSQL < 9.6)."},

		// Restore options.
		{name: "archive-mode", sec: secGlobal, typ: tEnum, dflt: "preserve", hasDflt: true, allow: []string{"off", "preserve"},
			cmds: cmds("restore"), roles: mainOnly, desc: "Preserve or disable archiving on the restored cluster."},
		{name: "db-exclude", sec: secGlobal, typ: tList, cmds: cmds("restore"), roles: mainOnly,
			desc: "Restore excluding the specified databases."},
		{name: "db-include", sec: secGlobal, typ: tList, cmds: cmds("restore"), roles: mainOnly,
			desc: "Restore only the specified databases."},
		{name: "link-all", sec: secGlobal, typ: tBool, dflt: "0", hasDflt: true, negate: true, cmds: cmds("restore"),
			roles: mainOnly, desc: "Restore all symlinks."},
		{name: "link-map", sec: secGlobal, typ: tHash, cmds: cmds("restore"), roles: mainOnly,
			desc: "Modify the destination of a symlink (link=destination)."},
		{name: "tablespace-map", sec: secGlobal, typ: tHash, cmds: cmds("restore"), roles: mainOnly,
			desc: "Restore a tablespace into the specified directory (tablespace=directory)."},
		{name: "tablespace-map-all", sec: secGlobal, typ: tString, cmds: cmds("restore"), roles: mainOnly,
			desc: "Restore all tablespaces into the specified directory."},
		{name: "recovery-option", sec: secGlobal, typ: tHash, cmds: cmds("restore"), roles: mainOnly,
			dep:  depType("default", "immediate", "lsn", "name", "time", "standby", "xid"),
			desc: "Set an option in postgresql.auto.conf/recovery.conf (option=value)."},

		// Stanza (pg) options.
		{name: "pg", typ: tInt, internal: true, rng: rng(1, 256), roles: mainOnly,
			cmds: map[string]*cmdRule{"backup": {roles: []string{roleLocal}}, "manifest": {}},
			desc: "Select the PostgreSQL cluster (pg key)."},
		{name: "pg-database", sec: secStanza, group: "pg", typ: tString, dflt: "postgres", hasDflt: true,
			cmds: cmds(cmdsPgDatabase...), dep: &depend{option: "pg-path"}, desc: "PostgreSQL database."},
		{name: "pg-local", sec: secStanza, group: "pg", typ: tBool, dflt: "0", hasDflt: true, negate: true, internal: true,
			cmds: cmds(cmdsPgLocal...), roles: mainAsyncLocal, desc: "PostgreSQL is local."},
		{name: "pg-host", sec: secStanza, group: "pg", typ: tString, cmds: cmds(cmdsPgLocal...), roles: mainAsyncLocal,
			dep: &depend{option: "pg-local", values: []string{"0"}}, depr: []string{"db-host", "db?-host"},
			desc: "PostgreSQL host for operations (remote)."},
		{name: "pg-host-cert-file", sec: secGlobal, group: "pg", typ: tString, required: true, cmds: cmds(cmdsPgLocal...),
			roles: mainAsyncLocal, dep: &depend{option: "pg-host-type", values: []string{"tls"}},
			desc: "PostgreSQL host TLS certificate file."},
		{name: "pg-host-key-file", sec: secGlobal, group: "pg", typ: tString, required: true, cmds: cmds(cmdsPgLocal...),
			roles: mainAsyncLocal, dep: &depend{option: "pg-host-type", values: []string{"tls"}},
			desc: "PostgreSQL host TLS key file."},
		{name: "pg-host-ca-file", sec: secGlobal, group: "pg", typ: tString, cmds: cmds(cmdsPgLocal...),
			roles: mainAsyncLocal, dep: &depend{option: "pg-host-type", values: []string{"tls"}},
			desc: "PostgreSQL host TLS certificate authority file."},
		{name: "pg-host-ca-path", sec: secGlobal, group: "pg", typ: tString, cmds: cmds(cmdsPgLocal...),
			roles: mainAsyncLocal, dep: &depend{option: "pg-host-type", values: []string{"tls"}},
			desc: "PostgreSQL host TLS certificate authority path."},
		{name: "pg-host-cmd", sec: secStanza, group: "pg", typ: tString, cmds: cmds(cmdsPgHostCmd...), roles: mainAsyncLocal,
			dep: &depend{option: "pg-host"}, depr: []string{"db-cmd", "db?-cmd"},
			desc: "pgBackRest exe path on the PostgreSQL host."},
		{name: "pg-host-config", sec: secStanza, group: "pg", typ: tString, dflt: "/etc/pgbackrest/pgbackrest.conf",
			hasDflt: true, required: true, cmds: cmds(cmdsPgHostCmd...), roles: mainAsyncLocal,
			dep: &depend{option: "pg-host"}, depr: []string{"db-config", "db?-config"},
			desc: "pgBackRest database host configuration file."},
		{name: "pg-host-config-include-path", sec: secStanza, group: "pg", typ: tPath, dflt: "/etc/pgbackrest/conf.d",
			hasDflt: true, cmds: cmds(cmdsPgHostCmd...), roles: mainAsyncLocal, dep: &depend{option: "pg-host"},
			desc: "pgBackRest database host configuration include path."},
		{name: "pg-host-config-path", sec: secStanza, group: "pg", typ: tPath, dflt: "/etc/pgbackrest",
			hasDflt: true, cmds: cmds(cmdsPgHostCmd...), roles: mainAsyncLocal, dep: &depend{option: "pg-host"},
			desc: "pgBackRest database host configuration path."},
		{name: "pg-host-port", sec: secStanza, group: "pg", typ: tInt, rng: rng(0, 65535), cmds: cmds(cmdsPgHostCmd...),
			roles: mainAsyncLocal, dep: &depend{option: "pg-host"}, depr: []string{"db-ssh-port", "db?-ssh-port"},
			desc: "PostgreSQL host port when pg-host is set."},
		{name: "pg-host-user", sec: secStanza, group: "pg", typ: tString, dflt: "postgres", hasDflt: true,
			cmds: cmds(cmdsPgHostCmd...), roles: mainAsyncLocal, dep: &depend{option: "pg-host"},
			depr: []string{"db-user", "db?-user"}, desc: "PostgreSQL host logon user when pg-host is set."},
		{name: "pg-host-type", sec: secGlobal, group: "pg", typ: tEnum, dflt: "ssh", hasDflt: true,
			allow: []string{"ssh", "tls"}, cmds: cmds(cmdsPgLocal...), roles: mainAsyncLocal,
			dep: &depend{option: "pg-local", values: []string{"0"}}, desc: "PostgreSQL host protocol type."},
		{name: "pg-path", sec: secStanza, group: "pg", typ: tPath, required: true,
			cmds: map[string]*cmdRule{
				"archive-get": {}, "archive-push": {required: notReq}, "backup": {}, "check": {},
				"manifest": {required: notReq}, "restore": {}, "stanza-create": {}, "stanza-delete": {},
				"stanza-upgrade": {},
			},
			depr: []string{"db-path", "db?-path"}, desc: "PostgreSQL data directory."},
		{name: "pg-port", sec: secStanza, group: "pg", typ: tInt, dflt: "5432", hasDflt: true, rng: rng(0, 65535),
			cmds: cmds(cmdsPgDatabase...), dep: &depend{option: "pg-path"}, depr: []string{"db-port", "db?-port"},
			desc: "PostgreSQL port."},
		{name: "pg-socket-path", sec: secStanza, group: "pg", typ: tPath, cmds: cmds(cmdsPgDatabase...),
			dep: &depend{option: "pg-path"}, depr: []string{"db-socket-path", "db?-socket-path"},
			desc: "PostgreSQL unix socket path."},
		{name: "pg-user", sec: secStanza, group: "pg", typ: tString, cmds: cmds(cmdsPgDatabase...),
			dep: &depend{option: "pg-path"}, desc: "PostgreSQL database user."},
		{name: "pg-version-force", sec: secStanza, typ: tString, internal: true,
			cmds: cmds("archive-get", "archive-push", "backup", "check", "manifest", "restore", "stanza-create",
				"stanza-delete", "stanza-upgrade", "verify"),
			desc: "Force PostgreSQL version."},

		// Repository options.
		{name: "repo", typ: tInt, rng: rng(1, 256),
			cmds: map[string]*cmdRule{
				"annotate": {}, "archive-get": {roles: []string{roleMain, roleAsync, roleLocal, roleRemote}},
				"archive-push": {roles: []string{roleRemote}}, "backup": {roles: []string{roleMain, roleLocal}},
				"check": {roles: []string{roleRemote}}, "expire": {}, "info": {}, "manifest": {},
				"repo-create": {}, "repo-get": {}, "repo-ls": {}, "repo-put": {}, "repo-rm": {},
				"restore":       {roles: []string{roleMain, roleLocal, roleRemote}},
				"stanza-create": {roles: []string{roleRemote}}, "stanza-delete": {},
				"stanza-upgrade": {roles: []string{roleRemote}}, "start": {roles: []string{}}, "stop": {roles: []string{}},
				"verify": {roles: []string{roleMain, roleLocal, roleRemote}},
			},
			roles: []string{roleMain, roleRemote}, desc: "Set the repository key (repoN) for the command to operate on."},
		{name: "repo-local", sec: secGlobal, group: "repo", typ: tBool, dflt: "0", hasDflt: true, negate: true,
			internal: true, cmds: cmds(cmdsRepoLocal...), roles: mainAsyncLocal, desc: "Repository is local."},
		{name: "repo-type", sec: secGlobal, group: "repo", typ: tEnum, dflt: "posix", hasDflt: true,
			allow: []string{"azure", "cifs", "gcs", "posix", "s3"}, cmds: repoCmds(), depr: []string{"repo-type"},
			desc: "Type of storage used for the repository."},
		{name: "repo-path", sec: secGlobal, group: "repo", typ: tPath, dflt: "/var/lib/pgbackrest", hasDflt: true,
			cmds: repoCmds(), depr: []string{"repo-path"}, desc: "Path where backups and archive are stored."},

		// Azure.
		{name: "repo-azure-account", sec: secGlobal, group: "repo", typ: tString, required: true, secure: true,
			cmds: repoCmds(), dep: &depend{option: "repo-type", values: []string{"azure"}},
			desc: "Azure repository account."},
		{name: "repo-azure-container", sec: secGlobal, group: "repo", typ: tString, required: true,
			cmds: repoCmds(), dep: &depend{option: "repo-type", values: []string{"azure"}},
			desc: "Azure repository container."},
		{name: "repo-azure-endpoint", sec: secGlobal, group: "repo", typ: tString, dflt: "blob.core.windows.net",
			hasDflt: true, secure: true, cmds: repoCmds(),
			dep: &depend{option: "repo-type", values: []string{"azure"}}, desc: "Azure repository endpoint."},
		{name: "repo-azure-key", sec: secGlobal, group: "repo", typ: tString, required: true, secure: true,
			cmds: repoCmds(), dep: &depend{option: "repo-type", values: []string{"azure"}},
			desc: "Azure repository key."},
		{name: "repo-azure-key-type", sec: secGlobal, group: "repo", typ: tEnum, dflt: "shared", hasDflt: true,
			allow: []string{"shared", "sas"}, cmds: repoCmds(),
			dep: &depend{option: "repo-type", values: []string{"azure"}}, desc: "Azure repository key type."},
		{name: "repo-azure-uri-style", sec: secGlobal, group: "repo", typ: tEnum, dflt: "host", hasDflt: true,
			allow: []string{"host", "path"}, cmds: repoCmds(),
			dep: &depend{option: "repo-type", values: []string{"azure"}}, desc: "Azure URI style."},

		// Bundling and block incremental.
		{name: "repo-bundle", sec: secGlobal, group: "repo", typ: tBool, dflt: "0", hasDflt: true, negate: true,
			cmds: cmds("backup"), roles: mainOnly, desc: "Bundle files in the repository."},
		{name: "repo-bundle-size", sec: secGlobal, group: "repo", typ: tSize, dflt: "20MiB", hasDflt: true,
			rng: rng(mib, pib), cmds: cmds("backup"), roles: mainOnly,
			dep: &depend{option: "repo-bundle", values: []string{"1"}}, desc: "Target size for file bundles."},
		{name: "repo-bundle-limit", sec: secGlobal, group: "repo", typ: tSize, dflt: "2MiB", hasDflt: true,
			rng: rng(8*kib, pib), cmds: cmds("backup"), roles: mainOnly,
			dep: &depend{option: "repo-bundle", values: []string{"1"}}, desc: "Limit for file bundles."},
		{name: "repo-block", sec: secGlobal, group: "repo", typ: tBool, dflt: "0", hasDflt: true, negate: true, beta: true,
			cmds: cmds("backup"), roles: mainOnly,
			dep:  &depend{option: "repo-bundle", values: []string{"1"}, dflt: "0", hasDflt: true},
			desc: "Enable block incremental backup (beta in 2.45; requires --beta)."},
		{name: "repo-block-size-map", sec: secGlobal, group: "repo", typ: tHash, beta: true, cmds: cmds("backup"),
			roles: mainOnly, dep: &depend{option: "repo-block", values: []string{"1"}},
			desc: "Block incremental size map (beta)."},
		{name: "repo-block-age-map", sec: secGlobal, group: "repo", typ: tHash, beta: true, cmds: cmds("backup"),
			roles: mainOnly, dep: &depend{option: "repo-block", values: []string{"1"}},
			desc: "Block incremental age map (beta)."},
		{name: "repo-block-checksum-size-map", sec: secGlobal, group: "repo", typ: tHash, beta: true, cmds: cmds("backup"),
			roles: mainOnly, dep: &depend{option: "repo-block", values: []string{"1"}},
			desc: "Block incremental checksum size map (beta)."},
		{name: "repo-block-size-super", sec: secGlobal, group: "repo", typ: tSize, dflt: "256KiB", hasDflt: true,
			rng: rng(32*kib, 16*mib), beta: true, cmds: cmds("backup"), roles: mainOnly,
			dep: &depend{option: "repo-block", values: []string{"1"}}, desc: "Block incremental super block size (beta)."},
		{name: "repo-block-size-super-full", sec: secGlobal, group: "repo", typ: tSize, dflt: "1MiB", hasDflt: true,
			rng: rng(32*kib, 16*mib), beta: true, cmds: cmds("backup"), roles: mainOnly,
			dep:  &depend{option: "repo-block", values: []string{"1"}},
			desc: "Block incremental super block size for full backups (beta)."},

		// Encryption.
		{name: "repo-cipher-pass", sec: secGlobal, group: "repo", typ: tString, required: true, secure: true,
			cmds: repoCmds(), dep: &depend{option: "repo-cipher-type", values: []string{"aes-256-cbc"}},
			depr: []string{"repo-cipher-pass"}, desc: "Repository cipher passphrase."},
		{name: "repo-cipher-type", sec: secGlobal, group: "repo", typ: tEnum, dflt: "none", hasDflt: true,
			allow: []string{"none", "aes-256-cbc"}, cmds: repoCmds(), depr: []string{"repo-cipher-type"},
			desc: "Cipher used to encrypt the repository."},

		// GCS.
		{name: "repo-gcs-bucket", sec: secGlobal, group: "repo", typ: tString, required: true, cmds: repoCmds(),
			dep: &depend{option: "repo-type", values: []string{"gcs"}}, desc: "GCS repository bucket."},
		{name: "repo-gcs-endpoint", sec: secGlobal, group: "repo", typ: tString, dflt: "storage.googleapis.com",
			hasDflt: true, cmds: repoCmds(), dep: &depend{option: "repo-type", values: []string{"gcs"}},
			desc: "GCS repository endpoint."},
		{name: "repo-gcs-key", sec: secGlobal, group: "repo", typ: tString, required: true, secure: true,
			cmds: repoCmds(), dep: &depend{option: "repo-gcs-key-type", values: []string{"service", "token"}},
			desc: "GCS repository key (service account key file or token)."},
		{name: "repo-gcs-key-type", sec: secGlobal, group: "repo", typ: tEnum, dflt: "service", hasDflt: true,
			allow: []string{"auto", "service", "token"}, cmds: repoCmds(),
			dep: &depend{option: "repo-type", values: []string{"gcs"}}, desc: "GCS repository key type."},

		{name: "repo-hardlink", sec: secGlobal, group: "repo", typ: tBool, dflt: "0", hasDflt: true, negate: true,
			cmds: cmds("backup"), roles: mainOnly,
			dep:  &depend{option: "repo-bundle", values: []string{"0"}, dflt: "0", hasDflt: true},
			depr: []string{"hardlink"}, desc: "Hardlink files between backups in the repository."},

		// Repository host.
		{name: "repo-host", sec: secGlobal, group: "repo", typ: tString, cmds: cmds(cmdsRepoLocal...),
			roles: mainAsyncLocal, dep: &depend{option: "repo-local", values: []string{"0"}},
			depr: []string{"backup-host"}, desc: "Repository host when operating remotely."},
		{name: "repo-host-type", sec: secGlobal, group: "repo", typ: tEnum, dflt: "ssh", hasDflt: true,
			allow: []string{"ssh", "tls"}, cmds: cmds(cmdsRepoLocal...), roles: mainAsyncLocal,
			dep: &depend{option: "repo-local", values: []string{"0"}}, desc: "Repository host protocol type."},
		{name: "repo-host-cert-file", sec: secGlobal, group: "repo", typ: tString, required: true,
			cmds: cmds(cmdsRepoLocal...), roles: mainAsyncLocal,
			dep: &depend{option: "repo-host-type", values: []string{"tls"}}, desc: "Repository host certificate file."},
		{name: "repo-host-key-file", sec: secGlobal, group: "repo", typ: tString, required: true,
			cmds: cmds(cmdsRepoLocal...), roles: mainAsyncLocal,
			dep: &depend{option: "repo-host-type", values: []string{"tls"}}, desc: "Repository host key file."},
		{name: "repo-host-ca-file", sec: secGlobal, group: "repo", typ: tString, cmds: cmds(cmdsRepoLocal...),
			roles: mainAsyncLocal, dep: &depend{option: "repo-host-type", values: []string{"tls"}},
			desc: "Repository host certificate authority file."},
		{name: "repo-host-ca-path", sec: secGlobal, group: "repo", typ: tString, cmds: cmds(cmdsRepoLocal...),
			roles: mainAsyncLocal, dep: &depend{option: "repo-host-type", values: []string{"tls"}},
			desc: "Repository host certificate authority path."},
		{name: "repo-host-cmd", sec: secGlobal, group: "repo", typ: tString, cmds: cmds(cmdsRepoHostCmd...),
			roles: mainAsyncLocal, dep: &depend{option: "repo-host"}, depr: []string{"backup-cmd"},
			desc: "pgBackRest exe path on the repository host."},
		{name: "repo-host-config", sec: secGlobal, group: "repo", typ: tString, dflt: "/etc/pgbackrest/pgbackrest.conf",
			hasDflt: true, cmds: cmds(cmdsRepoHostCmd...), roles: mainAsyncLocal, dep: &depend{option: "repo-host"},
			depr: []string{"backup-config"}, desc: "pgBackRest repository host configuration file."},
		{name: "repo-host-config-include-path", sec: secGlobal, group: "repo", typ: tPath, dflt: "/etc/pgbackrest/conf.d",
			hasDflt: true, cmds: cmds(cmdsRepoHostCmd...), roles: mainAsyncLocal, dep: &depend{option: "repo-host"},
			desc: "pgBackRest repository host configuration include path."},
		{name: "repo-host-config-path", sec: secGlobal, group: "repo", typ: tPath, dflt: "/etc/pgbackrest",
			hasDflt: true, cmds: cmds(cmdsRepoHostCmd...), roles: mainAsyncLocal, dep: &depend{option: "repo-host"},
			desc: "pgBackRest repository host configuration path."},
		{name: "repo-host-port", sec: secGlobal, group: "repo", typ: tInt, rng: rng(0, 65535),
			cmds: cmds(cmdsRepoHostCmd...), roles: mainAsyncLocal, dep: &depend{option: "repo-host"},
			depr: []string{"backup-ssh-port"}, desc: "Repository host port when repo-host is set."},
		{name: "repo-host-user", sec: secGlobal, group: "repo", typ: tString, dflt: "pgbackrest", hasDflt: true,
			cmds: cmds(cmdsRepoHostCmd...), roles: mainAsyncLocal, dep: &depend{option: "repo-host"},
			depr: []string{"backup-user"}, desc: "Repository host user when repo-host is set."},

		// Retention.
		{name: "repo-retention-archive", sec: secGlobal, group: "repo", typ: tInt, rng: rng(1, 9999999),
			cmds: cmds(cmdsRetention...), roles: mainOnly, depr: []string{"retention-archive"},
			desc: "Number of backups worth of continuous WAL to retain."},
		{name: "repo-retention-archive-type", sec: secGlobal, group: "repo", typ: tEnum, dflt: "full", hasDflt: true,
			allow: []string{"full", "diff", "incr"}, cmds: cmds(cmdsRetention...), roles: mainOnly,
			depr: []string{"retention-archive-type"}, desc: "Backup type for WAL retention."},
		{name: "repo-retention-diff", sec: secGlobal, group: "repo", typ: tInt, rng: rng(1, 9999999),
			cmds: cmds(cmdsRetention...), roles: mainOnly, depr: []string{"retention-diff"},
			desc: "Number of differential backups to retain."},
		{name: "repo-retention-full", sec: secGlobal, group: "repo", typ: tInt, rng: rng(1, 9999999),
			cmds: cmds(cmdsRetention...), roles: mainOnly, depr: []string{"retention-full"},
			desc: "Full backup retention count/time."},
		{name: "repo-retention-full-type", sec: secGlobal, group: "repo", typ: tEnum, dflt: "count", hasDflt: true,
			allow: []string{"count", "time"}, cmds: cmds(cmdsRetention...), roles: mainOnly,
			desc: "Retention type for full backups."},
		{name: "repo-retention-history", sec: secGlobal, group: "repo", typ: tInt, rng: rng(0, 9999999),
			cmds: cmds(cmdsRetention...), roles: mainOnly, desc: "Days of backup history manifests to retain."},

		// S3.
		{name: "repo-s3-bucket", sec: secGlobal, group: "repo", typ: tString, required: true, cmds: repoCmds(),
			dep: &depend{option: "repo-type", values: []string{"s3"}}, depr: []string{"repo-s3-bucket"},
			desc: "S3 repository bucket."},
		{name: "repo-s3-endpoint", sec: secGlobal, group: "repo", typ: tString, required: true, cmds: repoCmds(),
			dep: &depend{option: "repo-type", values: []string{"s3"}}, depr: []string{"repo-s3-endpoint"},
			desc: "S3 repository endpoint."},
		{name: "repo-s3-region", sec: secGlobal, group: "repo", typ: tString, required: true, cmds: repoCmds(),
			dep: &depend{option: "repo-type", values: []string{"s3"}}, depr: []string{"repo-s3-region"},
			desc: "S3 repository region."},
		{name: "repo-s3-key", sec: secGlobal, group: "repo", typ: tString, required: true, secure: true,
			cmds: repoCmds(), dep: &depend{option: "repo-s3-key-type", values: []string{"shared"}},
			depr: []string{"repo-s3-key"}, desc: "S3 repository access key."},
		{name: "repo-s3-key-secret", sec: secGlobal, group: "repo", typ: tString, required: true, secure: true,
			cmds: repoCmds(), dep: &depend{option: "repo-s3-key-type", values: []string{"shared"}},
			depr: []string{"repo-s3-key-secret"}, desc: "S3 repository secret access key."},
		{name: "repo-s3-key-type", sec: secGlobal, group: "repo", typ: tEnum, dflt: "shared", hasDflt: true,
			allow: []string{"shared", "auto", "web-id", "pod-id", "process"}, cmds: repoCmds(),
			dep:  &depend{option: "repo-type", values: []string{"s3"}},
			desc: "S3 repository key type (shared, auto = instance role, web-id, pod-id, process; pod-id and process are newer than 2.45)."},
		{name: "repo-s3-kms-key-id", sec: secGlobal, group: "repo", typ: tString, cmds: repoCmds(),
			dep: &depend{option: "repo-type", values: []string{"s3"}}, desc: "S3 repository KMS key."},
		{name: "repo-s3-role", sec: secGlobal, group: "repo", typ: tString, cmds: repoCmds(),
			dep:  &depend{option: "repo-s3-key-type", values: []string{"auto"}},
			desc: "S3 repository instance role name (repo-s3-key-type=auto)."},
		{name: "repo-s3-token", sec: secGlobal, group: "repo", typ: tString, secure: true, cmds: repoCmds(),
			dep: &depend{option: "repo-s3-key-type", values: []string{"shared"}}, depr: []string{"repo-s3-token"},
			desc: "S3 repository security token."},
		{name: "repo-s3-uri-style", sec: secGlobal, group: "repo", typ: tEnum, dflt: "host", hasDflt: true,
			allow: []string{"host", "path"}, cmds: repoCmds(),
			dep: &depend{option: "repo-type", values: []string{"s3"}}, desc: "S3 URI style (host or path)."},
		{name: "repo-s3-sse-customer-key", sec: secGlobal, group: "repo", typ: tString, secure: true, newer: "2.52",
			cmds: repoCmds(), dep: &depend{option: "repo-type", values: []string{"s3"}},
			desc: "S3 repository SSE-C customer key (base64)."},
		{name: "repo-s3-requester-pays", sec: secGlobal, group: "repo", typ: tBool, dflt: "0", hasDflt: true,
			negate: true, newer: "2.55", cmds: repoCmds(), dep: &depend{option: "repo-type", values: []string{"s3"}},
			desc: "S3 repository requester pays."},
		{name: "repo-s3-sts-host", sec: secGlobal, group: "repo", typ: tString, newer: "2.59", cmds: repoCmds(),
			dep:  &depend{option: "repo-s3-key-type", values: []string{"web-id"}},
			desc: "STS host (and optional :port) for web identity credentials."},
		{name: "repo-s3-web-id-token-file", sec: secGlobal, group: "repo", typ: tPath, newer: "pgbr",
			cmds: repoCmds(), dep: &depend{option: "repo-s3-key-type", values: []string{"web-id"}},
			desc: "Web identity token file (default: AWS_WEB_IDENTITY_TOKEN_FILE)."},
		{name: "repo-s3-role-arn", sec: secGlobal, group: "repo", typ: tString, newer: "pgbr",
			cmds: repoCmds(), dep: &depend{option: "repo-s3-key-type", values: []string{"web-id"}},
			desc: "Role ARN to assume with the web identity token (default: AWS_ROLE_ARN)."},
		{name: "repo-s3-role-session-name", sec: secGlobal, group: "repo", typ: tString, newer: "pgbr",
			cmds: repoCmds(), dep: &depend{option: "repo-s3-key-type", values: []string{"web-id"}},
			desc: "STS role session name (default: AWS_ROLE_SESSION_NAME, then pgBackRest)."},
		{name: "repo-s3-sts-regional-endpoints", sec: secGlobal, group: "repo", typ: tEnum, newer: "pgbr",
			allow: []string{"regional", "legacy"}, cmds: repoCmds(),
			dep:  &depend{option: "repo-s3-key-type", values: []string{"web-id"}},
			desc: "STS endpoint when repo-s3-sts-host is not set: regional (sts.<region>.amazonaws.com) or legacy (sts.amazonaws.com) (default: AWS_STS_REGIONAL_ENDPOINTS, then regional)."},
		{name: "repo-s3-pod-id-uri", sec: secGlobal, group: "repo", typ: tString, newer: "pgbr",
			cmds: repoCmds(), dep: &depend{option: "repo-s3-key-type", values: []string{"pod-id"}},
			desc: "EKS pod identity agent URI (default: AWS_CONTAINER_CREDENTIALS_FULL_URI)."},
		{name: "repo-s3-pod-id-token-file", sec: secGlobal, group: "repo", typ: tPath, newer: "pgbr",
			cmds: repoCmds(), dep: &depend{option: "repo-s3-key-type", values: []string{"pod-id"}},
			desc: "EKS pod identity authorization token file (default: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)."},
		{name: "repo-s3-imds-endpoint", sec: secGlobal, group: "repo", typ: tString, newer: "pgbr",
			cmds: repoCmds(), dep: &depend{option: "repo-s3-key-type", values: []string{"auto"}},
			desc: "EC2 instance metadata endpoint (default: AWS_EC2_METADATA_SERVICE_ENDPOINT, then http://169.254.169.254)."},
		{name: "repo-s3-process-cmd", sec: secGlobal, group: "repo", typ: tList, newer: "2.59", cmds: repoCmds(),
			dep:  &depend{option: "repo-s3-key-type", values: []string{"process"}},
			desc: "Command (and arguments) printing AWS credential-process JSON (repo-s3-key-type=process)."},
		{name: "repo-s3-service", sec: secGlobal, group: "repo", typ: tString, dflt: "s3", hasDflt: true, newer: "2.59",
			cmds: repoCmds(), dep: &depend{option: "repo-type", values: []string{"s3"}},
			desc: "SigV4 service name."},

		// Object storage connection.
		{name: "repo-storage-verify-tls", sec: secGlobal, group: "repo", typ: tBool, dflt: "1", hasDflt: true,
			negate: true, cmds: repoCmds(), dep: &depend{option: "repo-type", values: []string{"azure", "gcs", "s3"}},
			depr: []string{"repo-s3-verify-ssl", "repo?-azure-verify-tls", "repo?-s3-verify-ssl", "repo?-s3-verify-tls"},
			desc: "Repository storage certificate verify."},
		{name: "repo-storage-ca-file", sec: secGlobal, group: "repo", typ: tString, cmds: repoCmds(),
			dep:  &depend{option: "repo-type", values: []string{"azure", "gcs", "s3"}},
			depr: []string{"repo-s3-ca-file", "repo?-azure-ca-file", "repo?-s3-ca-file"},
			desc: "Repository storage CA file."},
		{name: "repo-storage-ca-path", sec: secGlobal, group: "repo", typ: tPath, cmds: repoCmds(),
			dep:  &depend{option: "repo-type", values: []string{"azure", "gcs", "s3"}},
			depr: []string{"repo-s3-ca-path", "repo?-azure-ca-path", "repo?-s3-ca-path"},
			desc: "Repository storage CA path."},
		{name: "repo-storage-host", sec: secGlobal, group: "repo", typ: tString, cmds: repoCmds(),
			dep:  &depend{option: "repo-type", values: []string{"azure", "s3"}},
			depr: []string{"repo-s3-host", "repo?-azure-host", "repo?-s3-host"},
			desc: "Repository storage host (default: the endpoint)."},
		{name: "repo-storage-port", sec: secGlobal, group: "repo", typ: tInt, dflt: "443", hasDflt: true,
			rng: rng(1, 65535), cmds: repoCmds(), dep: &depend{option: "repo-type", values: []string{"azure", "s3"}},
			depr: []string{"repo?-azure-port", "repo?-s3-port"}, desc: "Repository storage port."},
		{name: "repo-storage-upload-chunk-size", sec: secGlobal, group: "repo", typ: tSize, rng: rng(64*kib, tib),
			cmds: repoCmds(), dep: &depend{option: "repo-type", values: []string{"azure", "gcs", "s3"}},
			desc: "Repository storage upload chunk size (default: 5MiB for s3, 4MiB otherwise)."},
		{name: "repo-storage-tag", sec: secGlobal, group: "repo", typ: tHash, newer: "2.48", cmds: repoCmds(),
			dep:  &depend{option: "repo-type", values: []string{"azure", "gcs", "s3"}},
			desc: "Repository storage tags (key=value) set on written objects."},
	}
}

// ------------------------------------------------------------------------------------------------------------------
// Lookup structures built once from the table.

var (
	optDefs      []*optDef
	optByName    map[string]*optDef
	deprUnindex  map[string]*optDef // deprecated name usable without index (maps to index 1)
	deprIndexed  map[string]*optDef // deprecated base name usable with an index ("db-path" for db2-path)
	commandValid map[string]bool
)

func init() {
	optDefs = optionTable()
	sortedDefsCache = append([]*optDef(nil), optDefs...)
	sort.Slice(sortedDefsCache, func(i, j int) bool { return sortedDefsCache[i].name < sortedDefsCache[j].name })
	optByName = make(map[string]*optDef, len(optDefs))
	deprUnindex = map[string]*optDef{}
	deprIndexed = map[string]*optDef{}
	commandValid = map[string]bool{}
	for _, c := range commandNames {
		commandValid[c] = true
	}
	for _, o := range optDefs {
		optByName[o.name] = o
		if o.sec != secCmdLine {
			o.reset = true
			if o.typ == tBool {
				o.negate = true
			}
		}
		if o.secure {
			o.redact = true
		}
		// Options without a default are required unless marked optional. The
		// table marks required ones explicitly, so nothing to do here; this keeps
		// the rule visible in one place.
		for _, d := range o.depr {
			if i := strings.Index(d, "?"); i >= 0 {
				deprIndexed[d[:i]+d[i+1:]] = o
			} else if d != o.name {
				deprUnindex[d] = o
			}
		}
	}
}

// validFor reports whether the option may be used by the command in the role.
func (o *optDef) validFor(cmd, role string) bool {
	var rule *cmdRule
	if o.cmds == nil && (cmd == "help" || cmd == "version") {
		return false
	}
	if o.cmds != nil {
		r, ok := o.cmds[cmd]
		if !ok {
			return false
		}
		rule = r
	}
	if role == "" {
		role = roleMain
	}
	roles := o.roles
	if rule != nil && rule.roles != nil {
		roles = rule.roles
	}
	if roles == nil {
		if cr, ok := commandRoles[cmd]; ok {
			return contains(cr, role)
		}
		return role == roleMain
	}
	if !contains(roles, role) {
		return false
	}
	if cr, ok := commandRoles[cmd]; ok {
		return contains(cr, role)
	}
	return role == roleMain
}

func (o *optDef) rule(cmd string) *cmdRule {
	if o.cmds == nil {
		return nil
	}
	return o.cmds[cmd]
}

// defaultFor returns the default for the command.
func (o *optDef) defaultFor(cmd string) (string, bool) {
	if r := o.rule(cmd); r != nil && r.dflt != nil {
		return *r.dflt, true
	}
	return o.dflt, o.hasDflt
}

func (o *optDef) requiredFor(cmd string) bool {
	if r := o.rule(cmd); r != nil && r.required != nil {
		return *r.required
	}
	return o.required
}

func (o *optDef) allowFor(cmd string) []string {
	if r := o.rule(cmd); r != nil && r.allow != nil {
		return r.allow
	}
	return o.allow
}

func (o *optDef) dependFor(cmd string) *depend {
	if r := o.rule(cmd); r != nil && r.dep != nil {
		return r.dep
	}
	return o.dep
}

func (o *optDef) internalFor(cmd string) bool {
	if o.internal {
		return true
	}
	if r := o.rule(cmd); r != nil {
		return r.internal
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
