package expire

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/faulty"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
)

var ctx = context.Background()

const walDir = "archive/main/15-1/0000000100000000"

// applyRepo writes a repository for the backups of chain(desc): backup.info,
// archive.info, a label directory with its manifests per backup and WAL
// segments 1..n (stored as <seg>-<sha1>.gz).
func applyRepo(t *testing.T, desc string, segs int) (storage.Storage, *repo.BackupInfo) {
	t.Helper()
	st := posix.New(t.TempDir())
	bi := chain(t, desc)
	if err := repo.SaveBackupInfo(ctx, st, "main", bi, ""); err != nil {
		t.Fatal(err)
	}
	ai := &repo.ArchiveInfo{DB: repo.ArchiveHistory{ID: 1, SystemID: 7, Version: "15"}}
	ai.History = []repo.ArchiveHistory{ai.DB}
	if err := repo.SaveArchiveInfo(ctx, st, "main", ai, ""); err != nil {
		t.Fatal(err)
	}
	put := func(p string) {
		w, err := st.Create(ctx, p, storage.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("x"))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	l := repo.Layout{Stanza: "main"}
	for _, c := range bi.Current {
		put(l.Manifest(c.Label))
		put(l.Manifest(c.Label) + repo.CopyExt)
		put(l.LabelDir(c.Label) + "/pg_data/PG_VERSION.gz")
	}
	for i := 1; i <= segs; i++ {
		put(fmt.Sprintf("%s/0000000100000000%08X-%040x.gz", walDir, i, i))
	}
	return st, bi
}

func labelsIn(t *testing.T, st storage.Storage) []string {
	t.Helper()
	list, err := st.List(ctx, "backup/main")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, en := range list {
		if en.Type == storage.TypePath && repo.IsLabel(en.Name) {
			out = append(out, en.Name)
		}
	}
	sort.Strings(out)
	return out
}

func segsIn(t *testing.T, st storage.Storage) []string {
	t.Helper()
	list, _ := st.List(ctx, walDir)
	var out []string
	for _, en := range list {
		out = append(out, en.Name[16:24])
	}
	sort.Strings(out)
	return out
}

func target(st storage.Storage, dry bool) (*Target, *bytes.Buffer) {
	var b bytes.Buffer
	t := &Target{Storage: st, Layout: repo.Layout{Stanza: "main"}, DryRun: dry,
		Log: log.New(&b, &b, log.Info, log.Off), Prefix: "repo1: "}
	if dry {
		t.Prefix = "[DRY-RUN] " + t.Prefix
	}
	return t, &b
}

var keepOneFull = Policy{HasFull: true, Full: 1, HasArchive: true, Archive: 1, ArchiveType: "full"}

// Retention of one full backup: the older full goes from backup.info and
// the repository (latest points at the kept one), and the WAL before the
// kept backup's archive start goes. A dry run logs the same and changes
// nothing.
func TestApply(t *testing.T) {
	for _, dry := range []bool{true, false} {
		st, bi := applyRepo(t, "F F", 6)
		plan, err := Plan(bi, nil, keepOneFull, now)
		if err != nil {
			t.Fatal(err)
		}
		x, out := target(st, dry)
		if err := ApplyBackups(ctx, x, bi, plan); err != nil {
			t.Fatal(err)
		}
		if err := ApplyWAL(ctx, x, bi, plan); err != nil {
			t.Fatal(err)
		}
		old, kept := "20261101-000000F", "20261101-000001F"
		pre := x.Prefix
		for _, line := range []string{
			pre + "remove expired backup " + old,
			pre + "15-1 archive retention on backup " + kept + ", start = 000000010000000000000004",
			pre + "15-1 remove archive, start = 000000010000000000000001, stop = 000000010000000000000003",
		} {
			if !strings.Contains(out.String(), line) {
				t.Errorf("dry=%v: log lacks %q:\n%s", dry, line, out)
			}
		}
		saved, err := repo.LoadBackupInfo(ctx, st, "main", "")
		if err != nil {
			t.Fatal(err)
		}
		if dry {
			if got := labelsIn(t, st); len(got) != 2 || len(saved.Current) != 2 {
				t.Fatalf("dry run removed backups: %v", got)
			}
			if got := segsIn(t, st); len(got) != 6 {
				t.Fatalf("dry run removed WAL: %v", got)
			}
			continue
		}
		if got := labelsIn(t, st); len(got) != 1 || got[0] != kept {
			t.Fatalf("backups left: %v", got)
		}
		if _, ok := saved.Find(old); ok || len(saved.Current) != 1 {
			t.Fatalf("backup.info still lists %s", old)
		}
		if got := strings.Join(segsIn(t, st), " "); got != "00000004 00000005 00000006" {
			t.Fatalf("WAL left: %s", got)
		}
	}
}

// A removal that fails half way is a clear error and leaves no
// backup.manifest behind (the next backup.info reconstruction must not
// bring the backup back); the next expire removes the leftover directory.
// A backup.info that cannot be saved removes nothing.
func TestApplyFaults(t *testing.T) {
	old := "20261101-000000F"
	st, bi := applyRepo(t, "F F", 6)
	plan, _ := Plan(bi, nil, keepOneFull, now)
	fs := faulty.New(st, 1, faulty.Fault{Op: faulty.OpRemove, Nth: 3, Path: old})
	x, _ := target(fs, false)
	err := ApplyBackups(ctx, x, bi, plan)
	if errs.CodeOf(err) != errs.PathRemove || !strings.Contains(err.Error(), "unable to remove expired backup "+old) {
		t.Fatalf("failed removal: %v", err)
	}
	l := repo.Layout{Stanza: "main"}
	for _, m := range []string{l.Manifest(old), l.Manifest(old) + repo.CopyExt} {
		if ok, _ := st.Exists(ctx, m); ok {
			t.Fatalf("%s left after a failed removal", m)
		}
	}
	saved, _ := repo.LoadBackupInfo(ctx, st, "main", "")
	plan, _ = Plan(saved, nil, keepOneFull, now)
	x, out := target(st, false)
	if err := ApplyBackups(ctx, x, saved, plan); err != nil {
		t.Fatal(err)
	}
	if got := labelsIn(t, st); len(got) != 1 || !strings.Contains(out.String(), "remove expired backup "+old) {
		t.Fatalf("leftover not removed: %v\n%s", got, out)
	}

	st, bi = applyRepo(t, "F F", 6)
	plan, _ = Plan(bi, nil, keepOneFull, now)
	x, _ = target(faulty.New(st, 1, faulty.Fault{Op: faulty.OpCreate, Prob: 1, Path: "backup.info"}), false)
	if err := ApplyBackups(ctx, x, bi, plan); err == nil {
		t.Fatal("unsaved backup.info accepted")
	}
	if got := labelsIn(t, st); len(got) != 2 {
		t.Fatalf("backups removed although backup.info was not saved: %v", got)
	}

	// WAL: a listing or removal fault is an error naming the path.
	for _, c := range []struct {
		f    faulty.Fault
		code errs.Code
	}{
		{faulty.Fault{Op: faulty.OpList, Nth: 1, Path: "15-1"}, errs.PathOpen},
		{faulty.Fault{Op: faulty.OpRemove, Nth: 1, Path: "0000000100000000"}, errs.FileRemove},
	} {
		st, bi := applyRepo(t, "F F", 6)
		plan, _ := Plan(bi, nil, keepOneFull, now)
		x, _ := target(faulty.New(st, 1, c.f), false)
		if err := ApplyBackups(ctx, x, bi, plan); err != nil {
			t.Fatal(err)
		}
		if err := ApplyWAL(ctx, x, bi, plan); errs.CodeOf(err) != c.code || !strings.Contains(err.Error(), "injected") {
			t.Fatalf("WAL removal with %v: %v", c.f, err)
		}
	}

	// archive.info and backup.info that disagree: FormatError.
	st, bi = applyRepo(t, "F F", 6)
	plan, _ = Plan(bi, nil, keepOneFull, now)
	ai := &repo.ArchiveInfo{DB: repo.ArchiveHistory{ID: 2, SystemID: 7, Version: "16"}}
	ai.History = []repo.ArchiveHistory{{ID: 1, SystemID: 7, Version: "15"}, ai.DB}
	if err := repo.SaveArchiveInfo(ctx, st, "main", ai, ""); err != nil {
		t.Fatal(err)
	}
	x, _ = target(st, false)
	if err := ApplyWAL(ctx, x, bi, plan); errs.CodeOf(err) != errs.Format {
		t.Fatalf("history mismatch: %v", err)
	}
}
