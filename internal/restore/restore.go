// Package restore is the engine of the restore command: it writes a backup
// set of the repository into PGDATA, its tablespaces and restored links,
// then the recovery settings and, last, pg_control.
//
// The command (internal/command/restore.go) reads the options, selects the
// backup set and loads its manifest; Run does the rest. Restore writes only
// inside its destinations (dest.go), never follows a link out of them, and
// leaves a directory PostgreSQL cannot start from until everything is on
// disk: pg_control is removed first and restored last, after a syncfs of
// every destination's filesystem.
package restore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/progress"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/local"
	"github.com/pgbr-dev/pgbr/internal/workpool"
)

// Pool runs n jobs on workers goroutines and returns the first error
// (workpool.Run's contract; the command passes one that also turns a panic
// into AssertError [025] and a signal into TermError [063]).
type Pool func(workers, n int, job func(ctx context.Context, proc, i int) error) error

// Options is one restore: what to restore, from where, to where.
type Options struct {
	Stanza  string
	Storage storage.Storage // the repository holding the backup set
	// Manifest is the backup set's manifest, loaded (and decrypted: its
	// CipherPass decrypts the files) and checked with CheckRestorable.
	Manifest *repo.Manifest
	PgData   string // restore destination of pg_data (clean, absolute)

	Delta bool // keep files that match the manifest (SHA-1)
	Force bool // with Delta: match on size and time instead; alone: overwrite every file
	// Tablespace and link destinations (--tablespace-map name|oid=path,
	// --tablespace-map-all, --link-map link=path, --link-all).
	TablespaceMap    [][2]string
	TablespaceMapAll string
	LinkMap          [][2]string
	LinkAll          bool
	// Selective restore (--db-include, --db-exclude).
	DBInclude, DBExclude []string

	// Recovery is written into postgresql.auto.conf (Type "preserve":
	// nothing). Online, FileMode, UID, GID and Now are set by Run.
	Recovery Recovery

	Workers  int  // files restored at once (process-max)
	Root     bool // running as root: restored files get the manifest's owners
	Log      *log.Logger
	Progress *progress.Counter // nil: no progress line
	Pool     Pool              // nil: workpool.Run on ctx
	Now      func() time.Time  // nil: time.Now

	// The calls that make local writes durable (nil: (*os.File).Sync and
	// syncfs(2)); tests and the pgbr_faults build replace them.
	FileSync func(*os.File) error
	Syncfs   func(fd int) error
}

// Result is what a completed restore wrote.
type Result struct {
	Size  uint64 // bytes of the files restored
	Files int    // files restored, pg_control included
}

// restoreRun holds the state of one restore.
type restoreRun struct {
	ctx     context.Context
	opts    Options
	log     *log.Logger
	st      storage.Storage
	stanza  string
	m       *repo.Manifest
	pgData  string
	delta   bool
	force   bool
	root    bool
	procs   int // process-max
	uids    map[string]int
	gids    map[string]int
	defUID  int
	defGID  int
	targets map[string]string // manifest target name → restore path (pg_data, pg_tblspc/N)
	// linkDest holds the links restored as links (link-all, link-map) other
	// than tablespaces: manifest link name → destination directory.
	linkDest map[string]string
	// roots are the directories restore writes to (dest.go): "pg_data",
	// each tablespace target and each name of linkDest.
	roots    map[string]*local.Root
	pg       *local.Root     // PGDATA
	zeroDB   map[string]bool // database oids whose files are restored as zeroes (selective restore)
	warned   map[string]bool
	mu       sync.Mutex
	fileSync func(*os.File) error
	fsSync   func(fd int) error
}

// Check refuses a PGDATA where PostgreSQL is running and turns delta and
// force off (with pgBackRest's warning) when pgData does not look like a
// cluster directory. The command calls it before it selects the backup set.
func Check(pgData string, delta, force bool, l *log.Logger) (bool, bool, error) {
	if _, err := os.Stat(filepath.Join(pgData, "postmaster.pid")); err == nil {
		return false, false, errs.New(errs.PgRunning, "unable to restore while PostgreSQL is running\nHINT: presence of 'postmaster.pid' in '%s' indicates PostgreSQL is running.\nHINT: remove 'postmaster.pid' only if PostgreSQL is not running.", pgData)
	}
	if delta || force {
		_, e1 := os.Stat(filepath.Join(pgData, "PG_VERSION"))
		_, e2 := os.Stat(filepath.Join(pgData, repo.ManifestName))
		if e1 != nil && e2 != nil {
			if l != nil {
				l.Warnf("--delta or --force specified but unable to find 'PG_VERSION' or 'backup.manifest' in '%s' to confirm that this is a valid $PGDATA directory.  --delta and --force have been disabled and if any files exist in the destination directories the restore will be aborted.", pgData)
			}
			return false, false, nil
		}
	}
	return delta, force, nil
}

// Run restores opts.Manifest's backup set into opts.PgData (and the
// tablespace and link destinations).
func Run(ctx context.Context, opts Options) (Result, error) {
	if opts.Manifest == nil || opts.Storage == nil || opts.PgData == "" {
		return Result{}, errs.New(errs.Assert, "restore needs a manifest, a repository and a destination")
	}
	rr := &restoreRun{ctx: ctx, opts: opts, log: opts.Log, st: opts.Storage, stanza: opts.Stanza, m: opts.Manifest,
		pgData: opts.PgData, delta: opts.Delta, force: opts.Force, root: opts.Root, procs: max(opts.Workers, 1),
		uids: map[string]int{}, gids: map[string]int{}, warned: map[string]bool{},
		fileSync: opts.FileSync, fsSync: opts.Syncfs}
	if rr.log == nil {
		rr.log = log.Discard()
	}
	if rr.opts.Pool == nil {
		rr.opts.Pool = func(workers, n int, job func(ctx context.Context, proc, i int) error) error {
			return workpool.Run(ctx, workers, n, job)
		}
	}
	if rr.opts.Now == nil {
		rr.opts.Now = time.Now
	}
	if rr.fileSync == nil {
		rr.fileSync = (*os.File).Sync
	}
	if rr.fsSync == nil {
		rr.fsSync = unix.Syncfs
	}
	return rr.run()
}

func (rr *restoreRun) run() (Result, error) {
	m := rr.m
	label := m.Backup.Label
	// Targets and their restore paths.
	rr.targets = map[string]string{}
	pgTarget, ok := m.FindTarget(repo.TargetPgData)
	if !ok {
		return Result{}, errs.New(errs.Format, "manifest of backup %s has no pg_data target", label)
	}
	if filepath.Clean(pgTarget.Path) != rr.pgData {
		rr.log.Infof("remap data directory to '%s'", rr.pgData)
	}
	rr.targets[repo.TargetPgData] = rr.pgData
	if err := rr.mapTablespaces(); err != nil {
		return Result{}, err
	}
	for _, kv := range rr.opts.LinkMap {
		if _, ok := m.FindLink("pg_data/" + kv[0]); !ok || strings.HasPrefix(kv[0], "pg_tblspc/") {
			return Result{}, errs.New(errs.LinkMap, "unable to remap invalid link '%s'", kv[0])
		}
	}
	if err := rr.planDestinations(); err != nil {
		return Result{}, err
	}

	// Destination checks.
	for name, dir := range rr.targets {
		check := dir
		if name != repo.TargetPgData {
			t, _ := m.FindTarget(name)
			check = filepath.Join(dir, fmt.Sprintf("PG_%s_%d", m.DB.Version, m.DB.CatalogVersion))
			_ = t
		}
		if !rr.delta && !rr.force {
			if ents, err := os.ReadDir(check); err == nil && len(restoreLeftovers(ents)) > 0 {
				return Result{}, errs.New(errs.PathNotEmpty, "unable to restore to path '%s' because it contains files\nHINT: try using --delta if this is what you intended.", check)
			} else if err != nil && !os.IsNotExist(err) {
				return Result{}, errs.Wrap(errs.PathOpen, err, "unable to open path '%s'", check)
			}
		}
	}
	if err := rr.ownerDefaults(); err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(rr.pgData, 0o700); err != nil {
		return Result{}, errs.Wrap(errs.PathCreate, err, "unable to create path '%s'", rr.pgData)
	}
	if err := rr.openRoots(); err != nil {
		return Result{}, err
	}
	defer rr.closeRoots()
	// An interrupted restore must never start: pg_control goes first,
	// and a failure to remove it fails the restore. Through the PGDATA
	// root: a 'global' that is not a real directory (a planted link) is
	// left to clean, which removes it; nothing is followed.
	if fi, err := rr.pg.Lstat("global"); err == nil && fi.IsDir() {
		if err := rr.pg.Remove("global/pg_control"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Result{}, errs.Wrap(errs.FileRemove, err, "unable to remove '%s'", filepath.Join(rr.pgData, "global", "pg_control"))
		}
	}
	if rr.delta || rr.force {
		if err := rr.clean(); err != nil {
			return Result{}, err
		}
	}
	// backup.manifest marks the directory as a pgbr/pgBackRest restore
	// target until the restore completes.
	if err := rr.pg.WriteFileAtomicFrom(repo.ManifestName, m.Render, 0o600, -1, -1, rr.fileSync); err != nil {
		return Result{}, err
	}
	if err := rr.selectDatabases(); err != nil {
		return Result{}, err
	}
	if err := rr.createPaths(); err != nil {
		return Result{}, err
	}
	size, count, err := rr.restoreFiles()
	if err != nil {
		return Result{}, err
	}

	// Recovery settings.
	mode, uid, gid := rr.pathAttrs(repo.TargetPgData)
	if !rr.root {
		uid, gid = -1, -1 // only root gives files away
	}
	rs := rr.opts.Recovery
	rs.Online, rs.FileMode, rs.UID, rs.GID, rs.Now = m.Option.Online, os.FileMode(mode)&0o644, uid, gid, rr.opts.Now()
	if err := rr.writeRecovery(rs); err != nil {
		return Result{}, err
	}
	// Everything restored must be on disk before pg_control appears.
	if err := rr.syncTargets(); err != nil {
		return Result{}, err
	}
	if err := rr.restoreControl(); err != nil {
		return Result{}, err
	}
	if err := rr.pg.Remove(repo.ManifestName); err != nil {
		return Result{}, errs.Wrap(errs.FileRemove, err, "unable to remove backup.manifest")
	}
	if err := rr.syncDirPath(rr.pgData); err != nil {
		return Result{}, err
	}
	rr.log.Infof("restore size = %s, file total = %d", log.Size(size), count)
	return Result{Size: size, Files: count}, nil
}

// mapTablespaces applies --tablespace-map and --tablespace-map-all.
func (rr *restoreRun) mapTablespaces() error {
	maps := map[string]string{}
	for _, kv := range rr.opts.TablespaceMap {
		maps[kv[0]] = kv[1]
	}
	all := rr.opts.TablespaceMapAll
	used := map[string]bool{}
	for _, t := range rr.m.Targets {
		if t.TablespaceID == "" {
			continue
		}
		path := t.Path
		if p, ok := maps[t.TablespaceID]; ok {
			path, used[t.TablespaceID] = p, true
		} else if p, ok := maps[t.TablespaceName]; ok {
			path, used[t.TablespaceName] = p, true
		} else if all != "" {
			if local.CheckName(t.TablespaceName) != nil || strings.Contains(t.TablespaceName, "/") {
				return errs.New(errs.TablespaceMap, "tablespace '%s' name '%s' cannot be a directory of --tablespace-map-all\nHINT: map it with --tablespace-map=%s=<path>.",
					"pg_tblspc/"+t.TablespaceID, t.TablespaceName, t.TablespaceID)
			}
			path = filepath.Join(all, t.TablespaceName)
		}
		if path != t.Path {
			rr.log.Infof("map tablespace '%s' to '%s'", "pg_tblspc/"+t.TablespaceID, path)
		}
		rr.targets[t.Name] = path
	}
	for k := range maps {
		if !used[k] {
			return errs.New(errs.TablespaceMap, "unable to remap invalid tablespace '%s'", k)
		}
	}
	return nil
}

// ownerDefaults decides who owns restored files when running as root.
func (rr *restoreRun) ownerDefaults() error {
	rr.defUID, rr.defGID = os.Geteuid(), os.Getegid()
	for _, p := range []string{rr.pgData, filepath.Dir(rr.pgData)} {
		if fi, err := os.Stat(p); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				rr.defUID, rr.defGID = int(st.Uid), int(st.Gid)
				return nil
			}
		}
	}
	return nil
}

func (rr *restoreRun) uid(o repo.Owner) int {
	if !rr.root || o.None || o.Name == "" {
		return rr.defUID
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if id, ok := rr.uids[o.Name]; ok {
		return id
	}
	id := rr.defUID
	if u, err := user.Lookup(o.Name); err == nil {
		id, _ = strconv.Atoi(u.Uid)
	} else if !rr.warned["u"+o.Name] {
		rr.warned["u"+o.Name] = true
		rr.log.Warnf("unknown user '%s' in backup manifest mapped to the owner of '%s'", o.Name, rr.pgData)
	}
	rr.uids[o.Name] = id
	return id
}

func (rr *restoreRun) gid(o repo.Owner) int {
	if !rr.root || o.None || o.Name == "" {
		return rr.defGID
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if id, ok := rr.gids[o.Name]; ok {
		return id
	}
	id := rr.defGID
	if g, err := user.LookupGroup(o.Name); err == nil {
		id, _ = strconv.Atoi(g.Gid)
	} else if !rr.warned["g"+o.Name] {
		rr.warned["g"+o.Name] = true
		rr.log.Warnf("unknown group '%s' in backup manifest mapped to the group of '%s'", o.Name, rr.pgData)
	}
	rr.gids[o.Name] = id
	return id
}

func (rr *restoreRun) pathAttrs(name string) (uint32, int, int) {
	p, ok := rr.m.FindPath(name)
	if !ok {
		return 0o700, rr.defUID, rr.defGID
	}
	mode, err := repo.ParseMode(p.Mode)
	if err != nil {
		mode = 0o700
	}
	return mode, rr.uid(p.User), rr.gid(p.Group)
}

// createPaths creates every directory, then the links: tablespaces, and
// others restored as links (createLinks).
func (rr *restoreRun) createPaths() error {
	for _, p := range rr.m.Paths {
		root, rel, ok := rr.dest(p.Name)
		if !ok || p.Name == "pg_tblspc" {
			continue
		}
		mode, uid, gid := rr.pathAttrs(p.Name)
		if err := rr.makeDir(root, rel, mode, uid, gid); err != nil {
			return err
		}
	}
	for i := range rr.m.Links {
		l := &rr.m.Links[i]
		if !isTablespaceLink(l.Name) {
			continue // createLinks
		}
		oid := strings.TrimPrefix(l.Name, "pg_data/pg_tblspc/")
		if err := rr.makeLink(l, rr.targets["pg_tblspc/"+oid]); err != nil {
			return err
		}
	}
	return rr.createLinks()
}

type restoreJob struct {
	f    *repo.ManifestFile
	root *local.Root
	rel  string
}

// restoreFiles restores every file but pg_control, largest first.
func (rr *restoreRun) restoreFiles() (uint64, int, error) {
	jobs := make([]restoreJob, 0, len(rr.m.Files))
	var total uint64
	for i := range rr.m.Files {
		f := &rr.m.Files[i]
		if f.Name == "pg_data/global/pg_control" || f.Name == "pg_data/tablespace_map" {
			continue
		}
		root, rel, ok := rr.dest(f.Name)
		if !ok || rel == "." {
			return 0, 0, errs.New(errs.Format, "no restore destination for '%s'", f.Name)
		}
		jobs = append(jobs, restoreJob{f: f, root: root, rel: rel})
		total += f.Size
	}
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].f.Size > jobs[j].f.Size })
	if rr.opts.Progress != nil {
		rr.opts.Progress.SetTotal(len(jobs), int64(total))
	}
	workers := rr.procs
	bufs := make([][]byte, workers+1) // one per worker (proc 1..workers)
	var mu sync.Mutex
	var done uint64
	pf := rr.startPrefetch(rr.ctx, jobs)
	err := rr.opts.Pool(workers, len(jobs), func(ctx context.Context, proc, i int) error {
		j := jobs[i]
		pre := pf.take(ctx, i) // first: every job read ahead is taken
		if bufs[proc] == nil {
			bufs[proc] = make([]byte, 256*1024)
		}
		if err := rr.restoreFile(j.f, j.root, j.rel, bufs[proc], pre, false); err != nil {
			return err
		}
		if rr.opts.Progress != nil {
			rr.opts.Progress.Add(1, int64(j.f.Size))
		}
		mu.Lock()
		done += j.f.Size
		pct := 100.0
		if total > 0 {
			pct = float64(done) * 100 / float64(total)
		}
		mu.Unlock()
		if rr.log.Enabled(log.Detail) { // its parts are built only when logged
			rr.log.ProcDetailf(proc, "restore file %s (%s, %s%%) checksum %s", j.root.Full(j.rel), log.Size(j.f.Size), log.Pct(pct), j.f.EffectiveChecksum())
		}
		return nil
	})
	pf.Stop()
	if err != nil {
		return 0, 0, err
	}
	pc, _ := rr.m.FindFile("pg_data/global/pg_control")
	if pc != nil {
		total += pc.Size
	}
	return total, len(jobs) + 1, nil
}

// openIfMatches opens rel (a regular file, fi from Lstat) when it already
// holds the file (delta; with force on size and time, as pgBackRest 2.45);
// nil when it does not.
func (rr *restoreRun) openIfMatches(f *repo.ManifestFile, root *local.Root, rel string, fi os.FileInfo) *os.File {
	if rr.force {
		if uint64(fi.Size()) != f.Size || fi.ModTime().Unix() != f.Timestamp || f.Timestamp >= rr.m.Backup.TimestampCopyStart {
			return nil
		}
		in, err := root.OpenFile(rel, os.O_RDONLY, 0)
		if err != nil {
			return nil
		}
		return in
	}
	if uint64(fi.Size()) < f.Size {
		return nil
	}
	flag := os.O_RDONLY
	if uint64(fi.Size()) > f.Size {
		flag = os.O_RDWR
	}
	in, err := root.OpenFile(rel, flag, 0)
	if err != nil {
		return nil
	}
	if uint64(fi.Size()) > f.Size {
		if err := in.Truncate(int64(f.Size)); err != nil {
			in.Close()
			return nil
		}
	}
	h := sha1.New()
	if _, err := io.Copy(h, in); err != nil || hex.EncodeToString(h.Sum(nil)) != f.EffectiveChecksum() {
		in.Close()
		return nil
	}
	return in
}

// setAttrs gives an open restored file the manifest's mode, owner (as
// root) and modification time, through the descriptor.
func (rr *restoreRun) setAttrs(out *os.File, dest string, mode uint32, uid, gid int, t time.Time) error {
	if err := out.Chmod(os.FileMode(mode)); err != nil {
		return errs.Wrap(errs.FileMode, err, "unable to set mode for '%s'", dest)
	}
	if rr.root {
		if err := out.Chown(uid, gid); err != nil {
			return errs.Wrap(errs.FileOwner, err, "unable to set ownership for '%s'", dest)
		}
	}
	if err := local.SetTimes(out, t, t); err != nil {
		return errs.Wrap(errs.FileInfo, err, "unable to set time for '%s'", dest)
	}
	return nil
}

// restoreFile writes one file from the repository into root (at rel) and
// verifies it. Nothing there is followed: an existing entry that is not
// the file already is removed and the file created anew.
// pre, when not nil, is the file's stored bytes, read ahead (prefetch.go).
func (rr *restoreRun) restoreFile(f *repo.ManifestFile, root *local.Root, rel string, buf []byte, pre *prefetchSlot, sync bool) error {
	dest := root.Full(rel)
	mode, err := repo.ParseMode(f.Mode)
	if err != nil {
		return errs.Wrap(errs.Format, err, "invalid mode for '%s'", f.Name)
	}
	uid, gid := rr.uid(f.User), rr.gid(f.Group)
	t := time.Unix(f.Timestamp, 0)
	if rr.delta || rr.force {
		if fi, err := root.Lstat(rel); err == nil {
			// --force alone overwrites every file (pgBackRest 2.45).
			if fi.Mode().IsRegular() && rr.delta {
				if in := rr.openIfMatches(f, root, rel, fi); in != nil {
					err := rr.setAttrs(in, dest, mode, uid, gid, t)
					in.Close()
					return err
				}
			}
			if err := root.RemoveAll(rel); err != nil {
				return errs.Wrap(errs.FileRemove, err, "unable to remove '%s'", dest)
			}
		}
	}
	out, err := root.CreateExcl(rel, os.FileMode(mode))
	if errors.Is(err, fs.ErrExist) {
		// Left by something else (a link destination restored into, a
		// temporary file): replace it, never write through it.
		if err = root.Remove(rel); err == nil {
			out, err = root.CreateExcl(rel, os.FileMode(mode))
		}
	}
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s' for write", dest)
	}
	fail := func(err error) error {
		out.Close()
		root.Remove(rel)
		return err
	}
	if rr.zeroed(f.Name) {
		// Selective restore: a database left out is a sparse file of the
		// original size (the database must be dropped after recovery).
		if err := out.Truncate(int64(f.Size)); err != nil {
			return fail(errs.Wrap(errs.FileWrite, err, "unable to size '%s'", dest))
		}
	} else if f.Size > 0 || f.RepoSize > 0 {
		wb := &writeback{f: out}
		// A large file: its hash and writes run beside reading,
		// decrypting and decompressing the next bytes (at process-max 1
		// too: the second goroutine mostly waits in the kernel's copy
		// into the page cache, as the read-ahead ones do).
		parallel := f.Size >= filter.ParallelMin && runtime.GOMAXPROCS(0) > 1
		if err := rr.copyFromRepo(f, wb, dest, buf, pre, parallel); err != nil {
			return fail(err)
		}
		wb.flush()
	}
	if err := rr.setAttrs(out, dest, mode, uid, gid, t); err != nil {
		return fail(err)
	}
	if sync {
		if err := rr.fileSync(out); err != nil {
			return fail(errs.Wrap(errs.FileSync, err, "unable to sync '%s'", dest))
		}
	}
	if err := out.Close(); err != nil {
		return errs.Wrap(errs.FileClose, err, "unable to close '%s'", dest)
	}
	return nil
}

// copyFromRepo streams a file's stored bytes through decryption and
// decompression into out, verifying size and SHA-1; parallel hashes and
// writes on a second goroutine (a large file). dest names out in messages.
func (rr *restoreRun) copyFromRepo(f *repo.ManifestFile, out io.Writer, dest string, buf []byte, pre *prefetchSlot, parallel bool) error {
	if f.BlockIncrMap != 0 {
		if !parallel {
			return rr.copyBlockIncr(f, out)
		}
		aw := filter.NewAsyncWriter(out)
		err := rr.copyBlockIncr(f, aw)
		if cerr := aw.Close(); err == nil && cerr != nil {
			err = errs.Wrap(errs.FileWrite, cerr, "unable to write '%s'", dest)
		}
		return err
	}
	sf := repo.Layout{Stanza: rr.stanza}.StoredFile(rr.m, f, false)
	src := sf.Path
	var p *repo.StoredReader
	var err error
	switch {
	case pre != nil && pre.openErr != nil:
		err = errs.Wrap(errs.FileOpen, pre.openErr, "unable to open '%s' for read", rr.st.Full(src))
	case pre != nil:
		p, err = repo.NewStoredReader(pre.reader(), sf, rr.st.Full(src))
	default:
		p, err = repo.OpenStored(rr.ctx, rr.st, sf)
	}
	if err != nil {
		return err
	}
	defer p.Close()
	if parallel {
		p.SetParallel()
	}
	dw := &destWriter{w: out}
	if _, err := io.CopyBuffer(dw, p, buf); err != nil {
		if dw.err != nil {
			return errs.Wrap(errs.FileWrite, dw.err, "unable to write '%s'", dest)
		}
		if errs.CodeOf(err) != errs.Unknown {
			return errs.Wrap(errs.CodeOf(err), err, "unable to restore '%s' from '%s'", f.Name, rr.st.Full(src))
		}
		return errs.Wrap(errs.FileWrite, err, "unable to restore '%s' from '%s'", f.Name, rr.st.Full(src))
	}
	return p.Verify()
}

// destWriter keeps the error of writing the restored file apart from those
// of reading the repository (it may be written on a second goroutine:
// read err once the copy has returned).
type destWriter struct {
	w   io.Writer
	err error
}

func (d *destWriter) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	if err != nil && d.err == nil {
		d.err = err
	}
	return n, err
}

// copyBlockIncr is copyFromRepo for a file stored with block incremental.
func (rr *restoreRun) copyBlockIncr(f *repo.ManifestFile, out io.Writer) error {
	s := &repo.BlockIncrSource{Ctx: rr.ctx, St: rr.st, Stanza: rr.stanza, M: rr.m}
	return s.Assemble(f, out)
}

// restoreControl writes pg_control last, through a temp name.
func (rr *restoreRun) restoreControl() error {
	f, ok := rr.m.FindFile("pg_data/global/pg_control")
	if !ok {
		return errs.New(errs.FileMissing, "pg_control is missing from the backup manifest")
	}
	root, rel, ok := rr.dest(f.Name)
	if !ok {
		return errs.New(errs.Format, "no restore destination for '%s'", f.Name)
	}
	dest := root.Full(rel)
	tmp := rel + ".pgbackrest.tmp"
	buf := make([]byte, 64*1024)
	if err := rr.restoreFile(f, root, tmp, buf, nil, true); err != nil {
		return err
	}
	if err := root.Rename(tmp, rel); err != nil {
		root.Remove(tmp)
		return errs.Wrap(errs.FileMove, err, "unable to move '%s' to '%s'", root.Full(tmp), dest)
	}
	rr.log.Infof("restore global/pg_control (performed last to ensure aborted restores cannot be started)")
	return rr.syncDirPath(filepath.Dir(dest))
}

// selectDatabases applies --db-include / --db-exclude: user databases not
// selected are restored as sparse files (their PG_VERSION is kept so
// PostgreSQL still sees a database directory). System databases (template0,
// template1, postgres, oid < 16384) are always restored.
func (rr *restoreRun) selectDatabases() error {
	include, exclude := rr.opts.DBInclude, rr.opts.DBExclude
	if len(include) == 0 && len(exclude) == 0 {
		return nil
	}
	system := func(d repo.ManifestDatabase) bool {
		return d.Name == "template0" || d.Name == "template1" || d.Name == "postgres" || d.OID < 16384
	}
	byName := map[string]repo.ManifestDatabase{}
	for _, d := range rr.m.Databases {
		byName[d.Name] = d
	}
	for _, list := range [][]string{include, exclude} {
		for _, n := range list {
			d, ok := byName[n]
			if !ok {
				return errs.New(errs.DbMissing, "database to include '%s' does not exist", n)
			}
			if system(d) {
				return errs.New(errs.DbInvalid, "system databases (template0, postgres, etc.) are included by default")
			}
		}
	}
	rr.zeroDB = map[string]bool{}
	for _, d := range rr.m.Databases {
		if system(d) {
			continue
		}
		keep := len(include) == 0
		for _, n := range include {
			if n == d.Name {
				keep = true
			}
		}
		for _, n := range exclude {
			if n == d.Name {
				keep = false
			}
		}
		if !keep {
			rr.zeroDB[strconv.FormatUint(uint64(d.OID), 10)] = true
		}
	}
	return nil
}

// zeroed reports whether a file belongs to a database left out of a
// selective restore (PG_VERSION excepted).
func (rr *restoreRun) zeroed(name string) bool {
	if len(rr.zeroDB) == 0 || strings.HasSuffix(name, "/PG_VERSION") {
		return false
	}
	parts := strings.Split(name, "/")
	switch {
	case len(parts) >= 4 && parts[0] == "pg_data" && parts[1] == "base":
		return rr.zeroDB[parts[2]]
	case len(parts) >= 5 && parts[0] == "pg_tblspc":
		return rr.zeroDB[parts[3]]
	}
	return false
}

// createLinks restores directory links inside PGDATA (pg_wal on another
// disk, say) as links when --link-all or --link-map asks for it; without
// them they become plain directories, pgBackRest's default. File links are
// always restored as plain files. Destinations were checked and created by
// planDestinations and openRoots.
func (rr *restoreRun) createLinks() error {
	maps := map[string]string{}
	for _, kv := range rr.opts.LinkMap {
		maps[kv[0]] = kv[1]
	}
	used := map[string]bool{}
	for i := range rr.m.Links {
		l := &rr.m.Links[i]
		if isTablespaceLink(l.Name) {
			continue
		}
		rel := strings.TrimPrefix(l.Name, "pg_data/")
		_, mapped := maps[rel]
		used[rel] = mapped
		if t, ok := rr.m.FindTarget(l.Name); ok && t.File != "" && (mapped || rr.opts.LinkAll) {
			rr.log.Warnf("file link '%s' is restored as a plain file", rel)
			continue
		}
		dest, ok := rr.linkDest[l.Name]
		if !ok {
			continue
		}
		if mapped {
			rr.log.Infof("map link '%s' to '%s'", rel, dest)
		}
		if err := rr.makeLink(l, dest); err != nil {
			return err
		}
	}
	for k := range maps {
		if !used[k] {
			return errs.New(errs.LinkMap, "unable to remap invalid link '%s'", k)
		}
	}
	return nil
}
