// Package backup is the engine of the backup command: it walks PGDATA into
// a manifest, plans the copy against the prior backup (references, delta,
// resume of an interrupted backup, block incremental), copies the files
// into the repository (single files and bundles, on a pool of workers) and
// saves the manifest. The PostgreSQL session (start/stop backup, standby,
// archive checks), the lock and backup.info stay with the command, which
// calls the steps in order: New, BuildManifest, Plan, Copy, WriteGenerated,
// Finish.
package backup

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/progress"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/direct"
	"github.com/pgbr-dev/pgbr/internal/workpool"
)

// PoolFunc runs n jobs on workers goroutines; the first error stops it.
type PoolFunc func(workers, n int, job func(ctx context.Context, proc, i int) error) error

// Options are the typed inputs of one backup.
type Options struct {
	Stanza  string
	Storage storage.Storage // the repository
	// InfoCipherPass is backup.info's passphrase (the manifest's own
	// passphrase is Manifest.CipherPass).
	InfoCipherPass string

	PgData string // pg1-path
	// StandbyPath, when set, is the data directory of the standby the
	// relation and transaction status files are copied from.
	StandbyPath string
	Online      bool
	Excludes    []string // --exclude
	// TablespaceDir is PG_<version>_<catalog>.
	TablespaceDir string
	// TablespaceNames returns tablespace names by OID (nil: ts<oid>).
	TablespaceNames func(ctx context.Context) (map[uint32]string, error)

	Prior *repo.Manifest // prior backup of a diff/incr (nil: full)
	// PriorFiles reads the prior's file entries (nil: Prior.Files), which
	// Plan needs once; Prior may then be loaded without them
	// (repo.LoadManifestHead). Block incremental needs them all in Prior.
	PriorFiles   repo.FileSource
	Compress     filter.CompressType
	Level        int
	PageChecksum bool
	Start        time.Time // backup start (labels)

	Bundle      bool
	BundleSize  uint64
	BundleLimit uint64
	// BlockIncr (repo-block=y) with the super block sizes
	// (repo-block-size-super, repo-block-size-super-full).
	BlockIncr          bool
	BlockSuperSize     uint64
	BlockSuperSizeFull uint64

	Resume        bool  // save manifest copies, resume interrupted backups
	SaveThreshold int64 // manifest-save-threshold
	ProcessMax    int
	// Pool runs the copy jobs (nil: workpool.Run, and a cancelled context
	// fails with [063]). The command passes its pool, which also turns a
	// panic into [025].
	Pool PoolFunc

	Log          *log.Logger       // nil: discarded
	Progress     *progress.Counter // may be nil
	LockProgress func(copied, total int64)
	Now          func() time.Time // nil: time.Now
	// NewestLabel and NewestStop are the newest backup in the repository
	// (backup.info; "" when none): settleTimestamps must not record a
	// second that backup's restore --delta --force could trust.
	NewestLabel string
	NewestStop  int64
}

// Backup is one backup in progress. M is the manifest the steps fill; the
// command sets its header (backup, db, option sections, cipher pass)
// before BuildManifest and its stop fields before Finish.
type Backup struct {
	M *repo.Manifest

	opt      Options
	ctx      context.Context
	log      *log.Logger
	st       storage.Storage
	stanza   string
	m        *repo.Manifest
	prior    *repo.Manifest
	ct       filter.CompressType
	level    int
	online   bool
	pageChk  bool
	src      sources // where each manifest file is read from
	total    int64
	start    time.Time
	fileMode string // mode of files written by the backup itself
	// cut is the second from which a recorded mtime can still be given to
	// a later write, sec the second of the plan (settleTimestamps)
	cut, sec int64

	// Bundling (repo-bundle): files up to bundleLimit bytes are packed
	// into bundle/<id> files of about bundleSize bytes (§1.8).
	bundle      bool
	bundleSize  uint64
	bundleLimit uint64
	bundleSeq   atomic.Uint64
	blk         *blockWriter // repo-block=y (block.go)
	pf          *prefetcher  // small files read ahead of the workers (prefetch.go)

	// Copy state: plan and removed are indexed like m.Files. mu guards the
	// entries of m.Files, the progress and the manifest saves while the
	// workers run.
	plan      []filePlan
	removed   []bool
	mu        sync.Mutex
	copied    int64
	lastPct   int64
	saveEvery int64
	lastSave  int64
}

// New starts a backup into manifest m, whose backup section (type, prior,
// start) is set. With BlockIncr it marks the manifest block incremental
// (and warns that pgBackRest 2.45 cannot restore it).
func New(opt Options, m *repo.Manifest) *Backup {
	if opt.Log == nil {
		opt.Log = log.Discard()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	b := &Backup{M: m, opt: opt, ctx: context.Background(), log: opt.Log, st: opt.Storage, stanza: opt.Stanza, m: m,
		prior: opt.Prior, ct: opt.Compress, level: opt.Level, online: opt.Online, pageChk: opt.PageChecksum,
		start: opt.Start, bundle: opt.Bundle, bundleSize: opt.BundleSize,
		bundleLimit: opt.BundleLimit}
	b.initBlockIncr()
	return b
}

func (b *Backup) now() time.Time { return b.opt.Now() }

func (b *Backup) lockProgress(copied, total int64) {
	if b.opt.LockProgress != nil {
		b.opt.LockProgress(copied, total)
	}
}

// SourcePath is the absolute path a manifest file is read from (after
// BuildManifest; "" for a name in no directory it walked).
func (b *Backup) SourcePath(name string) string { return b.src.path(name) }

// BuildManifest walks PGDATA and the tablespaces into the manifest's
// targets, paths, links and files (then points the standby's files at
// StandbyPath).
func (b *Backup) BuildManifest(ctx context.Context) error {
	b.ctx = ctx
	if err := b.buildManifest(); err != nil {
		return err
	}
	b.src.standby = b.opt.StandbyPath
	return nil
}

// SetPrior gives the backup its prior backup (a diff or incr whose prior
// was loaded while PGDATA was walked) before Plan, with the compression and
// page checksum settings the prior fixes. Block incremental takes its prior
// in Options (New needs it).
func (b *Backup) SetPrior(prior *repo.Manifest, files repo.FileSource, ct filter.CompressType, level int, pageChk bool) {
	b.prior, b.opt.Prior, b.opt.PriorFiles = prior, prior, files
	b.ct, b.level, b.pageChk = ct, level, pageChk
	b.opt.Compress, b.opt.Level, b.opt.PageChecksum = ct, level, pageChk
}

// Plan decides what the copy does: automatic delta, references to the
// prior backup, the label (a resumed backup keeps the interrupted one's),
// block incremental sizes, the reference list and the copy start; with
// Resume it saves the first manifest copy.
func (b *Backup) Plan(ctx context.Context) error {
	b.ctx = ctx
	m := b.m
	if b.prior != nil {
		if err := b.planPrior(); err != nil {
			return err
		}
	}
	b.planCopy()
	if err := b.resumeOrLabel(); err != nil {
		return err
	}
	b.planBlockIncr()
	label := m.Backup.Label
	if b.prior != nil {
		m.Backup.Reference = append(append([]string(nil), b.prior.Backup.Reference...), label)
		if len(b.prior.Backup.Reference) == 0 {
			m.Backup.Reference = []string{b.prior.Backup.Label, label}
		}
	} else {
		m.Backup.Reference = []string{label}
	}
	copyStart := b.now().Unix()
	if b.online {
		copyStart = b.settleTimestamps(b.now())
	}
	m.Backup.TimestampCopyStart = copyStart
	if b.blk == nil {
		// Only block incremental reads the prior manifest while copying:
		// let it go (as large as this one).
		b.prior, b.opt.Prior, b.opt.PriorFiles = nil, nil, nil
	}
	if b.opt.Resume {
		if err := repo.SaveManifestCopy(ctx, b.st, b.stanza, m, b.opt.InfoCipherPass); err != nil {
			return err
		}
	}
	return nil
}

// Copy copies the planned files (copyFiles).
func (b *Backup) Copy(ctx context.Context) error {
	b.ctx = ctx
	return b.copyFiles()
}

// WriteGenerated stores a file produced by the backup itself
// (backup_label, tablespace_map) and adds it to the manifest.
func (b *Backup) WriteGenerated(ctx context.Context, name string, data []byte, ts int64) error {
	b.ctx = ctx
	return b.writeGenerated(name, data, ts)
}

// SaveCopy sorts the manifest and saves backup.manifest.copy when resume
// is enabled.
func (b *Backup) SaveCopy(ctx context.Context) error {
	if !b.opt.Resume {
		return nil
	}
	b.m.Sort()
	return repo.SaveManifestCopy(ctx, b.st, b.stanza, b.m, b.opt.InfoCipherPass)
}

// Size is the original size of the files this backup stored (not
// referenced).
func (b *Backup) Size() uint64 {
	var size uint64
	for i := range b.m.Files {
		if b.m.Files[i].Reference == "" {
			size += b.m.Files[i].Size
		}
	}
	return size
}

// runPool runs the copy jobs on Options.Pool or workpool.
func (b *Backup) runPool(workers, n int, job func(ctx context.Context, proc, i int) error) error {
	if b.opt.Pool != nil {
		return b.opt.Pool(workers, n, job)
	}
	err := workpool.Run(b.ctx, workers, n, job)
	if b.ctx.Err() != nil {
		return errs.New(errs.Term, "terminated on signal")
	}
	return err
}

// buildManifest walks PGDATA and fills targets, paths, links and files.
func (b *Backup) buildManifest() error {
	m := b.m
	w, err := walkPgData(b.opt.PgData, b.online, b.opt.TablespaceDir, b.opt.Excludes)
	if err != nil {
		return err
	}
	for _, warn := range w.Warnings {
		b.log.Warnf("%s", warn)
	}
	var tsNames map[uint32]string
	if b.opt.TablespaceNames != nil && len(w.Tablespaces) > 0 {
		if tsNames, err = b.opt.TablespaceNames(b.ctx); err != nil {
			return err
		}
	}
	m.Targets = append(m.Targets, repo.ManifestTarget{Name: repo.TargetPgData, Path: b.opt.PgData, Type: repo.TargetTypePath})
	for _, ts := range w.Tablespaces {
		oid, _ := strconv.ParseUint(ts.OID, 10, 32)
		name := tsNames[uint32(oid)]
		if name == "" {
			name = "ts" + ts.OID
		}
		m.Targets = append(m.Targets, repo.ManifestTarget{Name: "pg_tblspc/" + ts.OID, Path: ts.Path,
			TablespaceID: ts.OID, TablespaceName: name, Type: repo.TargetTypeLink})
	}
	for _, l := range w.Links {
		t := repo.ManifestTarget{Name: l.Name, Path: l.Dest, Type: repo.TargetTypeLink}
		abs := l.Dest
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(filepath.Dir(l.Src), abs)
		}
		if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
			t.Path = filepath.Dir(l.Dest)
			t.File = filepath.Base(l.Dest)
		}
		m.Targets = append(m.Targets, t)
	}
	var nFiles, nPaths, nLinks int
	w.Entries.each(func(en *fsEntry) {
		switch en.Type {
		case entFile:
			nFiles++
		case entPath:
			nPaths++
		case entLink:
			nLinks++
		}
	})
	m.Files = slices.Grow(m.Files, nFiles)
	m.Paths = slices.Grow(m.Paths, nPaths)
	m.Links = slices.Grow(m.Links, nLinks)
	// One string per mode (a cluster has a few), not one per entry.
	modes := map[fs.FileMode]string{}
	mode := func(m fs.FileMode) string {
		s, ok := modes[m]
		if !ok {
			s = repo.FormatMode(uint32(m))
			modes[m] = s
		}
		return s
	}
	w.Entries.each(func(en *fsEntry) {
		user, group := w.owners(en)
		switch en.Type {
		case entPath:
			m.Paths = append(m.Paths, repo.ManifestPath{Name: en.Name, Mode: mode(en.Mode),
				User: user, Group: group})
		case entLink:
			m.Links = append(m.Links, repo.ManifestLink{Name: en.Name, Destination: w.LinkDest[en.Name],
				User: user, Group: group})
		case entFile:
			m.Files = append(m.Files, repo.ManifestFile{Name: en.Name, Size: uint64(en.Size), Timestamp: en.MTime,
				Mode: mode(en.Mode), User: user, Group: group})
		}
	})
	b.src = w.Src
	w.Entries = entryList{}
	m.Sort() // nearly sorted already: each directory is listed in name order
	if err := m.SetDefaultsFromPgData(); err != nil {
		return err
	}
	b.fileMode = repo.FormatMode(uint32(w.Root.Mode) & 0o644)
	if _, ok := m.FindFile("pg_data/global/pg_control"); !ok {
		return errs.New(errs.FileMissing, "pg_control must be present in all online backups\nHINT: is something wrong with the clock or filesystem timestamps?")
	}
	return nil
}

// pageCheckable reports whether page checksums are verified for a file.
func pageCheckable(name string) bool {
	dir, base := filepath.Dir(name), filepath.Base(name)
	if !isDBPath(dir) {
		return false
	}
	return base != "pg_filenode.map" && base != "PG_VERSION" && name != "pg_data/global/pg_control"
}

// segmentNo returns the .N suffix of a relation file name.
func segmentNo(name string) uint32 {
	base := filepath.Base(name)
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		if n, err := strconv.ParseUint(base[i+1:], 10, 32); err == nil {
			return uint32(n)
		}
	}
	return 0
}

// filePlan says what the copy does with one manifest file.
type filePlan struct {
	copy   bool // a job reads the file
	delta  bool // referenced from the prior backup: copy only if its checksum changed
	resume bool // stored by the interrupted attempt: verify it instead of copying
	prior  uint8
	// resumeWhy is what the interrupted attempt's manifest says (resume.go).
	resumeWhy uint8
}

// filePlan.prior: what planPrior found in the prior backup.
const (
	priorNone      = iota
	priorSame      // same size, and same timestamp or zero length: a reference
	priorTimestamp // same size, another timestamp: a reference only with delta
)

// planPrior reads the prior backup's files once, beside this backup's (both
// in name order): it switches on delta where size and timestamp cannot be
// trusted (autoDeltaFile) and gives each file of the same size what a
// reference to the prior copy keeps, as pgBackRest's manifestBuildIncr
// does. planCopy then decides with the final delta.
func (b *Backup) planPrior() error {
	m := b.m
	b.plan = make([]filePlan, len(m.Files))
	checkFiles := !m.Option.Delta && !b.autoDeltaHead()
	now := b.now().Unix()
	refs := map[string]string{}
	files := b.opt.PriorFiles
	if files == nil {
		files = repo.FilesOf(b.prior)
	}
	return b.matchFiles(files, func(i int, pf *repo.ManifestFile) {
		f := &m.Files[i]
		if checkFiles && b.autoDeltaFile(f, pf, now) {
			checkFiles = false
		}
		if pf.Size != f.Size || (b.bundle && f.Size == 0) {
			return
		}
		b.plan[i].prior = priorSame
		if f.Size > 0 && pf.Timestamp != f.Timestamp {
			b.plan[i].prior = priorTimestamp
		}
		ref := pf.Reference
		if ref == "" {
			ref = b.prior.Backup.Label
		}
		if r, ok := refs[ref]; ok {
			ref = r
		} else {
			ref = strings.Clone(ref)
			refs[ref] = ref
		}
		f.Checksum = pf.Checksum
		f.RepoChecksum = pf.RepoChecksum
		f.RepoSize = pf.RepoSize
		f.ChecksumPage = sharedBool(pf.ChecksumPage)
		f.ChecksumPageError = strings.Clone(pf.ChecksumPageError)
		f.BundleID = pf.BundleID
		f.BundleOffset = pf.BundleOffset
		f.BlockIncr, f.BlockIncrChecksum, f.BlockIncrMap = pf.BlockIncr, pf.BlockIncrChecksum, pf.BlockIncrMap
		f.Reference = ref
	})
}

// matchFiles calls fn with each file of files that this backup's manifest
// has too, and its index there: a merge of two lists sorted by name.
func (b *Backup) matchFiles(files repo.FileSource, fn func(i int, other *repo.ManifestFile)) error {
	m := b.m
	i := 0
	return files(func(of *repo.ManifestFile) error {
		for i < len(m.Files) && m.Files[i].Name < of.Name {
			i++
		}
		if i < len(m.Files) && m.Files[i].Name == of.Name {
			fn(i, of)
		}
		return nil
	})
}

// forgetStored makes f the walk's entry again: what a reference to the
// prior backup or the copy of an interrupted attempt gave it is dropped.
func forgetStored(f *repo.ManifestFile) {
	*f = repo.ManifestFile{Name: f.Name, Size: f.Size, Timestamp: f.Timestamp, Mode: f.Mode, User: f.User, Group: f.Group}
}

// autoDeltaHead switches on checksum delta after a timeline switch and
// when the online option changed, as pgBackRest does (§8.6.3); it reports
// whether it did.
func (b *Backup) autoDeltaHead() bool {
	m, prior := b.m, b.prior
	if start, stop := m.Backup.ArchiveStart, prior.Backup.ArchiveStop; len(start) == 24 && len(stop) == 24 && start[:8] != stop[:8] {
		b.enableDelta("a timeline switch has occurred since the %s backup, enabling delta checksum\nHINT: this is normal after restoring from backup or promoting a standby.", prior.Backup.Label)
		return true
	}
	if prior.Option.Online != m.Option.Online {
		b.enableDelta("the online option has changed since the %s backup, enabling delta checksum", prior.Backup.Label)
		return true
	}
	return false
}

// autoDeltaFile switches on checksum delta when a file's timestamp is in
// the future, went backwards, or stayed the same while its size changed
// (§8.6.3); it reports whether it did.
func (b *Backup) autoDeltaFile(f, pf *repo.ManifestFile, now int64) bool {
	name := strings.TrimPrefix(f.Name, "pg_data/") // as pgBackRest names it
	switch {
	case f.Timestamp > now+1:
		b.enableDelta("file '%s' has timestamp (%d) in the future (relative to backup start %d), enabling delta checksum", name, f.Timestamp, now)
	case f.Timestamp < pf.Timestamp:
		b.enableDelta("file '%s' has timestamp earlier than prior backup (prior %d, current %d), enabling delta checksum", name, pf.Timestamp, f.Timestamp)
	case f.Timestamp == pf.Timestamp && f.Size != pf.Size:
		b.enableDelta("file '%s' has same timestamp (%d) as prior but different size (prior %d, current %d), enabling delta checksum", name, f.Timestamp, pf.Size, f.Size)
	default:
		return false
	}
	return true
}

func (b *Backup) enableDelta(format string, a ...any) {
	b.log.Warnf(format, a...)
	b.m.Option.Delta = true
}

// planCopy decides, before any resume, which files need a job: files
// unchanged since the prior backup stay references (§3.12; with delta they
// are still checksummed by a job), zero-length files of a bundled backup
// are stored in the manifest only (§1.8).
func (b *Backup) planCopy() {
	m := b.m
	if b.plan == nil {
		b.plan = make([]filePlan, len(m.Files))
	}
	for i := range m.Files {
		f := &m.Files[i]
		if b.bundle && f.Size == 0 {
			f.Checksum, f.RepoChecksum, f.RepoSize = repo.Digest{}, repo.Digest{}, 0
			if b.pageChk && pageCheckable(f.Name) {
				f.ChecksumPage = boolp(true)
			}
			b.log.Detailf("store zero-length file %s", b.SourcePath(f.Name))
			continue
		}
		switch p := b.plan[i].prior; {
		case p == priorSame || p == priorTimestamp && m.Option.Delta:
			if m.Option.Delta && f.Size > 0 {
				b.plan[i] = filePlan{copy: true, delta: true}
			}
			continue
		case p == priorTimestamp:
			forgetStored(f) // changed: not a reference after all
		}
		b.plan[i].copy = true
	}
}

// copyWorker is the per-goroutine state of the copy.
type copyWorker struct {
	proc int
	buf  []byte
	chk  *pg.PageChecker
	// bundle and offset the file being stored starts at (0: not bundled)
	bundleID, bundleOffset uint64
}

// result kinds of one file job
const (
	resCopied  = iota // stored in the repository
	resMatch          // delta: unchanged, the reference is kept
	resResumed        // the interrupted attempt's copy is valid
	resGone           // removed by the database meanwhile
)

// fileResult is what a job learned about one file; apply records it in
// the manifest.
type fileResult struct {
	idx          int
	kind         int
	size         uint64
	checksum     string
	repoSize     uint64
	repoChecksum string
	pageChecked  bool
	pageValid    bool
	pageAligned  bool
	pages        []uint32
	bundleID     uint64
	bundleOffset uint64
	blockIncrMap uint64 // size of the block map at the end of the stored bytes
}

// copyFiles runs every file job: large files (and resumed ones) one job
// each, largest first, then the small files of a bundled backup, which each
// worker packs into bundles of its own. The manifest copy is saved every
// max(1 % of the total, manifest-save-threshold) bytes so an interrupted
// backup can be resumed (§3.13).
func (b *Backup) copyFiles() error {
	m := b.m
	var single []int
	var small []int
	b.total = 0
	for i := range m.Files {
		if !b.plan[i].copy {
			continue
		}
		f := &m.Files[i]
		b.total += int64(f.Size)
		if b.bundle && f.Size <= b.bundleLimit && !b.plan[i].resume {
			small = append(small, i)
		} else {
			single = append(single, i)
		}
	}
	if len(single)+len(small) == 0 {
		return errs.New(errs.FileMissing, "no files have changed since the last backup - this seems unlikely")
	}
	sort.SliceStable(single, func(i, j int) bool { return m.Files[single[i]].Size > m.Files[single[j]].Size })
	// Bundles hold files of similar age (oldest first), as pgBackRest's.
	sort.SliceStable(small, func(i, j int) bool {
		a, c := &m.Files[small[i]], &m.Files[small[j]]
		if a.Timestamp != c.Timestamp {
			return a.Timestamp < c.Timestamp
		}
		return a.Name < c.Name
	})
	b.removed = make([]bool, len(m.Files))
	b.saveEvery = b.total / 100
	if t := b.opt.SaveThreshold; t > b.saveEvery {
		b.saveEvery = t
	}
	b.lockProgress(0, b.total)
	b.opt.Progress.SetTotal(len(single)+len(small), b.total)

	// One pool: the single files, largest first, then one bundle filler
	// per worker; a worker done with its single files starts filling
	// bundles at once. Each worker keeps its buffers (copyWorker).
	workers := b.workers()
	cws := make([]*copyWorker, workers+1)
	var nextSmall atomic.Int64
	fillers := 0
	if len(small) > 0 {
		fillers = workers
	}
	b.pf = b.startPrefetch(append(single[:len(single):len(single)], small...))
	defer func() {
		b.pf.Stop()
		b.pf = nil
	}()
	err := b.runPool(workers, len(single)+fillers, func(ctx context.Context, proc, i int) error {
		if cws[proc] == nil {
			cws[proc] = &copyWorker{proc: proc, buf: make([]byte, 256*1024), chk: pg.NewPageChecker(0)}
		}
		cw := cws[proc]
		if i < len(single) {
			return b.copySingle(cw, single[i])
		}
		take := func() (int, bool) {
			if ctx.Err() != nil {
				return 0, false
			}
			i := int(nextSmall.Add(1)) - 1
			if i >= len(small) {
				return 0, false
			}
			return small[i], true
		}
		return b.fillBundles(cw, take)
	})
	if err != nil {
		return err
	}
	kept := m.Files[:0]
	for i := range m.Files {
		if !b.removed[i] {
			kept = append(kept, m.Files[i])
		}
	}
	m.Files = kept
	return nil
}

// repoFilePath is where a non-bundled file of this backup is stored.
func (b *Backup) repoFilePath(name string) string {
	return repo.Layout{Stanza: b.stanza}.BackupFile(b.m.Backup.Label, name, b.ct.Ext())
}

// hashSource returns the SHA-1 and size of a PostgreSQL file; missing
// reports a file removed by the database.
func hashSource(src string, buf []byte) (sum string, size uint64, missing bool, err error) {
	in, err := os.Open(src)
	if err != nil {
		if os.IsNotExist(err) {
			return "", 0, true, nil
		}
		return "", 0, false, errs.Wrap(errs.FileOpen, err, "unable to open file '%s' for read", src)
	}
	defer in.Close()
	c := filter.NewCounter()
	if _, err := io.CopyBuffer(c, struct{ io.Reader }{in}, buf); err != nil {
		return "", 0, false, errs.Wrap(errs.FileRead, err, "unable to read '%s'", src)
	}
	return c.Sum(), uint64(c.Size()), false, nil
}

// sourceFile is an open PostgreSQL file being backed up.
type sourceFile interface {
	io.ReadCloser
	Name() string
}

// chunkSource is a sourceFile that hands out its read buffers
// (direct.Reader.Next) for a pipeline to take without a copy.
type chunkSource interface {
	Next() (chunk []byte, release func(), err error)
}

// directMin is the size from which a file is read with O_DIRECT
// (storage/direct): relation segments, not the many small files.
const directMin = 1 << 20

// openSource opens a PostgreSQL file for copying; nil, nil when the
// database removed it (pg_control must exist). Files of at least directMin
// bytes (by the manifest) bypass the page cache.
func openSource(name, src string, size uint64) (sourceFile, error) {
	var in sourceFile
	var err error
	if size >= directMin {
		in, err = direct.Open(src)
	} else {
		in, err = direct.OpenPlain(src)
	}
	if err != nil {
		return sourceOpenError(name, src, err)
	}
	return in, nil
}

// sourceOpenError is what a failed open of a PostgreSQL file means: nil,
// nil for a file the database removed (pg_control must exist), else the
// error.
func sourceOpenError(name, src string, err error) (sourceFile, error) {
	if os.IsNotExist(err) && name != "pg_data/global/pg_control" {
		return nil, nil
	}
	return nil, errs.Wrap(errs.FileOpen, err, "unable to open file '%s' for read", src)
}

// deltaMatch checksums a referenced file (delta): match keeps the
// reference, gone reports a removed file.
func (b *Backup) deltaMatch(cw *copyWorker, idx int) (match, gone bool, err error) {
	f := &b.m.Files[idx]
	sum, size, missing, err := hashSource(b.SourcePath(f.Name), cw.buf)
	if err != nil || missing {
		return false, missing && f.Name != "pg_data/global/pg_control", err
	}
	return size == f.Size && sum == f.EffectiveChecksum(), false, nil
}

// mtimeLag bounds how far a file's new mtime can lag the clock: the
// kernel stamps writes with a clock read at the last timer tick (1-10 ms
// behind), so a write after a reading of the clock can still get a
// slightly earlier mtime.
const mtimeLag = 100 * time.Millisecond

// settleMax is the size up to which a file changed just before the copy
// is copied at once rather than after the second of its mtime is over.
const settleMax = 1 << 20

// settleTimestamps makes an online backup safe to copy without first
// waiting for the next second, as pgBackRest does, and returns the copy
// start to record. The manifest keeps mtimes in whole seconds and a file
// is read after now: were it recorded with the second of its mtime and
// changed again later in that second, after the read, its mtime would
// keep that second and the next incremental backup would take it as
// unchanged. Every write from now on gets an mtime of cut or later, so
// only a file whose mtime is cut or later is at risk:
//   - up to settleMax bytes (pg_control, the catalog files a checkpoint
//     touched) or with an mtime in the future, it is copied at once and
//     recorded as cut-1: the next backup sees a newer mtime than the
//     recorded one and copies it again (pgBackRest does the same with a
//     pgbr prior), and a resumed attempt copies it again;
//   - larger, it keeps its mtime and its worker reads it once the second
//     of its mtime is over (mustWait, waitCopyStart), as pgBackRest's
//     copy waits: a resumed attempt and the next incremental can reuse it.
//
// A file recorded with its own mtime before cut cannot be changed again
// within that second.
//
// The copy start returned is cut-1, the second recorded for the files at
// risk: restore --delta --force keeps an existing file only when its size
// and mtime match and the mtime is before the copy start (pgBackRest 2.45
// as pgbr). Another backup may record the same second for other content
// of such a file (its real mtime, when this backup's cut is at most a
// second after that backup's), so the second recorded for them is never
// trusted. Nor may it be one the newest backup in the repository trusts:
// a backup trusts only mtimes of files it read after their second was
// over, so mtimes before its stop second, and before its copy start.
// When cut-1 could be one of those (that backup stopped in the second
// before cut or later and, when it is the prior whose manifest is loaded,
// its copy start is not before cut-1: a backup started right after a
// pgBackRest one; a pgbr copy start is always before the next pgbr cut),
// nothing is recorded as cut-1 and every file at risk waits for its
// second as the large ones do.
func (b *Backup) settleTimestamps(now time.Time) int64 {
	cut, sec := now.Add(-mtimeLag).Unix(), now.Unix()
	b.cut, b.sec = cut, sec
	trusted := int64(0) // the newest backup may trust mtimes before this second
	if b.opt.NewestLabel != "" {
		trusted = b.opt.NewestStop
		if b.prior != nil && b.prior.Backup.Label == b.opt.NewestLabel {
			trusted = b.prior.Backup.TimestampCopyStart
		}
	}
	if cut-1 >= trusted {
		for i := range b.m.Files {
			if f := &b.m.Files[i]; f.Timestamp >= cut && (f.Size <= settleMax || f.Timestamp > sec) {
				f.Timestamp = cut - 1
			}
		}
	}
	return cut - 1
}

// mustWait reports a file settleTimestamps left with an mtime at or after
// the cut: it is read only when that second is over. An mtime in the
// future is not waited for (pgBackRest reads it at once too).
func (b *Backup) mustWait(f *repo.ManifestFile) bool {
	return b.online && f.Timestamp >= b.cut && f.Timestamp <= b.sec
}

// waitCopyStart holds back the read of a file mustWait reports until no
// write can get its recorded mtime any more.
func (b *Backup) waitCopyStart(f *repo.ManifestFile) error {
	if !b.mustWait(f) {
		return nil
	}
	d := time.Until(time.Unix(f.Timestamp+1, 0).Add(mtimeLag))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
		return errs.New(errs.Term, "terminated on signal")
	case <-t.C:
		return nil
	}
}

// copySingle backs up one file into its own repository file.
func (b *Backup) copySingle(cw *copyWorker, idx int) error {
	f := &b.m.Files[idx]
	plan := b.plan[idx]
	if err := b.waitCopyStart(f); err != nil {
		return err
	}
	if plan.delta {
		match, gone, err := b.deltaMatch(cw, idx)
		if err != nil {
			return err
		}
		if gone {
			return b.apply(cw, fileResult{idx: idx, kind: resGone})
		}
		if match {
			return b.apply(cw, fileResult{idx: idx, kind: resMatch, size: f.Size, checksum: f.EffectiveChecksum()})
		}
	}
	if plan.resume {
		res, done, err := b.checkResumed(cw, idx)
		if err != nil || done {
			if err == nil {
				err = b.apply(cw, res)
			}
			return err
		}
		// Copied again: until then a saved manifest copy must not vouch
		// for the stored file.
		b.mu.Lock()
		f.Checksum, f.RepoChecksum, f.RepoSize = repo.Digest{}, repo.Digest{}, 0
		b.mu.Unlock()
	}
	in, err := b.openCopySource(idx)
	if err != nil {
		return err
	}
	if in == nil {
		return b.apply(cw, fileResult{idx: idx, kind: resGone})
	}
	defer in.Close()
	dest := b.repoFilePath(f.Name)
	if b.blk != nil && f.BlockIncr != 0 {
		dest = b.blockIncrRepoPath(f.Name)
	}
	cw.bundleID, cw.bundleOffset = 0, 0
	// Data files are synced all at once (storage.SyncAll) before the
	// manifest that makes them part of a backup is saved.
	w, err := b.st.Create(b.ctx, dest, storage.CreateOptions{NoSync: true, InPlace: true})
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s' for write", b.st.Full(dest))
	}
	res, err := b.pipeFile(cw, idx, in, w, b.st.Full(dest))
	if err != nil {
		w.Abort()
		return err
	}
	if err := w.Commit(); err != nil {
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", b.st.Full(dest))
	}
	return b.apply(cw, res)
}

// pipeFile streams one open source file through the write pipeline
// (SHA-1, page checksums, compress, encrypt) into dst, which may already
// hold other files (a bundle).
func (b *Backup) pipeFile(cw *copyWorker, idx int, in sourceFile, dst io.Writer, destName string) (fileResult, error) {
	if res, ok, err := b.pipeBlock(cw, idx, in, dst, destName); ok {
		return res, err
	}
	f := &b.m.Files[idx]
	src := b.SourcePath(f.Name)
	var p *filter.WritePipeline
	var err error
	if f.Size >= filter.ParallelMin && b.workers() > 1 {
		p, err = filter.NewParallelWritePipeline(dst, b.ct, b.level, b.m.CipherPass, b.workers())
	} else {
		p, err = filter.NewWritePipeline(dst, b.ct, b.level, b.m.CipherPass)
	}
	if err != nil {
		return fileResult{}, err
	}
	check := b.pageChk && pageCheckable(f.Name)
	if check {
		cw.chk.Reset(segmentNo(f.Name))
		p.SetSide(cw.chk) // beside the SHA-1 in a parallel pipeline
	}
	cs, chunked := in.(chunkSource)
	for {
		var rerr, werr error
		if chunked {
			// The read chunks go into the pipeline as they are: the
			// goroutine that hashes a large file copies nothing.
			var chunk []byte
			var release func()
			if chunk, release, rerr = cs.Next(); rerr == nil {
				werr = p.WriteOwned(chunk, release)
			}
		} else {
			var n int
			n, rerr = in.Read(cw.buf)
			if n > 0 {
				_, werr = p.Write(cw.buf[:n])
			}
		}
		if werr != nil {
			p.Close()
			return fileResult{}, errs.Wrap(errs.FileWrite, werr, "unable to write '%s'", destName)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			p.Close()
			return fileResult{}, errs.Wrap(errs.FileRead, rerr, "unable to read '%s'", src)
		}
	}
	if err := p.Close(); err != nil {
		return fileResult{}, errs.Wrap(errs.FileWrite, err, "unable to write '%s'", destName)
	}
	res := fileResult{idx: idx, kind: resCopied, size: uint64(p.Size()), checksum: p.Checksum(), repoSize: uint64(p.RepoSize())}
	if b.ct != filter.None || b.m.CipherPass != "" {
		res.repoChecksum = p.RepoChecksum()
	}
	if check {
		res.pageChecked = true
		res.pageValid, res.pageAligned, res.pages = cw.chk.Result()
		if res.pageAligned && !res.pageValid {
			res.pages = recheckPages(src, res.pages, cw.chk)
		}
	}
	return res, nil
}

// apply records a job's result in the manifest, logs it, reports progress
// in the lock file and saves the manifest copy when due.
func (b *Backup) apply(cw *copyWorker, res fileResult) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := &b.m.Files[res.idx]
	b.opt.Progress.Add(1, int64(res.size))
	detail := b.log.Enabled(log.Detail) // the line of each file is built only when logged
	var src, progress, sum string
	if detail {
		src = b.SourcePath(f.Name)
	}
	if res.kind == resGone {
		b.removed[res.idx] = true
		b.log.ProcDetailf(cw.proc, "skip file removed by database %s", src)
		return nil
	}
	b.copied += int64(res.size)
	pct := 100.0
	if b.total > 0 {
		pct = float64(b.copied) * 100 / float64(b.total)
	}
	if detail {
		progress = fmt.Sprintf("%s, %s%%", log.Size(res.size), log.Pct(pct))
		if res.bundleID != 0 {
			progress = fmt.Sprintf("bundle %d/%d, %s", res.bundleID, res.bundleOffset, progress)
		}
		if res.size != 0 {
			sum = " checksum " + res.checksum
		}
	}
	switch res.kind {
	case resMatch:
		b.log.ProcDetailf(cw.proc, "match file from prior backup %s (%s)%s", src, progress, sum)
	case resResumed:
		b.log.ProcDetailf(cw.proc, "checksum resumed file %s (%s)%s", src, progress, sum)
	case resCopied:
		b.log.ProcDetailf(cw.proc, "backup file %s (%s)%s", src, progress, sum)
		f.Size = res.size
		f.Checksum = repo.HexDigest(res.checksum)
		if f.Size == 0 {
			f.Checksum = repo.Digest{}
		}
		f.RepoSize = res.repoSize
		f.RepoChecksum = repo.HexDigest(res.repoChecksum)
		f.Reference = ""
		f.BundleID = res.bundleID
		f.BundleOffset = res.bundleOffset
		f.BlockIncrMap = res.blockIncrMap
		f.ChecksumPage, f.ChecksumPageError = nil, ""
		if res.pageChecked {
			switch {
			case !res.pageAligned:
				f.ChecksumPage = boolp(false)
				b.log.Warnf("page misalignment in file %s: file size %d is not divisible by page size %d", b.SourcePath(f.Name), f.Size, pg.PageSize)
			case len(res.pages) == 0:
				f.ChecksumPage = boolp(true)
			default:
				f.ChecksumPage = boolp(false)
				f.ChecksumPageError = pg.PageErrorsJSON(res.pages)
				b.log.Warnf("%s", pg.PageErrorsWarning(b.SourcePath(f.Name), res.pages))
			}
		}
	}
	if p100 := int64(pct * 100); p100-b.lastPct >= 10 {
		b.lastPct = p100
		b.lockProgress(b.copied, b.total)
	}
	if b.opt.Resume && b.copied-b.lastSave >= b.saveEvery {
		b.lastSave = b.copied
		if err := repo.SaveManifestCopy(b.ctx, b.st, b.stanza, b.m, b.opt.InfoCipherPass); err != nil {
			return err
		}
	}
	return nil
}

func boolp(v bool) *bool { return &v }

var boolTrue, boolFalse = true, false

// sharedBool returns a pointer to a shared copy of *p (nil for nil), one
// allocation less per referenced file; nothing writes through these.
func sharedBool(p *bool) *bool {
	switch {
	case p == nil:
		return nil
	case *p:
		return &boolTrue
	}
	return &boolFalse
}

// recheckPages re-reads pages that failed: a page that is valid now (or
// changed) was being written by PostgreSQL and is not an error.
func recheckPages(src string, pages []uint32, chk *pg.PageChecker) []uint32 {
	f, err := os.Open(src)
	if err != nil {
		return pages
	}
	defer f.Close()
	var out []uint32
	page := make([]byte, pg.PageSize)
	for _, blk := range pages {
		if _, err := f.ReadAt(page, chk.PageOffset(blk)); err != nil {
			continue // truncated meanwhile
		}
		if !pg.PageValid(page, blk) {
			out = append(out, blk)
		}
	}
	return out
}

// writeGenerated stores a file produced by the backup itself
// (backup_label, tablespace_map).
func (b *Backup) writeGenerated(name string, data []byte, ts int64) error {
	dest := b.repoFilePath(name)
	w, err := b.st.Create(b.ctx, dest, storage.CreateOptions{})
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s' for write", b.st.Full(dest))
	}
	p, err := filter.NewWritePipeline(w, b.ct, b.level, b.m.CipherPass)
	if err != nil {
		w.Abort()
		return err
	}
	if _, err := p.Write(data); err != nil {
		p.Close()
		w.Abort()
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", b.st.Full(dest))
	}
	if err := p.Close(); err != nil {
		w.Abort()
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", b.st.Full(dest))
	}
	if err := w.Commit(); err != nil {
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", b.st.Full(dest))
	}
	f := repo.ManifestFile{Name: name, Size: uint64(p.Size()), Timestamp: ts, Checksum: repo.HexDigest(p.Checksum()),
		RepoSize: uint64(p.RepoSize()), Mode: b.fileMode, User: b.m.FileDefault.User, Group: b.m.FileDefault.Group}
	if b.ct != filter.None || b.m.CipherPass != "" {
		f.RepoChecksum = repo.HexDigest(p.RepoChecksum())
	}
	b.m.Files = append(b.m.Files, f)
	b.m.Sort()
	return nil
}

// workers is process-max: the copy's worker count, and the goroutines a
// large file may use.
func (b *Backup) workers() int { return max(b.opt.ProcessMax, 1) }
