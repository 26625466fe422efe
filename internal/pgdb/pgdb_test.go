package pgdb

import (
	"strings"
	"testing"
)

// The backup functions were renamed in PostgreSQL 15; before, the
// non-exclusive form takes a third argument (start) and a first one (stop).
func TestBackupSQLByVersion(t *testing.T) {
	cases := []struct {
		num         int
		start, stop string
	}{
		{130023, "pg_catalog.pg_start_backup($1::text, true, false)", "pg_catalog.pg_stop_backup(false, false)"},
		{140023, "pg_catalog.pg_start_backup($1::text, true, false)", "pg_catalog.pg_stop_backup(false, false)"},
		{150018, "pg_catalog.pg_backup_start($1::text, true)", "pg_catalog.pg_backup_stop(false)"},
		{180004, "pg_catalog.pg_backup_start($1::text, true)", "pg_catalog.pg_backup_stop(false)"},
	}
	for _, c := range cases {
		if s := backupStartSQL(c.num, true); !strings.Contains(s, c.start) || !strings.Contains(s, "pg_walfile_name(lsn)") {
			t.Errorf("%d start: %s", c.num, s)
		}
		if s := backupStopSQL(c.num); !strings.Contains(s, c.stop) || !strings.Contains(s, "labelfile::text") || !strings.Contains(s, "spcmapfile::text") {
			t.Errorf("%d stop: %s", c.num, s)
		}
	}
	if s := backupStartSQL(140000, false); !strings.Contains(s, "($1::text, false, false)") {
		t.Errorf("start-fast=n: %s", s)
	}
}
