package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/testenv"
)

var deltaWarn = regexp.MustCompile(`WARN: (file '[^']*' has timestamp earlier than prior backup[^\n]*)`)

// TestAutoDelta: a file rewritten with the same size and an older mtime
// would be taken as unchanged by size+timestamp; pgbr, like pgBackRest,
// notices the timestamp went backwards, switches on checksum delta and
// copies the new content. Both tools print the same warning.
func TestAutoDelta(t *testing.T) {
	testenv.RequirePgBackRest(t)
	e := testenv.NewEnv(t, testenv.EnvOptions{})
	file := filepath.Join(e.Cluster.Data, "pgbr_app.conf")
	write := func(content string, mtime time.Time) {
		os.WriteFile(file, []byte(content), 0o600)
		testenv.Chown(t, file)
		os.Chtimes(file, mtime, mtime)
	}
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	write("version=1\n", t0)
	e.MustRun("stanza-create")
	e.MustRun("backup", "--type=full")

	var warns [2]string
	for i, tool := range []string{"pgbr", "pgbackrest"} {
		write("version="+string(rune('2'+i))+"\n", t0.Add(-time.Duration(10*(i+1))*time.Minute))
		var out string
		if tool == "pgbr" {
			out = e.MustRun("backup", "--type=incr")
		} else {
			out = e.MustPgBackRest("backup", "--type=incr")
		}
		m := deltaWarn.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("%s did not switch on delta:\n%s", tool, out)
		}
		warns[i] = regexp.MustCompile(`current \d+`).ReplaceAllString(m[1], "current N")
		warns[i] = regexp.MustCompile(`prior \d+`).ReplaceAllString(warns[i], "prior N")
	}
	if warns[0] != warns[1] {
		t.Fatalf("warnings differ:\npgbr:       %s\npgbackrest: %s", warns[0], warns[1])
	}
	// pgbr's incr (the second-newest backup) must hold version=2.
	info := e.MustRun("info", "--output=json")
	labels := regexp.MustCompile(`"label":"([^"]+)"`).FindAllStringSubmatch(info, -1)
	if len(labels) != 3 {
		t.Fatalf("want 3 backups:\n%s", info)
	}
	e.Cluster.Stop()
	r := restoreWith(t, e, "pgbr", "--set="+labels[1][1])
	got, _ := os.ReadFile(filepath.Join(r.Data, "pgbr_app.conf"))
	if strings.TrimSpace(string(got)) != "version=2" {
		t.Fatalf("restored %q from the delta backup, want version=2", got)
	}
}
