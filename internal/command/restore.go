package command

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
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage/local"
)

// restoreRun holds the state of one restore.
type restoreRun struct {
	e       *Env
	stanza  string
	r       *repoT
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
	// roots are the directories restore writes to (restore_dest.go):
	// "pg_data", each tablespace target and each name of linkDest.
	roots  map[string]*local.Root
	pg     *local.Root     // PGDATA
	zeroDB map[string]bool // database oids whose files are restored as zeroes (selective restore)
	warned map[string]bool
	mu     sync.Mutex
}

func restore(e *Env) error {
	stanza, err := e.stanza()
	if err != nil {
		return err
	}
	pgData, err := e.pgPath()
	if err != nil {
		return err
	}
	rr := &restoreRun{e: e, stanza: stanza, pgData: pgData, delta: e.Cfg.Bool(config.Delta), force: e.Cfg.Bool(config.Force),
		root: os.Geteuid() == 0, uids: map[string]int{}, gids: map[string]int{}, warned: map[string]bool{}}
	return rr.run()
}

func (rr *restoreRun) run() error {
	e := rr.e
	ctx := e.Ctx
	if _, err := os.Stat(filepath.Join(rr.pgData, "postmaster.pid")); err == nil {
		return errs.New(errs.PgRunning, "unable to restore while PostgreSQL is running\nHINT: presence of 'postmaster.pid' in '%s' indicates PostgreSQL is running.\nHINT: remove 'postmaster.pid' only if PostgreSQL is not running.", rr.pgData)
	}
	if rr.delta || rr.force {
		_, e1 := os.Stat(filepath.Join(rr.pgData, "PG_VERSION"))
		_, e2 := os.Stat(filepath.Join(rr.pgData, repo.ManifestName))
		if e1 != nil && e2 != nil {
			e.Log.Warnf("--delta or --force specified but unable to find 'PG_VERSION' or 'backup.manifest' in '%s' to confirm that this is a valid $PGDATA directory.  --delta and --force have been disabled and if any files exist in the destination directories the restore will be aborted.", rr.pgData)
			rr.delta, rr.force = false, false
		}
	}

	// The archive spool (push acknowledgements, prefetched WAL) belongs to
	// whatever ran before: clear it, as pgBackRest does.
	if err := clearArchiveSpool(e, rr.stanza); err != nil {
		return err
	}

	// Select the backup set.
	repos, err := e.repos()
	if err != nil {
		return err
	}
	set := e.Cfg.String(config.Set)
	var label string
	var bi *repo.BackupInfo
	var lastErr error
	for _, r := range repos {
		b, err := repo.LoadBackupInfo(ctx, r.St, rr.stanza, r.CipherPass)
		if err != nil {
			e.Log.Warnf("%s: [%s] %s", r.Name(), errs.CodeOf(err).Name(), err.Error())
			continue
		}
		l, err := selectBackup(e, b, set)
		if err != nil {
			lastErr = err
			continue
		}
		if l != "" {
			rr.r, bi, label = r, b, l
			break
		}
	}
	if label == "" {
		if lastErr != nil {
			return lastErr
		}
		if set != "" && set != "latest" {
			return errs.New(errs.BackupSetInvalid, "backup set %s is not valid", set)
		}
		return errs.New(errs.BackupSetInvalid, "no backup set found to restore")
	}
	entry, _ := bi.Find(label)
	if entry.DbID != bi.DB.ID && (set == "" || set == "latest") {
		return errs.New(errs.BackupSetInvalid, "the latest backup set found '%s' is from a prior version of PostgreSQL", label)
	}
	e.Log.Infof("%s: restore backup set %s, recovery will start at %s", rr.r.Name(), label,
		time.Unix(entry.TimestampStart, 0).Format("2006-01-02 15:04:05"))
	m, err := repo.LoadManifest(ctx, rr.r.St, rr.stanza, label, bi.CipherPass)
	if err != nil {
		return err
	}
	if err := m.CheckRestorable(); err != nil {
		return err
	}
	rr.m = m

	// Targets and their restore paths.
	rr.targets = map[string]string{}
	pgTarget, ok := m.FindTarget(repo.TargetPgData)
	if !ok {
		return errs.New(errs.Format, "manifest of backup %s has no pg_data target", label)
	}
	if filepath.Clean(pgTarget.Path) != rr.pgData {
		e.Log.Infof("remap data directory to '%s'", rr.pgData)
	}
	rr.targets[repo.TargetPgData] = rr.pgData
	if err := rr.mapTablespaces(); err != nil {
		return err
	}
	for _, kv := range e.Cfg.Hash(config.LinkMap) {
		if _, ok := m.FindLink("pg_data/" + kv[0]); !ok || strings.HasPrefix(kv[0], "pg_tblspc/") {
			return errs.New(errs.LinkMap, "unable to remap invalid link '%s'", kv[0])
		}
	}
	if err := rr.planDestinations(); err != nil {
		return err
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
				return errs.New(errs.PathNotEmpty, "unable to restore to path '%s' because it contains files\nHINT: try using --delta if this is what you intended.", check)
			} else if err != nil && !os.IsNotExist(err) {
				return errs.Wrap(errs.PathOpen, err, "unable to open path '%s'", check)
			}
		}
	}
	if err := rr.ownerDefaults(); err != nil {
		return err
	}
	if err := os.MkdirAll(rr.pgData, 0o700); err != nil {
		return errs.Wrap(errs.PathCreate, err, "unable to create path '%s'", rr.pgData)
	}
	if err := rr.openRoots(); err != nil {
		return err
	}
	defer rr.closeRoots()
	// An interrupted restore must never start: pg_control goes first,
	// and a failure to remove it fails the restore. Through the PGDATA
	// root: a 'global' that is not a real directory (a planted link) is
	// left to clean, which removes it; nothing is followed.
	if fi, err := rr.pg.Lstat("global"); err == nil && fi.IsDir() {
		if err := rr.pg.Remove("global/pg_control"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return errs.Wrap(errs.FileRemove, err, "unable to remove '%s'", filepath.Join(rr.pgData, "global", "pg_control"))
		}
	}
	if rr.delta || rr.force {
		if err := rr.clean(); err != nil {
			return err
		}
	}
	// backup.manifest marks the directory as a pgbr/pgBackRest restore
	// target until the restore completes.
	if err := writeFileAtomicIn(rr.pg, repo.ManifestName, m.Bytes(), 0o600, -1, -1); err != nil {
		return err
	}
	if err := rr.selectDatabases(); err != nil {
		return err
	}
	if err := rr.createPaths(); err != nil {
		return err
	}
	size, count, err := rr.restoreFiles()
	if err != nil {
		return err
	}

	// Recovery settings.
	typ := e.Cfg.String(config.Type)
	if typ == "" {
		typ = "default"
	}
	if !m.Option.Online && !e.Cfg.IsSet(config.Type) {
		typ = "none"
	}
	mode, uid, gid := rr.pathAttrs(repo.TargetPgData)
	if !rr.root {
		uid, gid = -1, -1 // only root gives files away
	}
	rs := recoverySettings{Type: typ, Target: e.Cfg.String(config.Target), TargetAction: e.Cfg.String(config.TargetAction),
		TargetExcl: e.Cfg.Bool(config.TargetExclusive), TargetTimeline: e.Cfg.String(config.TargetTimeline),
		RestoreCommand: rr.restoreCommand(), ArchiveModeOff: e.Cfg.String(config.ArchiveMode) == "off",
		Options: e.Cfg.Hash(config.RecoveryOption), Online: m.Option.Online, FileMode: os.FileMode(mode) & 0o644,
		UID: uid, GID: gid, Now: e.Now()}
	if err := writeRecovery(rr.pg, rs); err != nil {
		return err
	}
	// Everything restored must be on disk before pg_control appears.
	if err := rr.syncTargets(); err != nil {
		return err
	}
	if err := rr.restoreControl(); err != nil {
		return err
	}
	if err := rr.pg.Remove(repo.ManifestName); err != nil {
		return errs.Wrap(errs.FileRemove, err, "unable to remove backup.manifest")
	}
	if err := syncDirPath(rr.pgData); err != nil {
		return err
	}
	e.Log.Infof("restore size = %s, file total = %d", sizeFormat(size), count)
	return nil
}

// selectBackup picks the label to restore from one repo's backup.info.
func selectBackup(e *Env, b *repo.BackupInfo, set string) (string, error) {
	if len(b.Current) == 0 {
		return "", nil
	}
	if set != "" && set != "latest" {
		if _, ok := b.Find(set); ok {
			return set, nil
		}
		return "", nil
	}
	typ := e.Cfg.String(config.Type)
	target := e.Cfg.String(config.Target)
	if typ == "time" && target != "" {
		t, err := parseTargetTime(target)
		if err != nil {
			e.Log.Warnf("%s; the latest backup will be used", err.Error())
		} else {
			for i := len(b.Current) - 1; i >= 0; i-- {
				if b.Current[i].TimestampStop < t.Unix() && b.Current[i].DbID == b.DB.ID {
					return b.Current[i].Label, nil
				}
			}
			e.Log.Warnf("unable to find backup set with stop time less than '%s', latest backup set will be used", target)
		}
	}
	for i := len(b.Current) - 1; i >= 0; i-- {
		if b.Current[i].DbID == b.DB.ID {
			return b.Current[i].Label, nil
		}
	}
	return b.Current[len(b.Current)-1].Label, nil
}

// parseTargetTime understands the time formats PostgreSQL accepts for
// recovery_target_time that pgBackRest parses.
func parseTargetTime(s string) (time.Time, error) {
	layouts := []string{"2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05.999999-0700",
		"2006-01-02 15:04:05.999999Z07:00", "2006-01-02 15:04:05.999999"}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	for _, l := range layouts[4:] {
		if t, err := time.ParseInLocation(l, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("automatic backup set selection cannot be performed with provided time '%s'", s)
}

// mapTablespaces applies --tablespace-map and --tablespace-map-all.
func (rr *restoreRun) mapTablespaces() error {
	e := rr.e
	maps := map[string]string{}
	for _, kv := range e.Cfg.Hash(config.TablespaceMap) {
		maps[kv[0]] = kv[1]
	}
	all := e.Cfg.String(config.TablespaceMapAll)
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
			e.Log.Infof("map tablespace '%s' to '%s'", "pg_tblspc/"+t.TablespaceID, path)
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
		rr.e.Log.Warnf("unknown user '%s' in backup manifest mapped to the owner of '%s'", o.Name, rr.pgData)
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
		rr.e.Log.Warnf("unknown group '%s' in backup manifest mapped to the group of '%s'", o.Name, rr.pgData)
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
	e := rr.e
	var jobs []restoreJob
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
	e.progress.SetTotal(len(jobs), int64(total))
	workers := e.processMax()
	rr.procs = workers
	bufs := make([][]byte, workers+1) // one per worker (proc 1..workers)
	var mu sync.Mutex
	var done uint64
	err := e.runPool(workers, len(jobs), func(_ context.Context, proc, i int) error {
		j := jobs[i]
		if bufs[proc] == nil {
			bufs[proc] = make([]byte, 256*1024)
		}
		if err := rr.restoreFile(j.f, j.root, j.rel, bufs[proc], false); err != nil {
			return err
		}
		e.progress.Add(1, int64(j.f.Size))
		mu.Lock()
		done += j.f.Size
		pct := 100.0
		if total > 0 {
			pct = float64(done) * 100 / float64(total)
		}
		mu.Unlock()
		e.Log.ProcDetailf(proc, "restore file %s (%s, %s%%) checksum %s", j.root.Full(j.rel), sizeFormat(j.f.Size), pctFormat(pct), j.f.EffectiveChecksum())
		return nil
	})
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
// holds the file (delta/force); nil when it does not.
func (rr *restoreRun) openIfMatches(f *repo.ManifestFile, root *local.Root, rel string, fi os.FileInfo) *os.File {
	if rr.force && !rr.delta {
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
func (rr *restoreRun) restoreFile(f *repo.ManifestFile, root *local.Root, rel string, buf []byte, sync bool) error {
	dest := root.Full(rel)
	mode, err := repo.ParseMode(f.Mode)
	if err != nil {
		return errs.Wrap(errs.Format, err, "invalid mode for '%s'", f.Name)
	}
	uid, gid := rr.uid(f.User), rr.gid(f.Group)
	t := time.Unix(f.Timestamp, 0)
	if rr.delta || rr.force {
		if fi, err := root.Lstat(rel); err == nil {
			if fi.Mode().IsRegular() {
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
	const create = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	out, err := root.OpenFile(rel, create, os.FileMode(mode))
	if errors.Is(err, fs.ErrExist) {
		// Left by something else (a link destination restored into, a
		// temporary file): replace it, never write through it.
		if err = root.Remove(rel); err == nil {
			out, err = root.OpenFile(rel, create, os.FileMode(mode))
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
		var w io.Writer = wb
		var aw *filter.AsyncWriter
		if f.Size >= parallelMin && rr.procs > 1 {
			// A large file: its writes run beside reading, decrypting,
			// decompressing and hashing the next bytes.
			aw = filter.NewAsyncWriter(wb)
			w = aw
		}
		err := rr.copyFromRepo(f, w, buf)
		if aw != nil {
			if cerr := aw.Close(); err == nil && cerr != nil {
				err = errs.Wrap(errs.FileWrite, cerr, "unable to write '%s'", dest)
			}
		}
		if err != nil {
			return fail(err)
		}
		wb.flush()
	}
	if err := rr.setAttrs(out, dest, mode, uid, gid, t); err != nil {
		return fail(err)
	}
	if sync {
		if err := fileSync(out); err != nil {
			return fail(errs.Wrap(errs.FileSync, err, "unable to sync '%s'", dest))
		}
	}
	if err := out.Close(); err != nil {
		return errs.Wrap(errs.FileClose, err, "unable to close '%s'", dest)
	}
	return nil
}

// copyFromRepo streams a file's stored bytes through decryption and
// decompression into out, verifying size and SHA-1.
func (rr *restoreRun) copyFromRepo(f *repo.ManifestFile, out io.Writer, buf []byte) error {
	e := rr.e
	if f.BlockIncrMap != 0 {
		return rr.copyBlockIncr(f, out)
	}
	sf := repo.Layout{Stanza: rr.stanza}.StoredFile(rr.m, f, false)
	src := sf.Path
	p, err := repo.OpenStored(e.Ctx, rr.r.St, sf)
	if err != nil {
		return err
	}
	defer p.Close()
	if _, err := io.CopyBuffer(out, p, buf); err != nil {
		if errs.CodeOf(err) != errs.Unknown {
			return errs.Wrap(errs.CodeOf(err), err, "unable to restore '%s' from '%s'", f.Name, rr.r.St.Full(src))
		}
		return errs.Wrap(errs.FileWrite, err, "unable to restore '%s' from '%s'", f.Name, rr.r.St.Full(src))
	}
	return p.Verify()
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
	if err := rr.restoreFile(f, root, tmp, buf, true); err != nil {
		return err
	}
	if err := root.Rename(tmp, rel); err != nil {
		root.Remove(tmp)
		return errs.Wrap(errs.FileMove, err, "unable to move '%s' to '%s'", root.Full(tmp), dest)
	}
	rr.e.Log.Infof("restore global/pg_control (performed last to ensure aborted restores cannot be started)")
	return syncDirPath(filepath.Dir(dest))
}

// restoreCommand builds the restore_command PostgreSQL will run.
func (rr *restoreRun) restoreCommand() string {
	skip := map[string]bool{"exec-id": true, "job-retry": true, "job-retry-interval": true, "log-subprocess": true,
		"log-timestamp": true, "process-max": true, "cmd": true, "type": true, "target": true, "target-action": true,
		"target-exclusive": true, "target-timeline": true, "set": true, "delta": true, "force": true,
		"recovery-option": true, "tablespace-map": true, "tablespace-map-all": true, "link-map": true, "link-all": true,
		"db-include": true, "db-exclude": true, "archive-mode": true}
	var opts []string
	seen := map[string]bool{}
	for _, a := range rr.e.Cfg.CommandLineArgs() {
		name := strings.TrimPrefix(a, "--")
		if i := strings.IndexByte(name, '='); i >= 0 {
			name = name[:i]
		}
		name = strings.TrimPrefix(strings.TrimPrefix(name, "no-"), "reset-")
		if skip[name] || strings.HasPrefix(name, "log-level-") {
			continue
		}
		seen[name] = true
		opts = append(opts, a)
	}
	if !seen["stanza"] {
		opts = append(opts, "--stanza="+rr.stanza)
	}
	if !seen["pg1-path"] && !seen["pg-path"] {
		opts = append(opts, "--pg1-path="+rr.pgData)
	}
	sort.Strings(opts)
	self := rr.e.Self
	if self == "" {
		self = "pgbr"
	}
	return self + " " + strings.Join(opts, " ") + ` archive-get %f "%p"`
}

// syncfs flushes the whole filesystem holding path (one call instead of
// an fsync per restored file).
func syncfs(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errs.Wrap(errs.PathSync, err, "unable to open '%s' for sync", path)
	}
	defer f.Close()
	if err := fsSync(int(f.Fd())); err != nil {
		return errs.Wrap(errs.PathSync, err, "unable to sync filesystem of '%s'", path)
	}
	return nil
}

func syncDirPath(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return errs.Wrap(errs.PathSync, err, "unable to open path '%s' for sync", dir)
	}
	defer d.Close()
	if err := fileSync(d); err != nil {
		return errs.Wrap(errs.PathSync, err, "unable to sync path '%s'", dir)
	}
	return nil
}

// selectDatabases applies --db-include / --db-exclude: user databases not
// selected are restored as sparse files (their PG_VERSION is kept so
// PostgreSQL still sees a database directory). System databases (template0,
// template1, postgres, oid < 16384) are always restored.
func (rr *restoreRun) selectDatabases() error {
	include, exclude := rr.e.Cfg.List(config.DBInclude), rr.e.Cfg.List(config.DBExclude)
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
	e := rr.e
	maps := map[string]string{}
	for _, kv := range e.Cfg.Hash(config.LinkMap) {
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
		if t, ok := rr.m.FindTarget(l.Name); ok && t.File != "" && (mapped || e.Cfg.Bool(config.LinkAll)) {
			e.Log.Warnf("file link '%s' is restored as a plain file", rel)
			continue
		}
		dest, ok := rr.linkDest[l.Name]
		if !ok {
			continue
		}
		if mapped {
			e.Log.Infof("map link '%s' to '%s'", rel, dest)
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
