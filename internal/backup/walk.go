package backup

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/lazyre"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"golang.org/x/sys/unix"
)

// entryType is the kind of a PGDATA entry.
type entryType uint8

const (
	entFile entryType = iota
	entPath
	entLink
)

// fsEntry is one file, directory or link found in PGDATA or a tablespace,
// named as the manifest names it. It is kept small (48 bytes; a walk holds
// one per file): owners are ids (names in walkResult.Users/Groups), a
// link's paths are in walkResult.LinkDest and Links.
type fsEntry struct {
	Name     string // manifest name: pg_data/..., pg_tblspc/<oid>/PG_.../...
	Size     int64
	MTime    int64
	Mode     fs.FileMode
	UID, GID uint32
	Type     entryType
}

// linkEntry is a link with its own path and its destination.
type linkEntry struct {
	fsEntry
	Src  string // the link's own path
	Dest string // its destination as read
}

// tablespace is a link under pg_tblspc.
type tablespace struct {
	OID  string
	Path string // link destination
}

// walkResult is what the walk found.
type walkResult struct {
	Entries     entryList // in walk order
	Tablespaces []tablespace
	Links       []linkEntry       // non-tablespace links inside PGDATA (Name = pg_data/<rel>)
	LinkDest    map[string]string // every link's destination by manifest name
	Root        fsEntry           // pg_data itself
	Warnings    []string
	Src         sources // where each file is read from
	// Users and Groups name the ids of the entries ("" = no name).
	Users, Groups map[uint32]string
}

// owners returns an entry's user and group.
func (r *walkResult) owners(e *fsEntry) (user, group repo.Owner) {
	return owner(r.Users[e.UID]), owner(r.Groups[e.GID])
}

// owner is a manifest owner: a name, or none ("" = the id has no name).
func owner(name string) repo.Owner {
	if name == "" {
		return repo.Owner{None: true}
	}
	return repo.Owner{Name: name}
}

// entryList holds the entries in blocks: appending never copies what is
// there (a walk of 100k files spent a tenth of its time growing one slice).
type entryList struct {
	blocks [][]fsEntry
}

const entryBlock = 1024

func (l *entryList) add(e fsEntry) {
	if len(l.blocks) == 0 || len(l.blocks[len(l.blocks)-1]) == entryBlock {
		l.blocks = append(l.blocks, make([]fsEntry, 0, entryBlock))
	}
	last := &l.blocks[len(l.blocks)-1]
	*last = append(*last, e)
}

// each calls fn with every entry in walk order.
func (l *entryList) each(fn func(e *fsEntry)) {
	for _, b := range l.blocks {
		for i := range b {
			fn(&b[i])
		}
	}
}

// sources tells the path a manifest file is read from without keeping a
// path per file (100k files would hold 100k strings): a file is read from
// its directory's path, except the few read from elsewhere (a link to a
// file). The directory names are the manifest's, so a linked directory or
// a tablespace maps to its destination.
type sources struct {
	dirs  map[string]string // manifest directory name → absolute path
	files map[string]string // manifest file name → absolute path, when not under dirs
	// standby is the data directory of the standby a backup reads the
	// files CopiedFromStandby from ("" = none).
	standby string
}

// path is the absolute path of manifest file name.
func (s *sources) path(name string) string {
	if s.standby != "" && CopiedFromStandby(name) {
		// pg_tblspc/<oid>/... is read through the standby's own links.
		return filepath.Join(s.standby, strings.TrimPrefix(name, "pg_data/"))
	}
	if p, ok := s.files[name]; ok {
		return p
	}
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ""
	}
	d, ok := s.dirs[name[:i]]
	if !ok {
		return ""
	}
	return d + "/" + name[i+1:]
}

// addFile records that file name (in directory dir) is read from src.
func (s *sources) addFile(dir, base, name, src string) {
	d, ok := s.dirs[dir]
	if ok && len(src) == len(d)+1+len(base) && strings.HasPrefix(src, d) && src[len(d)] == '/' &&
		strings.HasSuffix(src, base) {
		return
	}
	s.files[name] = src
}

var (
	tempRelation   = lazyre.New(`^t[0-9]+_[0-9]+(_(fsm|vm))?(\.[0-9]+)?$`)
	relationNumber = lazyre.New(`^([0-9]+)(_(fsm|vm|init))?(\.[0-9]+)?$`)
	dbPathRegexp   = lazyre.New(`^(pg_data/(global|base/[0-9]+)|pg_tblspc/[0-9]+/[^/]+/[0-9]+)$`)
)

// rootExcludedFiles are PGDATA-root files pgBackRest never copies (PG 15).
var rootExcludedFiles = map[string]bool{
	"postmaster.pid": true, "postmaster.opts": true, "backup_label.old": true, "recovery.signal": true,
	"standby.signal": true, "recovery.conf": true, "recovery.done": true, "postgresql.auto.conf.tmp": true,
	"backup_label": true, "backup_manifest": true, "backup_manifest.tmp": true,
}

// rootContentExcluded are PGDATA-root dirs whose contents are skipped.
var rootContentExcluded = map[string]bool{
	"pg_dynshmem": true, "pg_notify": true, "pg_replslot": true, "pg_serial": true,
	"pg_snapshots": true, "pg_stat_tmp": true, "pg_subtrans": true,
}

// isDBPath reports whether a manifest directory holds relation files.
func isDBPath(dir string) bool { return dbPathRegexp.MatchString(dir) }

type walker struct {
	online   bool
	pgData   string
	tsDir    string // PG_15_<catalog>
	excludes []string
	res      *walkResult
	// the ids nameIDs saw last (named: any)
	named            bool
	lastUID, lastGID uint32
	stats            []statInfo // lstatAll's, reused
}

// walkPgData builds the list of everything to back up.
func walkPgData(pgData string, online bool, tsDir string, excludes []string) (*walkResult, error) {
	w := &walker{online: online, pgData: pgData, tsDir: tsDir, excludes: excludes,
		res: &walkResult{Src: sources{dirs: map[string]string{}, files: map[string]string{}},
			LinkDest: map[string]string{}, Users: map[uint32]string{}, Groups: map[uint32]string{}}}
	fi, err := os.Stat(pgData)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errs.New(errs.PathMissing, "unable to list file info for missing path '%s'", pgData)
		}
		return nil, errs.Wrap(errs.PathOpen, err, "unable to list file info for path '%s'", pgData)
	}
	if !fi.IsDir() {
		return nil, errs.New(errs.PathOpen, "'%s' is not a directory", pgData)
	}
	w.res.Root = w.entry("pg_data", statOfInfo(fi))
	w.res.Entries.add(w.res.Root)
	if err := w.dir(pgData, "pg_data", ""); err != nil {
		return nil, err
	}
	return w.res, nil
}

// statInfo is what the walk keeps of a stat, by value: statting a
// directory of 100k files allocates nothing per file.
type statInfo struct {
	mode     uint32 // st_mode: type and permission bits (0: no entry)
	uid, gid uint32
	size     int64
	mtime    int64 // seconds
}

func (s *statInfo) typ() uint32       { return s.mode & unix.S_IFMT }
func (s *statInfo) isDir() bool       { return s.typ() == unix.S_IFDIR }
func (s *statInfo) isLink() bool      { return s.typ() == unix.S_IFLNK }
func (s *statInfo) isRegular() bool   { return s.typ() == unix.S_IFREG }
func (s *statInfo) perm() fs.FileMode { return fs.FileMode(s.mode & 0o777) }

// statOf keeps what the walk needs of st.
func statOf(st *unix.Stat_t) statInfo {
	return statInfo{mode: st.Mode, uid: st.Uid, gid: st.Gid, size: st.Size, mtime: st.Mtim.Sec}
}

// statOfInfo is statOf for an os.Stat result.
func statOfInfo(fi fs.FileInfo) statInfo {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return statInfo{mode: st.Mode, uid: st.Uid, gid: st.Gid, size: st.Size, mtime: st.Mtim.Sec}
	}
	s := statInfo{mode: uint32(fi.Mode().Perm()), size: fi.Size(), mtime: fi.ModTime().Unix()}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		s.mode |= unix.S_IFLNK
	case fi.IsDir():
		s.mode |= unix.S_IFDIR
	case fi.Mode().IsRegular():
		s.mode |= unix.S_IFREG
	}
	return s
}

func (w *walker) entry(name string, si statInfo) fsEntry {
	e := fsEntry{Name: name, Mode: si.perm(), MTime: si.mtime, UID: si.uid, GID: si.gid}
	switch {
	case si.isLink():
		e.Type = entLink
	case si.isDir():
		e.Type = entPath
	default:
		e.Type = entFile
		e.Size = si.size
	}
	w.nameIDs(si.uid, si.gid)
	return e
}

// nameIDs records the names of an entry's user and group ids, looked up
// once per id ("" = the id has no name).
func (w *walker) nameIDs(uid, gid uint32) {
	if w.named && uid == w.lastUID && gid == w.lastGID {
		return // the owners of the entry before
	}
	w.named, w.lastUID, w.lastGID = true, uid, gid
	if _, ok := w.res.Users[uid]; !ok {
		n := ""
		if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
			n = u.Username
		}
		w.res.Users[uid] = n
	}
	if _, ok := w.res.Groups[gid]; !ok {
		n := ""
		if g, err := user.LookupGroupId(strconv.Itoa(int(gid))); err == nil {
			n = g.Name
		}
		w.res.Groups[gid] = n
	}
}

// excluded reports a user --exclude match for a PGDATA-relative path;
// contentsOnly when the exclusion ends in '/' (keep the dir, skip contents).
func (w *walker) excluded(rel string, isDir bool) (drop, contentsOnly bool) {
	for _, ex := range w.excludes {
		if strings.HasSuffix(ex, "/") {
			if isDir && rel+"/" == ex {
				return false, true
			}
			continue
		}
		if rel == ex {
			return true, false
		}
	}
	return false, false
}

// walName is pg_wal's manifest name (PostgreSQL >= 10).
const walName = "pg_data/pg_wal"

// dir walks one directory. name is its manifest name; rel its path relative
// to PGDATA ("" for the root, only for pg_data entries).
func (w *walker) dir(src, name, rel string) error {
	// Names only (a directory entry with its type is about 150 bytes, a
	// name 24-32: a database of a million files), statted below anyway.
	d, err := os.Open(src)
	var names []string
	if err == nil {
		defer d.Close()
		names, err = d.Readdirnames(-1)
	}
	if err != nil {
		if os.IsNotExist(err) {
			return nil // removed by the database meanwhile
		}
		return errs.Wrap(errs.PathOpen, err, "unable to list file info for path '%s'", src)
	}
	slices.Sort(names)
	dirfd := int(d.Fd())
	w.res.Src.dirs[name] = src
	p := parentDir{name: name, rel: rel, src: src, dbPath: isDBPath(name)}
	// Unlogged relations: every fork of N when N_init exists.
	if p.dbPath {
		p.unlogged = map[string]bool{}
		for _, n := range names {
			if !strings.Contains(n, "_init") {
				continue
			}
			if m := relationNumber.FindStringSubmatch(n); m != nil && m[3] == "init" {
				p.unlogged[m[1]] = true
			}
		}
	}
	// Stat a batch at a time: the stats of a directory of 100k files
	// would hold about 20 MB at once.
	for lo := 0; lo < len(names); lo += statBatch {
		batch := names[lo:min(lo+statBatch, len(names))]
		// w.dir below reuses w.stats: a batch takes its own while it adds.
		infos := lstatAll(dirfd, batch, w.stats)
		w.stats = nil
		for i, base := range batch {
			if infos[i].mode == 0 {
				continue // vanished
			}
			if err := w.add(p, base, "", &infos[i]); err != nil {
				return err
			}
		}
		w.stats = infos
	}
	return nil
}

// statBatch is how many entries of a directory are statted before they
// are added.
const statBatch = 4096

// statWorkers is how many lstat calls of one directory run at once: on a
// cold cache each waits for the disk, so a few in flight shorten the walk
// of a large directory (a database's) even on one core.
const statWorkers = 4

// statChunk is the smallest share of a directory one worker stats.
const statChunk = 256

// lstatAll returns the lstat of each entry of the directory open as dirfd
// (mode 0 when it vanished), in order, in buf when it is large enough,
// statting large directories' entries on statWorkers goroutines.
func lstatAll(dirfd int, names []string, buf []statInfo) []statInfo {
	var out []statInfo
	if cap(buf) >= len(names) {
		out = buf[:len(names)]
	} else {
		out = make([]statInfo, len(names))
	}
	stat := func(lo, hi int) {
		var st unix.Stat_t
		for i := lo; i < hi; i++ {
			if err := unix.Fstatat(dirfd, names[i], &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
				out[i] = statOf(&st)
			} else {
				out[i] = statInfo{}
			}
		}
	}
	if len(names) < 2*statChunk {
		stat(0, len(names))
		return out
	}
	n := min(statWorkers, len(names)/statChunk)
	var wg sync.WaitGroup
	for k := range n {
		lo, hi := k*len(names)/n, (k+1)*len(names)/n
		wg.Add(1)
		go func() {
			defer wg.Done()
			stat(lo, hi)
		}()
	}
	wg.Wait()
	return out
}

// parentDir is the directory an entry is listed in.
type parentDir struct {
	name     string // manifest name
	rel      string // path relative to PGDATA ("" at the root and in tablespaces)
	src      string // its path
	dbPath   bool   // holds relation files
	unlogged map[string]bool
}

// add decides on one entry named base in directory p, read from src (""
// = base in p's path, joined only when needed) with info si. The rules go
// by manifest name, as pgBackRest's: a link is listed and then its
// destination is decided on under the link's own name, so the contents of
// a linked pg_wal, pg_replslot, pg_stat_tmp ... are skipped exactly as
// those of a real directory.
func (w *walker) add(p parentDir, base, src string, si *statInfo) error {
	if strings.HasPrefix(base, "pgsql_tmp") {
		return nil
	}
	// src is set for what is read through a link; a file's path is its
	// directory's and its name (sources.path).
	linked := src != ""
	if !linked && !si.isRegular() {
		src = filepath.Join(p.src, base)
	}
	name := p.name + "/" + base
	isLink, isDir := si.isLink(), si.isDir()
	rel := ""
	if isDir || len(w.excludes) > 0 {
		rel = base
		if p.rel != "" {
			rel = p.rel + "/" + base
		}
	}
	contentsOnly := false
	if len(w.excludes) > 0 && strings.HasPrefix(p.name, "pg_data") {
		drop, co := w.excluded(rel, isDir || isLink)
		if drop {
			w.res.Warnings = append(w.res.Warnings, fmt.Sprintf("exclude '%s' from backup using '%s' exclusion", rel, rel))
			return nil
		}
		contentsOnly = co
	}
	switch {
	case isLink:
		return w.link(p, base, src, name, si)
	case isDir:
		w.res.Entries.add(w.entry(name, *si))
		switch {
		case contentsOnly:
			return nil
		case p.name == "pg_data" && rootContentExcluded[base]:
			return nil
		case w.online && p.name == walName && base == "archive_status":
			return nil // .ready/.done of the live cluster
		}
		return w.dir(src, name, rel)
	case si.isRegular():
		if p.name == "pg_data" && rootExcludedFiles[base] {
			return nil
		}
		if w.online && p.name == walName {
			return nil // WAL comes from the archive
		}
		if p.dbPath {
			if base == "pg_internal.init" || strings.HasPrefix(base, "pg_internal.init.") {
				return nil
			}
			if base[0] == 't' && tempRelation.MatchString(base) {
				return nil
			}
			if len(p.unlogged) > 0 {
				if m := relationNumber.FindStringSubmatch(base); m != nil && p.unlogged[m[1]] && m[3] != "init" {
					return nil
				}
			}
		}
		w.res.Entries.add(w.entry(name, *si))
		if linked {
			w.res.Src.addFile(p.name, base, name, src)
		}
	default:
		w.res.Warnings = append(w.res.Warnings, fmt.Sprintf("exclude special file '%s' from backup", src))
	}
	return nil
}

// link lists a link and then its destination under the link's name.
func (w *walker) link(p parentDir, base, src, name string, si *statInfo) error {
	parent := p.name
	dest, err := os.Readlink(src)
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to read link '%s'", src)
	}
	absDest := dest
	if !filepath.IsAbs(absDest) {
		absDest = filepath.Join(filepath.Dir(src), dest)
	}
	le := w.entry(name, *si)
	w.res.LinkDest[name] = dest
	if parent == "pg_data/pg_tblspc" {
		// Tablespace: the link must point to a directory outside PGDATA.
		if rel2, err := filepath.Rel(w.pgData, absDest); err == nil && !strings.HasPrefix(rel2, "..") {
			return errs.New(errs.LinkDestination, "link '%s' destination '%s' is in PGDATA", src, dest)
		}
		dfi, err := os.Stat(absDest)
		if err != nil || !dfi.IsDir() {
			return errs.New(errs.LinkDestination, "tablespace link '%s' destination '%s' is not a directory", src, dest)
		}
		oid := filepath.Base(src)
		w.res.Tablespaces = append(w.res.Tablespaces, tablespace{OID: oid, Path: dest})
		w.res.Entries.add(le)
		tsName := "pg_tblspc/" + oid
		tsRoot := w.res.Root // pg_tblspc is listed as PGDATA itself
		tsRoot.Name = "pg_tblspc"
		w.res.Entries.add(tsRoot)
		w.res.Entries.add(w.entry(tsName, statOfInfo(dfi)))
		verSrc := filepath.Join(absDest, w.tsDir)
		vfi, err := os.Stat(verSrc)
		if err != nil {
			return nil // empty tablespace for another version
		}
		w.res.Entries.add(w.entry(tsName+"/"+w.tsDir, statOfInfo(vfi)))
		return w.dir(verSrc, tsName+"/"+w.tsDir, "")
	}
	if strings.HasPrefix(parent, "pg_data/pg_tblspc") {
		return errs.New(errs.LinkExpected, "'%s' is not a symlink - pg_tblspc should contain only symlinks", src)
	}
	dfi, err := os.Stat(absDest)
	if err != nil {
		return errs.New(errs.LinkDestination, "unable to get info for link '%s' destination '%s'", src, dest)
	}
	if rel2, err := filepath.Rel(w.pgData, absDest); err == nil && !strings.HasPrefix(rel2, "..") {
		return errs.New(errs.LinkDestination, "link '%s' destination '%s' is in PGDATA", src, dest)
	}
	w.res.Entries.add(le)
	w.res.Links = append(w.res.Links, linkEntry{le, src, dest})
	dst := statOfInfo(dfi)
	return w.add(p, base, absDest, &dst)
}
