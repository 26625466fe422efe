package command

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
)

func TestRepoPathValid(t *testing.T) {
	for _, c := range []struct {
		in, repo, want string
		code           errs.Code
	}{
		{"backup/main", "/r", "backup/main", 0},
		{"backup/main/", "/r", "backup/main", 0},
		{"/r", "/r", "", 0},
		{"/r/archive", "/r", "archive", 0},
		{"/x/archive", "/", "x/archive", 0},
		{"/rr/archive", "/r", "", errs.ParamInvalid},
		{"/tmp", "/r", "", errs.ParamInvalid},
		{"a//b", "/r", "", errs.ParamInvalid},
		{"backup/../../etc", "/r", "", errs.ParamInvalid},
		{"/r/..", "/r", "", errs.ParamInvalid},
	} {
		got, err := repoPathValid(c.in, c.repo)
		if errs.CodeOf(err) != c.code && !(c.code == 0 && err == nil) || got != c.want {
			t.Errorf("repoPathValid(%q, %q) = %q, %v", c.in, c.repo, got, err)
		}
	}
}

// The walk follows pgBackRest's iterator: per-directory sort, a path before
// its content ascending and after it descending, the filter on the name
// relative to the listed path, and content of non-matching paths still
// listed.
func TestRepoLsWalkOrder(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a/x", "a/y/z", "a.b", "b"} {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("1"), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, "empty"), 0o755)
	st := posix.New(dir)
	walk := func(order, filter string) string {
		var re *regexp.Regexp
		if filter != "" {
			re = regexp.MustCompile(filter)
		}
		var names []string
		if err := repoLsWalk(context.Background(), st, "", "", true, order, re, func(_ storage.Info, n string) {
			names = append(names, n)
		}); err != nil {
			t.Fatal(err)
		}
		return strings.Join(names, " ")
	}
	if got := walk("asc", ""); got != "a a/x a/y a/y/z a.b b empty" {
		t.Errorf("asc: %s", got)
	}
	if got := walk("desc", ""); got != "empty b a.b a/y/z a/y a/x a" {
		t.Errorf("desc: %s", got)
	}
	if got := walk("asc", "z$|^b"); got != "a/y/z b" {
		t.Errorf("filter: %s", got)
	}
}

// The last full/diff/incr follow pgbackrest_exporter: a full newer than
// the last diff is also the last diff (and incr).
func TestExportStanzaLast(t *testing.T) {
	js := `[{"name":"main","status":{"code":0,"lock":{"backup":{"held":true}}},
	"repo":[{"cipher":"none","key":1,"status":{"code":0}}],"db":[{"id":1,"repo-key":1,"version":"15"}],
	"archive":[{"database":{"id":1,"repo-key":1},"min":"000000010000000000000001","max":"000000010000000000000009"}],
	"backup":[
	{"label":"20240101-000000F","type":"full","timestamp":{"start":100,"stop":160},"database":{"id":1,"repo-key":1},"info":{"size":10,"delta":10,"repository":{"size":5,"delta":5}}},
	{"label":"20240101-000000F_20240102-000000D","type":"diff","prior":"20240101-000000F","reference":["20240101-000000F"],"timestamp":{"start":200,"stop":230},"database":{"id":1,"repo-key":1},"info":{"size":11,"delta":2,"repository":{"size":6,"delta":1}}},
	{"label":"20240103-000000F","type":"full","annotation":{"a":"b"},"timestamp":{"start":300,"stop":390},"database":{"id":1,"repo-key":1},"info":{"size":12,"delta":12,"repository":{"size":7,"delta":7}}}
	]}]`
	var st []exInfoStanza
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatal(err)
	}
	g := newGauges()
	val := func(name string, values ...string) float64 {
		v, ok := g.value(name, values...)
		if !ok {
			t.Errorf("no series %s%q", name, values)
		}
		return v
	}
	exportStanza(g, &st[0], time.Unix(1000, 0))
	for _, typ := range []string{"full", "diff", "incr"} {
		if v := val("pgbackrest_backup_last_size_bytes", typ, "n", "main"); v != 12 {
			t.Errorf("last size %s = %v", typ, v)
		}
		if v := val("pgbackrest_backup_since_last_completion_seconds", typ, "n", "main"); v != 610 {
			t.Errorf("since last %s = %v", typ, v)
		}
	}
	if v := val("pgbackrest_stanza_backup_lock_status", "main"); v != 1 {
		t.Errorf("lock = %v", v)
	}
	if v := val("pgbackrest_backup_last_annotations", "full", "n", "main"); v != 1 {
		t.Errorf("annotations = %v", v)
	}
	if v := val("pgbackrest_wal_archive_status", "1", "15", "1", "main",
		"000000010000000000000009", "000000010000000000000001"); v != 1 {
		t.Errorf("wal = %v", v)
	}
}
