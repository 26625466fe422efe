package archive

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/faulty"
	"github.com/pgbr-dev/pgbr/internal/storage/local"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
	"github.com/pgbr-dev/pgbr/internal/workpool"
)

const (
	stanza = "main"
	seg1   = "000000010000000000000001"
	seg2   = "000000010000000000000002"
	sysID  = uint64(7123456789012345678)
)

var ctx = context.Background()

func newLog() (*log.Logger, *log.Capture) {
	b := &log.Capture{}
	return log.New(b, b, log.Info, log.Off), b
}

// newRepo makes a posix repository with a stanza's archive.info (15-1).
func newRepo(t *testing.T, name string) Repo {
	t.Helper()
	st := posix.New(t.TempDir())
	a := &repo.ArchiveInfo{DB: repo.ArchiveHistory{ID: 1, SystemID: sysID, Version: "15"}}
	a.History = []repo.ArchiveHistory{a.DB}
	if err := repo.SaveArchiveInfo(ctx, st, stanza, a, ""); err != nil {
		t.Fatal(err)
	}
	return Repo{Name: name, Storage: st}
}

// walFile writes a fake WAL file into a pg_wal directory.
func walFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sha(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

func segData(b byte) []byte { return bytes.Repeat([]byte{b}, 64*1024) }

func pushOpts(l *log.Logger, repos ...Repo) *PushOptions {
	return &PushOptions{Stanza: stanza, Repos: repos, Compress: filter.Gz, Level: 1, Log: l,
		Cluster: &repo.ArchiveHistory{SystemID: sysID, Version: "15"}}
}

func getOpts(l *log.Logger, repos ...Repo) *GetOptions {
	return &GetOptions{Stanza: stanza, Repos: repos, SystemID: sysID, Version: "15", Log: l}
}

// listAll lists every file under dir of st (recursively).
func listAll(t *testing.T, st storage.Storage, dir string) []string {
	t.Helper()
	var out []string
	list, err := st.List(ctx, dir)
	if err != nil {
		return nil
	}
	for _, f := range list {
		if f.Type == storage.TypePath {
			out = append(out, listAll(t, st, dir+"/"+f.Name)...)
		} else {
			out = append(out, dir+"/"+f.Name)
		}
	}
	return out
}

// A segment is pushed compressed under <name>-<sha1>.gz to every
// repository and comes back byte for byte; a history file is stored raw.
// Pushing it again with the same content is accepted (with a warning
// under archive-mode-check), with another content refused.
func TestPushGet(t *testing.T) {
	l, out := newLog()
	r1, r2 := newRepo(t, "repo1"), newRepo(t, "repo2")
	wal := t.TempDir()
	data := segData(1)
	p := walFile(t, wal, seg1, data)
	o := pushOpts(l, r1, r2)
	if err := Push(ctx, o, p); err != nil {
		t.Fatal(err)
	}
	want := "archive/main/15-1/0000000100000000/" + seg1 + "-" + sha(data) + ".gz"
	for _, r := range []Repo{r1, r2} {
		if got := listAll(t, r.Storage, "archive/main/15-1"); len(got) != 1 || got[0] != want {
			t.Fatalf("%s holds %v, want %s", r.Name, got, want)
		}
	}
	if !strings.Contains(out.String(), "pushed WAL file '"+seg1+"' to the archive") {
		t.Fatalf("log: %s", out)
	}
	hist := walFile(t, wal, "00000002.history", []byte("1\t0/3000000\tno recovery target\n"))
	if err := Push(ctx, o, hist); err != nil {
		t.Fatal(err)
	}
	if ok, _ := r1.Storage.Exists(ctx, "archive/main/15-1/00000002.history"); !ok {
		t.Fatal("history file not stored raw")
	}

	o.ModeCheck = true
	if err := Push(ctx, o, p); err != nil {
		t.Fatalf("same segment again: %v", err)
	}
	if !strings.Contains(out.String(), "already exists in the repo1 archive with the same checksum") {
		t.Fatalf("no warning for a segment pushed twice: %s", out)
	}
	walFile(t, wal, seg1, segData(2))
	if err := Push(ctx, o, p); errs.CodeOf(err) != errs.ArchiveDuplicate {
		t.Fatalf("other content for an archived segment: %v", err)
	}

	// Get: from the first repository that has it, atomically into dest.
	dest := t.TempDir()
	root, err := local.Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := Get(ctx, getOpts(l, r1, r2), seg1, root, "RECOVERYXLOG"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "RECOVERYXLOG")); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("fetched segment differs: %v", err)
	}
	if !strings.Contains(out.String(), "found "+seg1+" in the repo1: 15-1 archive") {
		t.Fatalf("log: %s", out)
	}
	if err := Get(ctx, getOpts(l, r1), "00000002.history", root, "RECOVERYHISTORY"); err != nil {
		t.Fatal(err)
	}
	var nf *NotFoundError
	if err := Get(ctx, getOpts(l, r1, r2), seg2, root, "RECOVERYXLOG"); !errors.As(err, &nf) || err.Error() != "unable to find "+seg2+" in the archive" {
		t.Fatalf("missing segment: %v", err)
	}
	// Another cluster's identity finds no archive id: no valid repository.
	o2 := getOpts(l, r1)
	o2.SystemID++
	if err := Get(ctx, o2, seg1, root, "X"); errs.CodeOf(err) != errs.RepoInvalid {
		t.Fatalf("other system id: %v", err)
	}
	if ents, _ := os.ReadDir(dest); len(ents) != 2 {
		t.Fatalf("files in dest: %v", ents)
	}
}

// A repository whose archive.info does not match the cluster is skipped
// and reported after the healthy ones got the file; none healthy is
// RepoInvalidError. A short file fails the header check.
func TestPushMismatch(t *testing.T) {
	l, _ := newLog()
	good, other := newRepo(t, "repo1"), newRepo(t, "repo2")
	a := &repo.ArchiveInfo{DB: repo.ArchiveHistory{ID: 1, SystemID: sysID + 1, Version: "15"}}
	a.History = []repo.ArchiveHistory{a.DB}
	if err := repo.SaveArchiveInfo(ctx, other.Storage, stanza, a, ""); err != nil {
		t.Fatal(err)
	}
	wal := t.TempDir()
	p := walFile(t, wal, seg1, segData(1))
	err := Push(ctx, pushOpts(l, good, other), p)
	if errs.CodeOf(err) != errs.Command || !strings.Contains(err.Error(), "repo2: [ArchiveMismatchError] PostgreSQL version 15") {
		t.Fatalf("mismatched repo2: %v", err)
	}
	if got := listAll(t, good.Storage, "archive/main/15-1"); len(got) != 1 {
		t.Fatalf("healthy repo1 did not get the segment: %v", got)
	}
	if err := Push(ctx, pushOpts(l, other), p); errs.CodeOf(err) != errs.RepoInvalid {
		t.Fatalf("no healthy repo: %v", err)
	}
	o := pushOpts(l, good)
	o.HeaderCheck = true
	if err := Push(ctx, o, walFile(t, wal, seg2, []byte("short"))); errs.CodeOf(err) != errs.FileRead {
		t.Fatalf("header check of a short file: %v", err)
	}
	if err := Push(ctx, o, filepath.Join(wal, "000000010000000000000009")); errs.CodeOf(err) != errs.FileMissing {
		t.Fatalf("missing WAL file: %v", err)
	}
}

// Every storage fault during a push is a clear error naming the repository
// and leaves no stored segment (a later push then succeeds); every fault
// during a get leaves nothing in the destination.
func TestPushGetFaults(t *testing.T) {
	l, _ := newLog()
	wal := t.TempDir()
	data := segData(3)
	p := walFile(t, wal, seg1, data)
	for _, f := range []faulty.Fault{
		{Op: faulty.OpList, Nth: 1},
		{Op: faulty.OpPathCreate, Nth: 1},
		{Op: faulty.OpCreate, Nth: 1},
		{Op: faulty.OpWrite, Nth: 1, Kind: faulty.KindENOSPC},
		{Op: faulty.OpWrite, Nth: 1, Kind: faulty.KindShort},
		{Op: faulty.OpCommit, Nth: 1},
	} {
		t.Run(string(f.Op)+"-"+string(f.Kind), func(t *testing.T) {
			r := newRepo(t, "repo1")
			fs := faulty.New(r.Storage, 1, f)
			fr := Repo{Name: "repo1", Storage: fs}
			err := Push(ctx, pushOpts(l, fr), p)
			if errs.CodeOf(err) != errs.Command || !strings.Contains(err.Error(), "repo1: [") || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("push with %v: %v", f, err)
			}
			if got := listAll(t, r.Storage, "archive/main/15-1"); len(got) != 0 {
				t.Fatalf("half-written push: %v", got)
			}
			if err := Push(ctx, pushOpts(l, fr), p); err != nil {
				t.Fatalf("retry: %v", err)
			}
		})
	}
	r := newRepo(t, "repo1")
	if err := Push(ctx, pushOpts(l, r), p); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f    faulty.Fault
		code errs.Code
	}{
		{faulty.Fault{Op: faulty.OpList, Nth: 1}, errs.PathOpen},
		{faulty.Fault{Op: faulty.OpOpen, Nth: 1, Path: "0000000100000000/"}, errs.FileRead},
		{faulty.Fault{Op: faulty.OpRead, Nth: 1, Kind: faulty.KindDrop, Path: "0000000100000000/"}, errs.FileRead},
	} {
		fs := faulty.New(r.Storage, 1, c.f)
		dest := t.TempDir()
		root, err := local.Open(dest)
		if err != nil {
			t.Fatal(err)
		}
		err = Get(ctx, getOpts(l, Repo{Name: "repo1", Storage: fs}), seg1, root, "RECOVERYXLOG")
		root.Close()
		if errs.CodeOf(err) != c.code {
			t.Fatalf("get with %v: %v", c.f, err)
		}
		var nf *NotFoundError
		if errors.As(err, &nf) {
			t.Fatalf("a failed read is reported as not found: %v", err)
		}
		if ents, _ := os.ReadDir(dest); len(ents) != 0 {
			t.Fatalf("get with %v left %v", c.f, ents)
		}
	}

	// A stored segment whose content does not match its name fails the
	// checksum and leaves nothing.
	stored := "archive/main/15-1/0000000100000000/" + seg1 + "-" + sha(data) + ".gz"
	w, err := r.Storage.Create(ctx, stored, storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := filter.NewWritePipeline(w, filter.Gz, 1, "")
	pw.Write([]byte("not the segment"))
	pw.Close()
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	root, _ := local.Open(dest)
	defer root.Close()
	err = Get(ctx, getOpts(l, r), seg1, root, "RECOVERYXLOG")
	if errs.CodeOf(err) != errs.FileRead || !strings.Contains(err.Error(), "ChecksumError") {
		t.Fatalf("corrupt segment: %v", err)
	}
	if ents, _ := os.ReadDir(dest); len(ents) != 0 {
		t.Fatalf("corrupt get left %v", ents)
	}
}

func pool(workers, n int, job func(ctx context.Context, proc, i int) error) error {
	return workpool.Run(ctx, workers, n, job)
}

// The background push pushes every ready WAL file and leaves <wal>.ok;
// a file that fails gets <wal>.error with its code and message; stale
// status files go.
func TestPushAsync(t *testing.T) {
	l, out := newLog()
	r := newRepo(t, "repo1")
	wal := t.TempDir()
	os.Mkdir(filepath.Join(wal, "archive_status"), 0o700)
	for i, n := range []string{seg1, seg2} {
		walFile(t, wal, n, segData(byte(i)))
		walFile(t, filepath.Join(wal, "archive_status"), n+".ready", nil)
	}
	// Ready but missing: fails.
	walFile(t, filepath.Join(wal, "archive_status"), "000000010000000000000003.ready", nil)
	spoolDir := t.TempDir()
	spool, err := OpenSpool(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	walFile(t, spoolDir, "000000010000000000000000.ok", nil) // stale
	err = PushAsync(ctx, &PushAsyncOptions{Push: pushOpts(l, r), Out: spool, WalDir: wal, Workers: 2, Pool: pool, Log: l})
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(spoolDir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != seg1+".ok "+seg2+".ok 000000010000000000000003.error" {
		t.Fatalf("spool: %v", names)
	}
	b, _ := os.ReadFile(filepath.Join(spoolDir, "000000010000000000000003.error"))
	if code, msg := ParseStatus(b); code != errs.FileMissing || !strings.Contains(msg, "unable to open missing file") {
		t.Fatalf("error status: %d %s", code, msg)
	}
	if !strings.Contains(out.String(), "push 3 WAL file(s) to the archive: "+seg1+"...") {
		t.Fatalf("log: %s", out)
	}

	// A push that could not be prepared fails every file in its status.
	os.Remove(filepath.Join(spoolDir, seg1+".ok"))
	setup := errs.New(errs.OptionInvalid, "bad option")
	if err := PushAsync(ctx, &PushAsyncOptions{SetupErr: setup, Out: spool, WalDir: wal, Workers: 1, Pool: pool, Log: l}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(spoolDir, seg1+".error"))
	if code, msg := ParseStatus(b); code != errs.OptionInvalid || msg != "bad option" {
		t.Fatalf("setup error status: %d %s", code, msg)
	}
}

// The background get fetches the requested segment and the next ones
// into the spool until the first missing one; a requested segment in no
// repository leaves <seg>.ok; the foreground moves a fetched segment to
// its destination.
func TestGetAsync(t *testing.T) {
	l, _ := newLog()
	r := newRepo(t, "repo1")
	wal := t.TempDir()
	segs := []string{seg1, seg2, "000000010000000000000003"}
	for i, n := range segs[:2] {
		if err := Push(ctx, pushOpts(l, r), walFile(t, wal, n, segData(byte(i)))); err != nil {
			t.Fatal(err)
		}
	}
	spoolDir := t.TempDir()
	spool, err := OpenSpool(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	o := &GetAsyncOptions{Get: getOpts(l, r), In: spool, Name: seg1, SegmentSize: 16 << 20, QueueMax: 5 * 16 << 20, Workers: 2, Pool: pool, Log: l}
	if err := GetAsync(ctx, o); err != nil {
		t.Fatal(err)
	}
	for i, n := range segs[:2] {
		if b, err := os.ReadFile(filepath.Join(spoolDir, n)); err != nil || !bytes.Equal(b, segData(byte(i))) {
			t.Fatalf("spooled %s: %v", n, err)
		}
	}
	ents, _ := os.ReadDir(spoolDir)
	if len(ents) != 2 {
		t.Fatalf("spool: %v", ents)
	}
	pgWal := t.TempDir()
	w := &WaitOptions{Dir: spoolDir, Log: l, Start: func() error { t.Fatal("started a background process"); return nil }}
	if err := WaitGot(ctx, w, seg1, filepath.Join(pgWal, "RECOVERYXLOG")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(pgWal, "RECOVERYXLOG")); err != nil || !bytes.Equal(b, segData(0)) {
		t.Fatalf("moved segment: %v", err)
	}

	o.Name = segs[2]
	if err := GetAsync(ctx, o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(spoolDir, seg2)); !os.IsNotExist(err) {
		t.Fatal("a segment before the requested one stayed in the spool")
	}
	var nf *NotFoundError
	if err := WaitGot(ctx, w, segs[2], filepath.Join(pgWal, "RECOVERYXLOG")); !errors.As(err, &nf) || !nf.Async {
		t.Fatalf("missing segment: %v", err)
	}

	// A failing repository: the requested segment's .error reaches the
	// foreground as its error.
	fs := faulty.New(r.Storage, 1, faulty.Fault{Op: faulty.OpList, Prob: 1})
	o.Get = getOpts(l, Repo{Name: "repo1", Storage: fs})
	o.Name = seg2
	if err := GetAsync(ctx, o); err != nil {
		t.Fatal(err)
	}
	if err := WaitGot(ctx, w, seg2, filepath.Join(pgWal, "RECOVERYXLOG")); errs.CodeOf(err) != errs.PathOpen {
		t.Fatalf("failed get: %v", err)
	}
}

// The foreground wait starts the background process and times out with
// the log file in the hint when nothing answers; a signal ends it.
func TestWaitTimeout(t *testing.T) {
	l, _ := newLog()
	starts := 0
	w := &WaitOptions{Dir: t.TempDir(), Log: l, LogFile: "/log/main-archive-push-async.log",
		Start: func() error { starts++; return nil }}
	err := WaitPushed(ctx, w, "/pg_wal/"+seg1)
	if errs.CodeOf(err) != errs.ArchiveTimeout || !strings.Contains(err.Error(), "HINT: check '/log/main-archive-push-async.log' for errors.") {
		t.Fatalf("timeout: %v", err)
	}
	if starts != 1 {
		t.Fatalf("background process started %d times", starts)
	}
	w.Start = func() error { return errs.New(errs.Execute, "cannot start") }
	if err := WaitPushed(ctx, w, "/pg_wal/"+seg1); errs.CodeOf(err) != errs.Execute {
		t.Fatalf("start failure: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	w.Start = func() error { return nil }
	w.Timeout = 1 << 40
	if err := WaitPushed(cctx, w, "/pg_wal/"+seg1); errs.CodeOf(err) != errs.Term {
		t.Fatalf("signal: %v", err)
	}
	// An .error status is returned (and removed).
	walFile(t, w.Dir, seg1+".error", []byte("45\nboom"))
	if err := WaitPushed(ctx, w, "/pg_wal/"+seg1); errs.CodeOf(err) != 45 || err.Error() != "boom" {
		t.Fatalf("error status: %v", err)
	}
	walFile(t, w.Dir, seg1+".ok", nil)
	if err := WaitPushed(ctx, w, "/pg_wal/"+seg1); err != nil {
		t.Fatal(err)
	}
}
