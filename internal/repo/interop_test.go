//go:build integration

package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/storage/posix"
	"github.com/pgbr-dev/pgbr/internal/testenv"
)

// interopRepo writes a stanza with a full and an incr backup (manifests,
// backup.info, archive.info) using only this package, optionally encrypted.
func interopRepo(t *testing.T, repoPass string) (dir, conf string, bi *BackupInfo) {
	testenv.RequirePgBackRest(t)
	dir = testenv.Dir(t, "repo-interop")
	repoDir := filepath.Join(dir, "repo")
	st := posix.New(repoDir)
	ctx := context.Background()

	incr, err := ParseManifest(manifestTemplate(t))
	if err != nil {
		t.Fatal(err)
	}
	full, _ := ParseManifest(manifestTemplate(t))
	full.Backup.Label = "20261125-144758F"
	full.Backup.Type = BackupTypeFull
	full.Backup.Prior = ""
	full.Backup.Reference = []string{full.Backup.Label}
	for i := range full.Files {
		full.Files[i].Reference = ""
	}

	archiveSub, backupSub, setSub := "", "", ""
	if repoPass != "" {
		archiveSub, backupSub, setSub = "archive-sub-pass", "backup-sub-pass", "set-sub-pass"
		full.CipherPass, incr.CipherPass = setSub, setSub
	}
	ai := &ArchiveInfo{CipherPass: archiveSub, DB: ArchiveHistory{1, 7712118519663905687, "15"},
		History: []ArchiveHistory{{1, 7712118519663905687, "15"}}}
	bi = &BackupInfo{CipherPass: backupSub,
		DB:      BackupDB{202209061, 1300, 1, 7712118519663905687, "15"},
		History: []BackupHistory{{202209061, 1300, 1, 7712118519663905687, "15"}}}
	for _, m := range []*Manifest{incr, full} {
		if err := SaveManifest(ctx, st, "main", m, backupSub); err != nil {
			t.Fatal(err)
		}
		bi.Add(NewBackupInfoEntry(m))
	}
	bi.Current[1].Annotation = map[string]string{"who": "pgbr <test> & co", "tab": "a\tb"}
	if err := SaveArchiveInfo(ctx, st, "main", ai, repoPass); err != nil {
		t.Fatal(err)
	}
	if err := SaveBackupInfo(ctx, st, "main", bi, repoPass); err != nil {
		t.Fatal(err)
	}
	conf = filepath.Join(dir, "pgbackrest.conf")
	c := "[global]\nrepo1-path=" + repoDir + "\nlog-path=" + dir + "\nlock-path=" + dir + "\nlog-level-console=warn\nlog-level-file=off\n"
	if repoPass != "" {
		c += "repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=" + repoPass + "\n"
	}
	c += "\n[main]\npg1-path=" + filepath.Join(dir, "pg") + "\n"
	if err := os.WriteFile(conf, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Chown(t, dir)
	return dir, conf, bi
}

func pgbackrest(t *testing.T, dir, conf string, args ...string) string {
	t.Helper()
	out, code := testenv.AsPostgres(dir, nil, testenv.PgBackRest, append([]string{"--config=" + conf, "--stanza=main"}, args...)...)
	if code != 0 {
		t.Fatalf("pgbackrest %v: exit %d\n%s", args, code, out)
	}
	return out
}

// TestInteropPgBackRestReads: pgBackRest 2.45 reads what this package
// writes (info files and manifests), and when it rewrites backup.info the
// bytes are identical to ours.
func TestInteropPgBackRestReads(t *testing.T) {
	for _, pass := range []string{"", "repo-pass"} {
		name := "plain"
		if pass != "" {
			name = "encrypted"
		}
		t.Run(name, func(t *testing.T) {
			dir, conf, bi := interopRepo(t, pass)
			out := pgbackrest(t, dir, conf, "info", "--output=json")
			var info []struct {
				Name   string
				Status struct{ Code int }
				Backup []struct {
					Label string
					Type  string
					Info  struct {
						Size, Delta uint64
						Repository  struct{ Size, Delta uint64 }
					}
					Annotation map[string]string
				}
				Archive []struct{ ID string }
			}
			if err := json.Unmarshal([]byte(out), &info); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if len(info) != 1 || len(info[0].Backup) != 2 || len(info[0].Archive) != 1 || info[0].Archive[0].ID != "15-1" {
				t.Fatalf("%s", out)
			}
			b := info[0].Backup[1]
			e := bi.Current[1]
			if b.Label != e.Label || b.Type != "incr" || b.Info.Size != e.Size || b.Info.Delta != e.SizeDelta ||
				b.Info.Repository.Size != e.RepoSize || b.Info.Repository.Delta != e.RepoSizeDelta {
				t.Fatalf("%+v vs %+v", b, e)
			}
			if b.Annotation["who"] != "pgbr <test> & co" || b.Annotation["tab"] != "a\tb" {
				t.Fatalf("annotation %+v", b.Annotation)
			}
			// info --set loads the (encrypted) manifest.
			out = pgbackrest(t, dir, conf, "info", "--set="+e.Label)
			if !strings.Contains(out, "database list: db2 (16396), postgres (5)") {
				t.Fatalf("info --set:\n%s", out)
			}
			// expire re-saves backup.info; 2.45's bytes must equal ours.
			path := filepath.Join(dir, "repo/backup/main/backup.info")
			before, _ := os.ReadFile(path)
			fiBefore, _ := os.Stat(path)
			pgbackrest(t, dir, conf, "expire", "--repo1-retention-full=99")
			after, _ := os.ReadFile(path)
			if fiAfter, _ := os.Stat(path); os.SameFile(fiBefore, fiAfter) {
				t.Fatal("expire did not rewrite backup.info")
			}
			if pass == "" && !bytes.Equal(before, after) {
				t.Fatalf("backup.info rewritten by 2.45 differs:\n%s\n---\n%s", before, after)
			}
			if pass != "" {
				st := posix.New(filepath.Join(dir, "repo"))
				got, err := LoadBackupInfo(context.Background(), st, "main", pass)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), bi.Bytes()) {
					t.Fatalf("decrypted backup.info rewritten by 2.45 differs:\n%s\n---\n%s", got.Bytes(), bi.Bytes())
				}
			}
		})
	}
}

// TestInteropReadPgBackRest: files written by a real pgBackRest 2.45 backup
// parse and re-serialise byte for byte.
func TestInteropReadPgBackRest(t *testing.T) {
	for _, enc := range []bool{false, true} {
		name := "plain"
		var global []string
		if enc {
			name = "encrypted"
			global = []string{"repo1-cipher-type=aes-256-cbc", "repo1-cipher-pass=interop-pass"}
		}
		t.Run(name, func(t *testing.T) {
			// Only pgBackRest and PostgreSQL: this test must not depend on the
			// pgbr binary building.
			testenv.RequirePgBackRest(t)
			dir := testenv.Dir(t, "repo-interop-read")
			repoDir := filepath.Join(dir, "repo")
			conf := filepath.Join(dir, "pgbackrest.conf")
			cluster := testenv.NewCluster(t, dir, testenv.ClusterOptions{
				ArchiveCommand: testenv.PgBackRest + " --config=" + conf + " --stanza=main archive-push %p"})
			c := "[global]\nrepo1-path=" + repoDir + "\nlog-path=" + dir + "\nlock-path=" + dir +
				"\nlog-level-console=warn\nlog-level-file=off\nstart-fast=y\narchive-timeout=30\n" + strings.Join(global, "\n") +
				"\n\n[main]\npg1-path=" + cluster.Data + "\npg1-socket-path=" + cluster.Socket +
				"\npg1-port=" + strconv.Itoa(cluster.Port) + "\n"
			if err := os.WriteFile(conf, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(repoDir, 0o750)
			testenv.Chown(t, dir)
			pgbackrest(t, dir, conf, "stanza-create")
			pgbackrest(t, dir, conf, "backup", "--type=full")
			odd := filepath.Join(cluster.Data, "we=ird \"q\"\ttab\\é.txt")
			if err := os.WriteFile(odd, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			testenv.Chown(t, odd)
			cluster.Exec("postgres", "create table t as select generate_series(1, 1000) i")
			pgbackrest(t, dir, conf, "backup", "--type=incr", "--repo1-bundle", "--compress-type=zst")

			pass := ""
			if enc {
				pass = "interop-pass"
			}
			st := posix.New(repoDir)
			ctx := context.Background()
			check := func(path, pass string, parse func([]byte) ([]byte, error)) {
				t.Helper()
				raw, err := os.ReadFile(filepath.Join(repoDir, path))
				if err != nil {
					t.Fatal(err)
				}
				if pass != "" {
					if raw, err = filter.DecryptBytes(raw, pass); err != nil {
						t.Fatalf("%s: %v", path, err)
					}
				}
				out, err := parse(raw)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				if !bytes.Equal(out, raw) {
					t.Errorf("%s: re-serialised bytes differ", path)
					diffBytes(t, out, raw)
				}
			}
			check("archive/main/archive.info", pass, func(b []byte) ([]byte, error) {
				a, err := ParseArchiveInfo(b)
				if err != nil {
					return nil, err
				}
				return a.Bytes(), nil
			})
			check("backup/main/backup.info", pass, func(b []byte) ([]byte, error) {
				x, err := ParseBackupInfo(b)
				if err != nil {
					return nil, err
				}
				return x.Bytes(), nil
			})
			bi, err := LoadBackupInfo(ctx, st, "main", pass)
			if err != nil {
				t.Fatal(err)
			}
			if len(bi.Current) != 2 {
				t.Fatalf("%d backups", len(bi.Current))
			}
			for _, entry := range bi.Current {
				var m *Manifest
				check(BackupManifestPath("main", entry.Label), bi.CipherPass, func(b []byte) ([]byte, error) {
					var err error
					m, err = ParseManifest(b)
					if err != nil {
						return nil, err
					}
					return m.Bytes(), nil
				})
				got := NewBackupInfoEntry(m)
				if !bytes.Equal(got.appendJSON(nil), entry.appendJSON(nil)) {
					t.Errorf("NewBackupInfoEntry differs:\n%s\n%s", got.appendJSON(nil), entry.appendJSON(nil))
				}
				if entry.Type == BackupTypeIncr {
					// compress-type is inherited from the full backup (zst request reset to gz).
					if !m.Backup.Bundle || m.Option.CompressType != "gz" {
						t.Errorf("incr: bundle %v compress %s", m.Backup.Bundle, m.Option.CompressType)
					}
					if _, ok := m.FindFile("pg_data/we=ird \"q\"\ttab\\é.txt"); !ok {
						t.Error("odd file name not found")
					}
				}
				if err := m.Validate(true); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
