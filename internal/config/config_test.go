package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// writeConf writes a config file in a temp dir and returns its path.
func writeConf(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "pgbackrest.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustParse(t *testing.T, args []string, env []string) *Config {
	t.Helper()
	c, err := Parse(args, env)
	if err != nil {
		t.Fatalf("Parse(%q): %v", args, err)
	}
	return c
}

func TestBasic(t *testing.T) {
	conf := writeConf(t, `
[global]
repo1-path=/var/lib/pgbackrest
repo1-retention-full=2
compress-type=zst
log-level-console=info

[main]
pg1-path=/var/lib/postgresql/15/main
`)
	c := mustParse(t, []string{"--config=" + conf, "--stanza=main", "backup", "--type=full"}, nil)
	checks := map[string]string{
		"repo1-path": "/var/lib/pgbackrest", "pg1-path": "/var/lib/postgresql/15/main",
		"compress-type": "zst", "compress-level": "3", "type": "full", "stanza": "main",
		"log-level-console": "info", "pg1-port": "5432", "repo1-type": "posix", "process-max": "1",
		"repo1-retention-archive": "2", "buffer-size": "1MiB", "start-fast": "n", "online": "y",
	}
	for k, want := range checks {
		if got := c.String(testOpt(t, k)); got != want {
			t.Errorf("String(%q) = %q, want %q", k, got, want)
		}
	}
	if c.Command() != "backup" {
		t.Errorf("command %q", c.Command())
	}
	if got := c.Size(BufferSize); got != 1<<20 {
		t.Errorf("buffer-size %d", got)
	}
	if got := c.Duration(ArchiveTimeout); got != 60*time.Second {
		t.Errorf("archive-timeout %v", got)
	}
	if got := c.Int(CompressLevel); got != 3 {
		t.Errorf("compress-level %d", got)
	}
	if c.Source(CompressType) != SourceConfig || c.Source(Type) != SourceParam || c.Source(PgPort.Index(1)) != SourceDefault {
		t.Errorf("sources: %v %v %v", c.Source(CompressType), c.Source(Type), c.Source(PgPort.Index(1)))
	}
	if !c.IsSet(RepoPath.Index(1)) || c.IsSet(PgPort.Index(1)) {
		t.Errorf("IsSet wrong")
	}
	if !reflect.DeepEqual(c.RepoKeys(), []int{1}) || !reflect.DeepEqual(c.PgKeys(), []int{1}) {
		t.Errorf("keys %v %v", c.RepoKeys(), c.PgKeys())
	}
	if len(c.Warnings()) != 0 {
		t.Errorf("warnings: %q", c.Warnings())
	}
}

func TestPrecedence(t *testing.T) {
	conf := writeConf(t, `
[global]
process-max=1
compress-level=1
log-level-file=debug
buffer-size=64KiB
exclude=g1
exclude=g2

[global:backup]
process-max=2
compress-level=2
exclude=gb

[main]
pg1-path=/pg
process-max=3
archive-timeout=30

[main:backup]
process-max=4

[other]
process-max=9
`)
	base := []string{"--config=" + conf, "--stanza=main"}
	tests := []struct {
		name string
		args []string
		env  []string
		opt  string
		want string
		src  Source
	}{
		{"stanza:command wins", []string{"backup"}, nil, "process-max", "4", SourceConfig},
		{"stanza over global:command", []string{"backup"}, nil, "archive-timeout", "30", SourceConfig},
		{"global:command over global", []string{"backup"}, nil, "compress-level", "2", SourceConfig},
		{"global", []string{"backup"}, nil, "log-level-file", "debug", SourceConfig},
		{"stanza section for other command", []string{"restore"}, nil, "process-max", "3", SourceConfig},
		{"env over file", []string{"backup"}, []string{"PGBACKREST_PROCESS_MAX=5"}, "process-max", "5", SourceEnv},
		{"cli over env", []string{"backup", "--process-max=6"}, []string{"PGBACKREST_PROCESS_MAX=5"}, "process-max", "6", SourceParam},
		{"list from winning section only", []string{"backup"}, nil, "exclude", "gb", SourceConfig},
		{"list from global", []string{"stanza-create"}, nil, "exclude", "", SourceDefault},
		{"reset uses default", []string{"backup", "--reset-process-max"}, nil, "process-max", "1", SourceDefault},
		{"env list", []string{"restore"}, []string{"PGBACKREST_DB_INCLUDE=a:b"}, "db-include", "a:b", SourceEnv},
		{"cli list repeated", []string{"backup", "--exclude=x", "--exclude", "y"}, nil, "exclude", "x:y", SourceParam},
		{"size in file", []string{"backup"}, nil, "buffer-size", "64KiB", SourceConfig},
		{"other stanza ignored", []string{"backup", "--stanza=main"}, nil, "process-max", "4", SourceConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(append([]string{}, base...), tt.args...)
			if tt.name == "other stanza ignored" {
				args = append([]string{"--config=" + conf}, tt.args...)
			}
			c := mustParse(t, args, tt.env)
			if got := c.String(testOpt(t, tt.opt)); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.opt, got, tt.want)
			}
			if got := c.Source(testOpt(t, tt.opt)); got != tt.src {
				t.Errorf("source %v, want %v", got, tt.src)
			}
		})
	}
}

func TestBooleans(t *testing.T) {
	conf := writeConf(t, "[global]\nstart-fast=y\ndelta=n\n[main]\npg1-path=/pg\n")
	base := []string{"--config=" + conf, "--stanza=main", "backup"}
	tests := []struct {
		args []string
		env  []string
		opt  string
		want bool
		set  bool
	}{
		{nil, nil, "start-fast", true, true},
		{nil, nil, "delta", false, true},
		{[]string{"--no-start-fast"}, nil, "start-fast", false, true},
		{[]string{"--start-fast=n"}, nil, "start-fast", false, true},
		{[]string{"--delta"}, nil, "delta", true, true},
		{[]string{"--delta=y"}, nil, "delta", true, true},
		{[]string{"--reset-start-fast"}, nil, "start-fast", false, false},
		{nil, []string{"PGBACKREST_START_FAST=n"}, "start-fast", false, true},
		{nil, nil, "resume", true, false},
		{[]string{"--no-online", "--force"}, nil, "force", true, true},
		{[]string{"--no-online"}, nil, "archive-check", false, false},
	}
	for _, tt := range tests {
		c := mustParse(t, append(append([]string{}, base...), tt.args...), tt.env)
		if got := c.Bool(testOpt(t, tt.opt)); got != tt.want {
			t.Errorf("%v %v: %s = %v, want %v", tt.args, tt.env, tt.opt, got, tt.want)
		}
		if got := c.IsSet(testOpt(t, tt.opt)); got != tt.set {
			t.Errorf("%v %v: IsSet(%s) = %v, want %v", tt.args, tt.env, tt.opt, got, tt.set)
		}
	}
}

func TestConfigFileSelection(t *testing.T) {
	dir := t.TempDir()
	mk := func(rel, text string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mk("base/pgbackrest.conf", "[global]\nrepo1-path=/from-base\n[main]\npg1-path=/pg\n")
	mk("base/conf.d/10-a.conf", "[global]\nlog-level-file=detail\n")
	mk("base/conf.d/20-b.conf", "[main]\npg1-port=5433\n")
	mk("base/conf.d/ignored.txt", "[global]\nlog-path=/nope\n")
	mk("inc/x.conf", "[global]\nlog-level-file=debug\n")
	other := mk("other.conf", "[global]\nrepo1-path=/from-other\n[main]\npg1-path=/pg\n")

	t.Run("config-path with conf.d", func(t *testing.T) {
		c := mustParse(t, []string{"--config-path=" + dir + "/base", "--stanza=main", "check"}, nil)
		if c.String(RepoPath.Index(1)) != "/from-base" || c.String(LogLevelFile) != "detail" ||
			c.String(PgPort.Index(1)) != "5433" || c.String(LogPath) != "/var/log/pgbackrest" {
			t.Errorf("got %q %q %q %q", c.String(RepoPath.Index(1)), c.String(LogLevelFile), c.String(PgPort.Index(1)), c.String(LogPath))
		}
	})
	t.Run("config alone skips includes", func(t *testing.T) {
		c := mustParse(t, []string{"--config=" + other, "--stanza=main", "check"}, nil)
		if c.String(RepoPath.Index(1)) != "/from-other" || c.String(LogLevelFile) != "info" {
			t.Errorf("got %q %q", c.String(RepoPath.Index(1)), c.String(LogLevelFile))
		}
	})
	t.Run("config plus include path", func(t *testing.T) {
		c := mustParse(t, []string{"--config=" + other, "--config-include-path=" + dir + "/inc", "--stanza=main", "check"}, nil)
		if c.String(RepoPath.Index(1)) != "/from-other" || c.String(LogLevelFile) != "debug" {
			t.Errorf("got %q %q", c.String(RepoPath.Index(1)), c.String(LogLevelFile))
		}
	})
	t.Run("env config", func(t *testing.T) {
		c := mustParse(t, []string{"--stanza=main", "check"}, []string{"PGBACKREST_CONFIG=" + other})
		if c.String(RepoPath.Index(1)) != "/from-other" {
			t.Errorf("got %q", c.String(RepoPath.Index(1)))
		}
	})
	t.Run("no-config", func(t *testing.T) {
		c := mustParse(t, []string{"--config-path=" + dir + "/base", "--no-config", "--stanza=main", "--pg1-path=/x", "check"}, nil)
		if c.String(RepoPath.Index(1)) != "/var/lib/pgbackrest" || c.String(LogLevelFile) != "detail" {
			t.Errorf("got %q %q", c.String(RepoPath.Index(1)), c.String(LogLevelFile))
		}
		if !strings.Contains(c.LogParams(), "--no-config") {
			t.Errorf("LogParams %q", c.LogParams())
		}
	})
	t.Run("missing explicit config", func(t *testing.T) {
		_, err := Parse([]string{"--config=" + dir + "/nope.conf", "--stanza=main", "check"}, nil)
		if errs.CodeOf(err) != errs.FileMissing || !strings.Contains(err.Error(), "nope.conf") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("missing explicit include path", func(t *testing.T) {
		_, err := Parse([]string{"--config=" + other, "--config-include-path=" + dir + "/nodir", "--stanza=main", "check"}, nil)
		if errs.CodeOf(err) != errs.PathMissing {
			t.Errorf("err %v", err)
		}
	})
	t.Run("missing default config is fine", func(t *testing.T) {
		c := mustParse(t, []string{"--config-path=" + dir + "/empty", "--stanza=main", "--pg1-path=/pg", "check"}, nil)
		if c.String(PgPath.Index(1)) != "/pg" {
			t.Error("pg1-path")
		}
	})
	t.Run("repeated key across files", func(t *testing.T) {
		mk("dup/pgbackrest.conf", "[main]\npg1-path=/pg\n")
		mk("dup/conf.d/a.conf", "[main]\npg1-path=/pg2\n")
		_, err := Parse([]string{"--config-path=" + dir + "/dup", "--stanza=main", "check"}, nil)
		if errs.CodeOf(err) != errs.OptionInvalid || !strings.Contains(err.Error(), "cannot be set multiple times") {
			t.Errorf("err %v", err)
		}
	})
}

func TestAliasesAndIndexes(t *testing.T) {
	conf := writeConf(t, `
[global]
retention-full=3
hardlink=y
repo3-path=/repo3
repo3-retention-full=1
repo-cipher-type=none

[main]
db-path=/pg1
db2-path=/pg2
db-port=5444
db-socket-path=/run/pg
pg4-host=db4
pg4-path=/pg4
`)
	c := mustParse(t, []string{"--config=" + conf, "--stanza=main", "backup", "--repo-path=/r1", "--db3-path=/pg3"}, nil)
	checks := map[string]string{
		"pg1-path": "/pg1", "pg2-path": "/pg2", "pg3-path": "/pg3", "pg1-port": "5444", "pg1-socket-path": "/run/pg",
		"repo1-retention-full": "3", "repo1-hardlink": "y", "repo1-path": "/r1", "repo3-path": "/repo3",
		"repo-path": "/r1", "pg-path": "/pg1", "pg4-host": "db4", "pg2-port": "5432",
	}
	for k, want := range checks {
		if got := c.String(testOpt(t, k)); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := c.RepoKeys(); !reflect.DeepEqual(got, []int{1, 3}) {
		t.Errorf("RepoKeys %v", got)
	}
	if got := c.PgKeys(); !reflect.DeepEqual(got, []int{1, 2, 3, 4}) {
		t.Errorf("PgKeys %v", got)
	}
	args := c.CommandLineArgs()
	want := []string{"--stanza=main", "--repo1-path=/r1", "--pg3-path=/pg3"}
	if !reflect.DeepEqual(args[1:], want) {
		t.Errorf("CommandLineArgs %q", args)
	}
	// prefix match on the command line
	c = mustParse(t, []string{"--config=" + conf, "--stanz=main", "backup", "--start-f"}, nil)
	if c.String(Stanza) != "main" || !c.Bool(StartFast) {
		t.Errorf("prefix match failed")
	}
}

func TestRepoSelectAndPruning(t *testing.T) {
	conf := writeConf(t, `
[global]
repo1-path=/r1
repo2-type=s3
repo2-s3-bucket=b
repo2-s3-endpoint=s3.amazonaws.com
repo2-s3-region=us-east-1
repo2-s3-key=AK
repo2-s3-key-secret=SK
repo5-s3-bucket=ignored
[main]
pg1-path=/pg
`)
	c := mustParse(t, []string{"--config=" + conf, "--stanza=main", "info", "--repo=2"}, nil)
	if got := c.RepoKeys(); !reflect.DeepEqual(got, []int{1, 2}) {
		t.Errorf("RepoKeys %v (repo5 has only an option whose dependency is not met)", got)
	}
	if c.String(RepoS3Key.Index(2)) != "AK" || c.Int(Repo) != 2 {
		t.Errorf("repo2-s3-key %q repo %d", c.String(RepoS3Key.Index(2)), c.Int(Repo))
	}
	if c.Size(RepoStorageUploadChunkSize.Index(2)) != 5<<20 {
		t.Errorf("chunk %d", c.Size(RepoStorageUploadChunkSize.Index(2)))
	}
	_, err := Parse([]string{"--config=" + conf, "--stanza=main", "info", "--repo=3"}, nil)
	if errs.CodeOf(err) != errs.OptionInvalidValue {
		t.Errorf("repo=3: %v", err)
	}
}

type errCase struct {
	name  string
	conf  string // "" for none
	args  []string
	env   []string
	code  errs.Code
	parts []string // substrings the message must contain; "$FILE" is replaced by the config path
}

func runErrCases(t *testing.T, cases []errCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			file := ""
			if tt.conf != "" {
				file = writeConf(t, tt.conf)
				args = append([]string{"--config=" + file}, args...)
			} else {
				args = append([]string{"--no-config"}, args...)
			}
			_, err := Parse(args, tt.env)
			if err == nil {
				t.Fatalf("no error")
			}
			if got := errs.CodeOf(err); got != tt.code {
				t.Errorf("code %d (%s), want %d: %v", got, got.Name(), tt.code, err)
			}
			for _, p := range tt.parts {
				p = strings.ReplaceAll(p, "$FILE", file)
				if !strings.Contains(err.Error(), p) {
					t.Errorf("message %q does not contain %q", err.Error(), p)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	runErrCases(t, []errCase{
		{name: "unknown option on command line", args: []string{"backup", "--bogus=1"},
			code: errs.OptionInvalid, parts: []string{"invalid option '--bogus=1'"}},
		{name: "no command", args: []string{"--stanza=x"}, code: errs.CommandRequired, parts: []string{"no command found"}},
		{name: "invalid command", args: []string{"bckup"}, code: errs.CommandInvalid, parts: []string{"invalid command 'bckup'"}},
		{name: "params not allowed", args: []string{"--stanza=x", "backup", "extra"}, code: errs.ParamInvalid},
		{name: "wrong type in file", conf: "[global]\nprocess-max=abc\n[main]\npg1-path=/pg\n",
			args: []string{"--stanza=main", "backup"}, code: errs.OptionInvalidValue,
			parts: []string{"option 'process-max'", "'abc'", "in file '$FILE' line 2", "integer"}},
		{name: "out of range in file", conf: "[global]\n\n# c\nprocess-max=1000\n[main]\npg1-path=/pg\n",
			args: []string{"--stanza=main", "backup"}, code: errs.OptionInvalidValue,
			parts: []string{"option 'process-max'", "'1000'", "in file '$FILE' line 4", "between 1 and 999"}},
		{name: "out of range on command line", args: []string{"--stanza=main", "--pg1-path=/pg", "backup", "--process-max=0"},
			code: errs.OptionInvalidValue, parts: []string{"option 'process-max'", "on the command line"}},
		{name: "not allowed value in file", conf: "[global]\n\n\n\n\n\n\n\n\n\n\ncompress-type=foo\n[main]\npg1-path=/pg\n",
			args: []string{"--stanza=main", "backup"}, code: errs.OptionInvalidValue,
			parts: []string{"option 'compress-type' has invalid value 'foo' in file '$FILE' line 12: must be one of none, bz2, gz, lz4, zst"}},
		{name: "bad time in env", args: []string{"--stanza=main", "--pg1-path=/pg", "backup"},
			env: []string{"PGBACKREST_ARCHIVE_TIMEOUT=soon"}, code: errs.OptionInvalidValue,
			parts: []string{"archive-timeout", "PGBACKREST_ARCHIVE_TIMEOUT"}},
		{name: "time out of range", args: []string{"--stanza=main", "--pg1-path=/pg", "backup", "--archive-timeout=0.05"},
			code: errs.OptionInvalidValue, parts: []string{"archive-timeout"}},
		{name: "bad boolean in file", conf: "[global]\nstart-fast=yes\n[main]\npg1-path=/pg\n",
			args: []string{"--stanza=main", "backup"}, code: errs.OptionInvalidValue,
			parts: []string{"boolean option 'start-fast' must be 'y' or 'n'", "$FILE", "line 2"}},
		{name: "bad boolean in env", args: []string{"--stanza=main", "--pg1-path=/pg", "backup"},
			env: []string{"PGBACKREST_START_FAST=true"}, code: errs.OptionInvalidValue,
			parts: []string{"start-fast", "'y' or 'n'"}},
		{name: "bad boolean on command line", args: []string{"--stanza=main", "--pg1-path=/pg", "backup", "--start-fast=1"},
			code: errs.OptionInvalidValue, parts: []string{"start-fast"}},
		{name: "repeated non-list key", conf: "[global]\nprocess-max=2\nprocess-max=3\n[main]\npg1-path=/pg\n",
			args: []string{"--stanza=main", "backup"}, code: errs.OptionInvalid,
			parts: []string{"option 'process-max' cannot be set multiple times", "$FILE", "lines 2, 3"}},
		{name: "repeated non-list on command line", args: []string{"--stanza=a", "--stanza=b", "backup"},
			code: errs.OptionInvalid, parts: []string{"option 'stanza' cannot be set multiple times"}},
		{name: "key outside section", conf: "# comment\nprocess-max=2\n[global]\n",
			args: []string{"--stanza=main", "backup"}, code: errs.Format,
			parts: []string{"key/value found outside of section", "$FILE", "line 2"}},
		{name: "missing equals", conf: "[global]\nprocess-max\n",
			args: []string{"--stanza=main", "backup"}, code: errs.Format, parts: []string{"missing '='", "line 2"}},
		{name: "bad section", conf: "[global\n", args: []string{"--stanza=main", "backup"}, code: errs.Format,
			parts: []string{"should end with ]", "line 1"}},
		{name: "empty value", conf: "[global]\nlog-path=\n", args: []string{"--stanza=main", "backup"},
			code: errs.OptionInvalidValue, parts: []string{"section 'global', key 'log-path' must have a value", "line 2"}},
		{name: "secure option on command line", args: []string{"--stanza=main", "backup", "--repo1-cipher-pass=x"},
			code: errs.OptionInvalid, parts: []string{"option 'repo1-cipher-pass' is not allowed on the command-line"}},
		{name: "secure s3 key on command line", args: []string{"--repo-s3-key-secret=x", "info"},
			code: errs.OptionInvalid, parts: []string{"option 'repo1-s3-key-secret' is not allowed on the command-line"}},
		{name: "option invalid for command", args: []string{"--stanza=main", "expire", "--pg1-path=/pg"},
			code: errs.OptionInvalid, parts: []string{"option 'pg-path' not valid for command 'expire'"}},
		{name: "stanza required", args: []string{"backup"}, code: errs.OptionRequired,
			parts: []string{"backup command requires option: stanza"}},
		{name: "pg1-path required", args: []string{"--stanza=main", "backup"}, code: errs.OptionRequired,
			parts: []string{"backup command requires option: pg1-path", "HINT: does this stanza exist?"}},
		{name: "cipher pass required", conf: "[global]\nrepo1-cipher-type=aes-256-cbc\n[main]\npg1-path=/pg\n",
			args: []string{"--stanza=main", "backup"}, code: errs.OptionRequired,
			parts: []string{"backup command requires option: repo1-cipher-pass", "repo1-cipher-type' = 'aes-256-cbc'"}},
		{name: "target required", args: []string{"--stanza=main", "--pg1-path=/pg", "restore", "--type=time"},
			code: errs.OptionRequired, parts: []string{"restore command requires option: target"}},
		{name: "target without type", args: []string{"--stanza=main", "--pg1-path=/pg", "restore", "--target=x"},
			code: errs.OptionInvalid, parts: []string{"option 'target' not valid without option 'type' in ('lsn', 'name', 'time', 'xid')"}},
		{name: "force needs no-online", args: []string{"--stanza=main", "--pg1-path=/pg", "backup", "--force"},
			code: errs.OptionInvalid, parts: []string{"option 'force' not valid without option 'no-online'"}},
		{name: "compress-level per type", args: []string{"--stanza=main", "--pg1-path=/pg", "backup", "--compress-type=bz2", "--compress-level=0"},
			code: errs.OptionInvalidValue, parts: []string{"compress-level", "bz2", "on the command line"}},
		{name: "s3 bucket required", conf: "[global]\nrepo1-type=s3\n", args: []string{"info"},
			code: errs.OptionRequired, parts: []string{"info command requires option: repo1-s3-bucket"}},
		{name: "index too big", args: []string{"--pg257-path=/x", "backup"}, code: errs.OptionInvalid,
			parts: []string{"key exceeds maximum of 256"}},
		{name: "index on ungrouped", args: []string{"--process2-max=3", "backup"}, code: errs.OptionInvalid,
			parts: []string{"cannot have an index"}},
		{name: "negate non-boolean", args: []string{"--no-stanza", "backup"}, code: errs.OptionInvalid,
			parts: []string{"cannot be negated"}},
		{name: "missing argument", args: []string{"backup", "--stanza"}, code: errs.OptionInvalid,
			parts: []string{"requires an argument"}},
		{name: "single dash", args: []string{"-v", "backup"}, code: errs.OptionInvalid, parts: []string{"must begin with --"}},
		{name: "set and negated", args: []string{"--delta", "--no-delta", "backup"}, code: errs.OptionInvalid,
			parts: []string{"cannot be set and negated"}},
		{name: "beta option without beta", args: []string{"--stanza=main", "--pg1-path=/pg", "backup", "--repo1-bundle", "--repo1-block"},
			code: errs.OptionInvalid, parts: []string{"not valid without option 'beta'"}},
		{name: "path must be absolute", args: []string{"--stanza=main", "--pg1-path=relative", "backup"},
			code: errs.OptionInvalidValue, parts: []string{"must begin with /"}},
		{name: "hash needs equals", args: []string{"--stanza=main", "--pg1-path=/pg", "restore", "--recovery-option=foo"},
			code: errs.OptionInvalid, parts: []string{"key/value 'foo' not valid for 'recovery-option' option"}},
		{name: "env empty", args: []string{"--stanza=main", "--pg1-path=/pg", "backup"}, env: []string{"PGBACKREST_LOG_PATH="},
			code: errs.OptionInvalidValue, parts: []string{"must have a value"}},
		{name: "protocol-timeout vs db-timeout", args: []string{"--stanza=main", "--pg1-path=/pg", "backup", "--db-timeout=100", "--protocol-timeout=50"},
			code: errs.OptionInvalidValue, parts: []string{"protocol-timeout"}},
		{name: "pg and repo host", conf: "[global]\nrepo1-host=r\n[main]\npg1-path=/pg\npg1-host=p\n",
			args: []string{"--stanza=main", "check"}, code: errs.Config, parts: []string{"cannot both be configured as remote"}},
	})
}

func TestWarnings(t *testing.T) {
	conf := writeConf(t, `
[global]
bogus-option=1
pg1-path=/wrong
stanza=x
no-delta=y
[global:backup]
recovery-option=a=b
[main]
pg1-path=/pg
db-include=abc
`)
	c := mustParse(t, []string{"--config=" + conf, "--stanza=main", "backup"}, []string{"PGBACKREST_NOPE=1", "PGBACKREST_NO_DELTA=y"})
	w := strings.Join(c.Warnings(), "\n")
	for _, want := range []string{
		"configuration file contains invalid option 'bogus-option'",
		"configuration file contains stanza-only option 'pg1-path' in global section 'global'",
		"configuration file contains command-line only option 'stanza'",
		"configuration file contains negate option 'no-delta'",
		"configuration file contains option 'recovery-option' invalid for section 'global:backup'",
		"environment contains invalid option 'nope'",
		"environment contains invalid negate option 'no-delta'",
		"option 'repo1-retention-full' is not set",
		"line 3",
	} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings missing %q:\n%s", want, w)
		}
	}
	if strings.Contains(w, "'db-include'") {
		t.Errorf("option invalid for the command in a stanza section must be silently ignored:\n%s", w)
	}
	if c.String(PgPath.Index(1)) != "/pg" {
		t.Errorf("pg1-path %q", c.String(PgPath.Index(1)))
	}
}

func TestLogParamsAndCommandLineArgs(t *testing.T) {
	conf := writeConf(t, `
[global]
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=supersecret
repo1-path=/repo
repo1-retention-full=2
start-fast=y
delta=n
[main]
pg1-path=/pg
`)
	c := mustParse(t, []string{"--config=" + conf, "--stanza=main", "--exclude=a b", "--exclude=c", "backup", "--type=full"},
		[]string{"PGBACKREST_REPO1_S3_TOKEN=tok"})
	lp := c.LogParams()
	if strings.Contains(lp, "supersecret") {
		t.Fatalf("secret leaked: %s", lp)
	}
	want := `--config=` + conf + ` --no-delta --exclude="a b" --exclude=c --pg1-path=/pg --repo1-cipher-pass=<redacted> --repo1-cipher-type=aes-256-cbc --repo1-path=/repo --repo1-retention-full=2 --stanza=main --start-fast --type=full`
	if lp != want {
		t.Errorf("LogParams\n got %s\nwant %s", lp, want)
	}
	args := c.CommandLineArgs()
	wantArgs := []string{"--config=" + conf, "--stanza=main", "--exclude=a b", "--exclude=c", "--type=full"}
	if !reflect.DeepEqual(args, wantArgs) {
		t.Errorf("CommandLineArgs %q", args)
	}

	c = mustParse(t, []string{"--no-config", "--stanza=main", "archive-push", "/pg/pg_wal/000000010000000000000001", "--pg1-path=/pg"},
		[]string{"PGBACKREST_REPO1_CIPHER_PASS=secret2", "PGBACKREST_REPO1_CIPHER_TYPE=aes-256-cbc"})
	lp = c.LogParams()
	if !strings.HasPrefix(lp, "[/pg/pg_wal/000000010000000000000001] --no-config") || strings.Contains(lp, "secret2") ||
		!strings.Contains(lp, "--repo1-cipher-pass=<redacted>") {
		t.Errorf("LogParams %s", lp)
	}
	if got := c.Params(); !reflect.DeepEqual(got, []string{"/pg/pg_wal/000000010000000000000001"}) {
		t.Errorf("Params %q", got)
	}
	if c.String(RepoCipherPass.Index(1)) != "secret2" || c.Source(RepoCipherPass.Index(1)) != SourceEnv {
		t.Errorf("cipher pass from env")
	}
}

func TestCompressDeprecated(t *testing.T) {
	c := mustParse(t, []string{"--no-config", "--stanza=main", "--pg1-path=/pg", "backup", "--no-compress"}, nil)
	if c.String(CompressType) != "none" {
		t.Errorf("compress-type %q", c.String(CompressType))
	}
	c = mustParse(t, []string{"--no-config", "--stanza=main", "--pg1-path=/pg", "archive-push", "--compress-type=lz4"}, nil)
	if c.Int(CompressLevel) != 1 {
		t.Errorf("lz4 default level %d", c.Int(CompressLevel))
	}
	c = mustParse(t, []string{"--no-config", "--stanza=main", "--pg1-path=/pg", "backup", "--compress-type=zst", "--compress-level=19"}, nil)
	if c.Int(CompressLevel) != 19 {
		t.Errorf("zst level %d", c.Int(CompressLevel))
	}
}

func TestRestoreOptions(t *testing.T) {
	conf := writeConf(t, `
[global]
recovery-option=primary_conninfo=host=a port=5432
recovery-option=restore_command=x
[main]
pg1-path=/pg
`)
	c := mustParse(t, []string{"--config=" + conf, "--stanza=main", "restore", "--type=time", "--target=2024-01-01 00:00:00",
		"--target-action=promote", "--tablespace-map=ts1=/t1", "--tablespace-map=ts2=/t2", "--link-all", "--db-include=app"}, nil)
	if c.String(Type) != "time" || c.String(Target) != "2024-01-01 00:00:00" || c.String(TargetAction) != "promote" ||
		c.String(Set) != "latest" || c.String(ArchiveMode) != "preserve" || !c.Bool(LinkAll) {
		t.Errorf("restore values wrong")
	}
	want := [][2]string{{"primary_conninfo", "host=a port=5432"}, {"restore_command", "x"}}
	if got := c.Hash(RecoveryOption); !reflect.DeepEqual(got, want) {
		t.Errorf("recovery-option %q", got)
	}
	if got := c.Hash(TablespaceMap); len(got) != 2 || got[1] != [2]string{"ts2", "/t2"} {
		t.Errorf("tablespace-map %q", got)
	}
	if got := c.List(DBInclude); !reflect.DeepEqual(got, []string{"app"}) {
		t.Errorf("db-include %q", got)
	}
	c = mustParse(t, []string{"--config=" + conf, "--stanza=main", "restore"}, nil)
	if c.String(Type) != "default" || c.String(TargetAction) != "" {
		t.Errorf("default restore: type %q target-action %q", c.String(Type), c.String(TargetAction))
	}
}

func TestSizeAndTime(t *testing.T) {
	sizes := map[string]int64{"0": 0, "1": 1, "1b": 1, "2k": 2048, "2KB": 2048, "2KiB": 2048, "2mb": 2 << 20, "2MiB": 2 << 20,
		"1g": 1 << 30, "1GB": 1 << 30, "1t": 1 << 40, "1p": 1 << 50, "1PiB": 1 << 50}
	for s, want := range sizes {
		got, err := parseSize(s)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "k", "1.5m", "-1", "1x", "1 m", "99999999999999p"} {
		if _, err := parseSize(s); err == nil {
			t.Errorf("parseSize(%q) accepted", s)
		}
	}
	times := map[string]int64{"60": 60000, "0.5": 500, "0.1": 100, "1800": 1800000}
	for s, want := range times {
		got, err := parseTime(s)
		if err != nil || got != want {
			t.Errorf("parseTime(%q) = %d, %v", s, got, err)
		}
	}
	c := mustParse(t, []string{"--no-config", "--stanza=main", "--pg1-path=/pg", "archive-push", "--archive-timeout=0.5"}, nil)
	if c.Duration(ArchiveTimeout) != 500*time.Millisecond {
		t.Errorf("archive-timeout %v", c.Duration(ArchiveTimeout))
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"help"}, {}, {"version"}, {"help", "backup"}, {"help", "backup", "compress-type"}} {
		c, err := Parse(args, nil)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		want := "help"
		if len(args) == 1 && args[0] == "version" {
			want = "version"
		}
		if c.Command() != want {
			t.Errorf("%q: command %q", args, c.Command())
		}
	}
	h := Help([]string{"help"})
	if !strings.Contains(h, "backup") || !strings.Contains(h, "archive-push") || strings.Contains(h, "repo-create") {
		t.Errorf("general help:\n%s", h)
	}
	h = Help([]string{"help", "backup"})
	if !strings.Contains(h, "--compress-type") || !strings.Contains(h, "--repo1-path") || !strings.Contains(h, "--pg1-path") ||
		strings.Contains(h, "--target-action") {
		t.Errorf("backup help:\n%s", h)
	}
	h = Help([]string{"help", "backup", "compress-type"})
	for _, want := range []string{"default: gz", "allowed: none, bz2, gz, lz4, zst", "PGBACKREST_COMPRESS_TYPE"} {
		if !strings.Contains(h, want) {
			t.Errorf("option help missing %q:\n%s", want, h)
		}
	}
	if _, err := HelpText([]string{"help", "nope"}); errs.CodeOf(err) != errs.CommandInvalid {
		t.Errorf("help nope: %v", err)
	}
	if _, err := HelpText([]string{"help", "expire", "pg1-path"}); errs.CodeOf(err) != errs.OptionInvalid {
		t.Errorf("help expire pg1-path: %v", err)
	}
	if len(Commands()) != len(commandNames) {
		t.Error("Commands")
	}
}

func TestSet(t *testing.T) {
	c := mustParse(t, []string{"--no-config", "--stanza=main", "--pg1-path=/pg", "backup"}, nil)
	if err := c.Set(CompressType, "lz4"); err != nil {
		t.Fatal(err)
	}
	if c.String(CompressType) != "lz4" {
		t.Errorf("compress-type %q", c.String(CompressType))
	}
	if err := c.Set(CompressType, "rar"); errs.CodeOf(err) != errs.OptionInvalidValue {
		t.Errorf("Set bad value: %v", err)
	}
	if err := c.SetByName("nope", "x"); errs.CodeOf(err) != errs.OptionInvalid {
		t.Errorf("Set unknown: %v", err)
	}
	if err := c.Set(RepoPath.Index(2), "/r2"); err != nil || c.String(RepoPath.Index(2)) != "/r2" {
		t.Errorf("Set repo2-path: %v", err)
	}
	if !reflect.DeepEqual(c.RepoKeys(), []int{1, 2}) {
		t.Errorf("RepoKeys %v", c.RepoKeys())
	}
}

// TestTableSanity checks every default converts and every dependency exists.
func TestTableSanity(t *testing.T) {
	for _, o := range optDefs {
		if o.dep != nil && optByName[o.dep.option] == nil {
			t.Errorf("%s: unknown dependency %s", o.name, o.dep.option)
		}
		for cmd, r := range o.cmds {
			if !commandValid[cmd] {
				t.Errorf("%s: unknown command %s", o.name, cmd)
			}
			if r.dep != nil && optByName[r.dep.option] == nil {
				t.Errorf("%s: unknown dependency %s", o.name, r.dep.option)
			}
			if d, ok := o.defaultFor(cmd); ok {
				v := &optVal{opt: o}
				if err := convertValue(v, []string{d}, nil, cmd); err != nil {
					t.Errorf("%s/%s: default %q: %v", o.name, cmd, d, err)
				}
			}
		}
		if d, ok := o.defaultFor(""); ok {
			v := &optVal{opt: o}
			if err := convertValue(v, []string{d}, nil, ""); err != nil {
				t.Errorf("%s: default %q: %v", o.name, d, err)
			}
		}
		if o.desc == "" {
			t.Errorf("%s: no description", o.name)
		}
		if o.group != "" && !strings.HasPrefix(o.name, o.group+"-") {
			t.Errorf("%s: group %s", o.name, o.group)
		}
	}
}

// TestExporterRules checks what the exporter's init made of the table:
// every option of info but output and set is valid for exporter with
// info's rule, no other option but exporter's own; lock-path is valid for
// every command that runs.
func TestExporterRules(t *testing.T) {
	own := map[string]bool{"exporter-host": true, "exporter-port": true}
	for _, o := range optDefs {
		ri, info := o.cmds["info"]
		re, exp := o.cmds["exporter"]
		want := own[o.name] || (info && o.name != "output" && o.name != "set")
		if exp != want {
			t.Errorf("%s: valid for exporter %v, want %v", o.name, exp, want)
		}
		if exp && info && !reflect.DeepEqual(re, ri) {
			t.Errorf("%s: exporter's rule %+v, info's %+v", o.name, re, ri)
		}
	}
	lp := optByName["lock-path"]
	for _, c := range commandNames {
		skip := c == "help" || c == "version" || c == "server" || c == "server-ping" || internalCommands[c]
		if _, ok := lp.cmds[c]; ok == skip {
			t.Errorf("lock-path valid for %s: %v", c, ok)
		}
	}
}

func TestCompressNotLogged(t *testing.T) {
	c := mustParse(t, []string{"--no-config", "--stanza=main", "--pg1-path=/pg", "backup", "--no-compress"}, nil)
	if lp := c.LogParams(); strings.Contains(lp, "compress ") || !strings.Contains(lp, "--compress-type=none") || strings.Contains(lp, "--no-compress") {
		t.Errorf("LogParams %s", lp)
	}
}

func TestCommandRole(t *testing.T) {
	c := mustParse(t, []string{"--no-config", "--stanza=main", "--pg1-path=/pg", "archive-push:async", "000000010000000000000001"}, nil)
	if c.Command() != "archive-push" || c.Role() != "async" {
		t.Errorf("command %q role %q", c.Command(), c.Role())
	}
	if _, err := Parse([]string{"--no-config", "expire:async"}, nil); errs.CodeOf(err) != errs.CommandInvalid {
		t.Errorf("expire:async: %v", err)
	}
}

func TestRedactedCommandLineOption(t *testing.T) {
	c := mustParse(t, []string{"--no-config", "repo-get", "--cipher-pass=topsecret", "--raw", "backup/main/backup.info"}, nil)
	if c.String(CipherPass) != "topsecret" {
		t.Errorf("cipher-pass %q", c.String(CipherPass))
	}
	for _, a := range c.CommandLineArgs() {
		if strings.Contains(a, "topsecret") || strings.Contains(a, "cipher-pass") {
			t.Errorf("CommandLineArgs leaks %q", a)
		}
	}
	lp := c.LogParams()
	if strings.Contains(lp, "topsecret") || !strings.Contains(lp, "--cipher-pass=<redacted>") || !strings.HasPrefix(lp, "[backup/main/backup.info]") {
		t.Errorf("LogParams %s", lp)
	}
	if !reflect.DeepEqual(c.CommandLineArgs(), []string{"--no-config", "--raw"}) {
		t.Errorf("CommandLineArgs %q", c.CommandLineArgs())
	}
}

func TestResetIndexedAndEnvIndexed(t *testing.T) {
	conf := writeConf(t, "[global]\nrepo1-path=/file\nrepo2-path=/file2\n[main]\npg1-path=/pg\n")
	c := mustParse(t, []string{"--config=" + conf, "--stanza=main", "--reset-repo1-path", "info"},
		[]string{"PGBACKREST_REPO2_PATH=/env2", "PGBACKREST_REPO_S3_REGION=x"})
	if c.String(RepoPath.Index(1)) != "/var/lib/pgbackrest" || c.Source(RepoPath.Index(1)) != SourceDefault {
		t.Errorf("repo1-path %q %v", c.String(RepoPath.Index(1)), c.Source(RepoPath.Index(1)))
	}
	if c.String(RepoPath.Index(2)) != "/env2" || c.Source(RepoPath.Index(2)) != SourceEnv {
		t.Errorf("repo2-path %q", c.String(RepoPath.Index(2)))
	}
	// repo1 only had a reset value, so it is not a configured repository.
	if !reflect.DeepEqual(c.RepoKeys(), []int{2}) {
		t.Errorf("RepoKeys %v", c.RepoKeys())
	}
	c = mustParse(t, []string{"--config=" + conf, "--stanza=main", "--reset-repo1-path", "--reset-repo2-path", "info"}, nil)
	if !strings.Contains(c.LogParams(), "--reset-repo1-path") || c.String(RepoPath.Index(2)) != "/var/lib/pgbackrest" {
		t.Errorf("LogParams %s", c.LogParams())
	}
}
