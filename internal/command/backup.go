package command

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/lock"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/pgdb"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/direct"
)

// backupRun holds the state of one backup.
type backupRun struct {
	e        *Env
	stanza   string
	r        *repoT
	c        *cluster
	db       *pgdb.DB
	sb       *standbyT // backup-standby: the standby files are copied from
	bi       *repo.BackupInfo
	ai       *repo.ArchiveInfo
	m        *repo.Manifest
	prior    *repo.Manifest
	ct       filter.CompressType
	level    int
	online   bool
	pageChk  bool
	lock     *lock.Lock
	srcPath  map[string]string // manifest file name → absolute source path
	total    int64
	start    time.Time
	fileMode string // mode of files written by the backup itself
	procs    int    // process-max
	// copyStart is the whole second from which copies may read files
	// whose mtime is in the second before it (waitCopyStart).
	copyStart time.Time

	// Bundling (repo-bundle): files up to bundleLimit bytes are packed
	// into bundle/<id> files of about bundleSize bytes (§1.8).
	bundle      bool
	bundleSize  uint64
	bundleLimit uint64
	bundleSeq   atomic.Uint64
	blk         *blockWriter // repo-block=y (backup_block_write.go)

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

func backup(e *Env) error {
	stanza, l, err := e.lockStanza()
	if err != nil {
		return err
	}
	defer l.Release()
	repos, err := e.repos()
	if err != nil {
		return err
	}
	if len(repos) > 1 && !e.Cfg.IsSet(config.Repo) {
		e.Log.Infof("repo option not specified, defaulting to %s", repos[0].Name())
	}
	b := &backupRun{e: e, stanza: stanza, r: repos[0], lock: l, online: e.Cfg.Bool(config.Online), srcPath: map[string]string{}}
	if err := checkBlockIncrOptions(e, b.r); err != nil {
		return err
	}
	if !e.Cfg.IsSet(config.RepoRetentionFull.Index(1)) && !e.Cfg.IsSet(config.RepoRetentionFull.Index(b.r.Key)) {
		e.Log.Warnf("option '%s' is not set for '%s=count', the repository may run out of space\nHINT: to retain full backups indefinitely (without warning), set option '%s' to the maximum.",
			config.RepoRetentionFull.Index(b.r.Key), config.RepoRetentionFullType.Index(b.r.Key), config.RepoRetentionFull.Index(b.r.Key))
	}
	defer func() {
		if b.db != nil {
			b.db.Close()
		}
		if b.sb != nil {
			b.sb.db.Close()
		}
	}()
	if err := b.run(); err != nil {
		return err
	}
	if e.Cfg.Bool(config.ExpireAuto) {
		// pgBackRest runs expire after every successful backup, under the
		// same lock.
		return expireRepo(e, b.r, stanza)
	}
	return nil
}

func (b *backupRun) run() error {
	e := b.e
	ctx := e.Ctx
	var err error
	if b.c, err = e.primaryCluster(); err != nil {
		return err
	}
	if b.ct, b.level, err = e.compressSettings(); err != nil {
		return err
	}
	if b.bi, err = repo.LoadBackupInfo(ctx, b.r.St, b.stanza, b.r.CipherPass); err != nil {
		return err
	}
	if _, err := reconstructBackupInfo(e, b.r, b.stanza, b.bi); err != nil {
		return err
	}
	if b.bundle = e.Cfg.Bool(config.RepoBundle.Index(b.r.Key)); b.bundle {
		b.bundleSize = uint64(e.Cfg.Size(config.RepoBundleSize.Index(b.r.Key)))
		b.bundleLimit = uint64(e.Cfg.Size(config.RepoBundleLimit.Index(b.r.Key)))
	}
	ctl := b.c.Control
	if b.bi.DB.SystemID != ctl.SystemID || b.bi.DB.Version != ctl.Version.Str {
		return errs.New(errs.BackupMismatch, "PostgreSQL version %s, system-id %d do not match stanza version %s, system-id %d\nHINT: is this the correct stanza?",
			ctl.Version.Str, ctl.SystemID, b.bi.DB.Version, b.bi.DB.SystemID)
	}
	archiveCheck := e.Cfg.Bool(config.ArchiveCheck) && b.online

	// Start time and the database connection.
	if b.online {
		if b.db, err = e.connect(); err != nil {
			return err
		}
		s, err := b.db.Settings(ctx)
		if err != nil {
			return err
		}
		if err := checkServer(s, b.c); err != nil {
			return err
		}
		if s.InRecovery {
			return errs.New(errs.FeatureNotSupported, "pg1 '%s' is in recovery: pgbr needs the primary as pg1\nHINT: point pg1 at the primary; to copy from a standby set pg2-path (and pg2-port/pg2-socket-path) to it and backup-standby=y.", b.c.Path)
		}
		if archiveCheck {
			if err := checkArchiveSettings(s); err != nil {
				return err
			}
		}
		if mode := b.standbyMode(); mode != "n" {
			if b.sb, err = b.findStandby(mode); err != nil {
				return err
			}
		}
		if err := b.db.AdvisoryLock(ctx); err != nil {
			return err
		}
		ms, err := b.db.ClockMillis(ctx)
		if err != nil {
			return err
		}
		b.start = time.Unix(ms/1000, 0)
		if !e.Cfg.Bool(config.StartFast) && e.Cfg.Duration(config.DBTimeout) <= time.Duration(s.CheckpointSecs)*time.Second {
			e.Log.Warnf("start-fast is disabled and db-timeout (%gs) is smaller than the PostgreSQL checkpoint_timeout (%ds) - timeout may occur before the backup actually starts",
				e.Cfg.Duration(config.DBTimeout).Seconds(), s.CheckpointSecs)
		}
	} else {
		b.standbyMode()
		if _, err := os.Stat(filepath.Join(b.c.Path, "postmaster.pid")); err == nil {
			if !e.Cfg.Bool(config.Force) {
				return errs.New(errs.PgRunning, "--no-online passed but %s/postmaster.pid exists - looks like PostgreSQL is running. Shut down PostgreSQL and try again, or use --force.", b.c.Path)
			}
			e.Log.Warnf("--no-online passed and %s/postmaster.pid exists but --force was passed so backup will continue though it looks like PostgreSQL is running and the backup will probably not be consistent", b.c.Path)
		}
		b.start = e.Now().Truncate(time.Second)
	}
	if archiveCheck {
		if b.ai, err = repo.LoadArchiveInfo(ctx, b.r.St, b.stanza, b.r.CipherPass); err != nil {
			return err
		}
		if err := checkInfoPair(b.ai, b.bi, ctl.SystemID, ctl.Version); err != nil {
			return err
		}
	}

	// Page checksums.
	b.pageChk = b.online && ctl.DataChecksumVersion != 0
	if e.Cfg.IsSet(config.ChecksumPage) {
		b.pageChk = e.Cfg.Bool(config.ChecksumPage)
		if b.pageChk && b.online && ctl.DataChecksumVersion == 0 {
			e.Log.Warnf("checksum-page option set to true but checksums are not enabled on the cluster, resetting to false")
			b.pageChk = false
		}
	}

	// Backup type and prior backup.
	typ := e.Cfg.String(config.Type)
	if typ == "" {
		typ = repo.BackupTypeIncr
	}
	var priorEntry *repo.BackupInfoEntry
	if typ != repo.BackupTypeFull {
		for i := len(b.bi.Current) - 1; i >= 0; i-- {
			c := &b.bi.Current[i]
			if c.DbID != b.bi.DB.ID {
				continue
			}
			if typ == repo.BackupTypeIncr || c.Type == repo.BackupTypeFull {
				priorEntry = c
				break
			}
		}
		if priorEntry == nil {
			e.Log.Warnf("no prior backup exists, %s backup has been changed to full", typ)
			typ = repo.BackupTypeFull
		}
	}
	if priorEntry != nil && !e.Cfg.Bool(config.RepoBlock.Index(b.r.Key)) && priorIsBlockIncr(e, priorEntry, typ) {
		priorEntry, typ = nil, repo.BackupTypeFull
	}
	if priorEntry != nil {
		if b.prior, err = repo.LoadManifest(ctx, b.r.St, b.stanza, priorEntry.Label, b.bi.CipherPass); err != nil {
			return err
		}
		e.Log.Infof("last backup label = %s, version = %s", priorEntry.Label, priorEntry.BackrestVersion)
		pct := b.prior.Option.CompressType
		if pct == "" {
			pct = "none"
		}
		if string(b.ct) != pct {
			e.Log.Warnf("%s backup cannot alter compress-type option to '%s', reset to value in %s", typ, b.ct, priorEntry.Label)
			b.ct = filter.CompressType(pct)
			b.level = b.prior.Option.CompressLevel
		}
		if b.pageChk != b.prior.Option.ChecksumPage {
			e.Log.Warnf("%s backup cannot alter 'checksum-page' option to '%v', reset to '%v' from %s", typ, b.pageChk, b.prior.Option.ChecksumPage, priorEntry.Label)
			b.pageChk = b.prior.Option.ChecksumPage
		}
	}
	priorLabel := ""
	if priorEntry != nil {
		priorLabel = priorEntry.Label
	}

	// The label is chosen after the manifest is built: a resumed backup
	// keeps the label of the interrupted one.
	m := &repo.Manifest{BackrestVersion: BackrestVersion}
	b.m = m
	m.Annotation = backupAnnotations(e)
	m.Backup = repo.ManifestBackup{Type: typ, Prior: priorLabel, TimestampStart: b.start.Unix(), Bundle: b.bundle}
	b.initBlockIncr()
	m.DB = repo.BackupDB{CatalogVersion: ctl.Version.CatalogVersion, ControlVersion: ctl.Version.ControlVersion,
		ID: b.bi.DB.ID, SystemID: ctl.SystemID, Version: ctl.Version.Str}
	m.Option = repo.ManifestOption{ArchiveCheck: archiveCheck, ArchiveCopy: false, BackupStandby: b.sb != nil,
		BufferSize: uint64(e.Cfg.Size(config.BufferSize)), ChecksumPage: b.pageChk, CompressLevel: b.level,
		CompressLevelNetwork: int(e.Cfg.Int(config.CompressLevelNetwork)), CompressType: string(b.ct),
		Delta: e.Cfg.Bool(config.Delta), Hardlink: false, Online: b.online, ProcessMax: int(e.Cfg.Int(config.ProcessMax))}
	if b.r.CipherPass != "" {
		if b.prior != nil {
			m.CipherPass = b.prior.CipherPass
		} else if m.CipherPass, err = filter.NewSubPassphrase(); err != nil {
			return err
		}
		e.Log.Redact(m.CipherPass)
	}

	// Start the backup in PostgreSQL.
	var startSegment string
	if b.online {
		if archiveCheck {
			if _, err := b.db.CurrentWalFile(ctx); err != nil {
				return err
			}
		}
		e.Log.Infof("execute non-exclusive backup start: backup begins after the %s checkpoint completes", map[bool]string{true: "requested immediate", false: "next regular"}[e.Cfg.Bool(config.StartFast)])
		lsn, seg, err := b.db.BackupStart(ctx, "pgBackRest backup started at "+b.start.Format("2006-01-02 15:04:05-07"), e.Cfg.Bool(config.StartFast))
		if err != nil {
			return err
		}
		startSegment = seg
		m.Backup.LsnStart = lsn
		m.Backup.ArchiveStart = seg
		e.Log.Infof("backup start archive = %s, lsn = %s", seg, lsn)
		if err := b.manifestDB(); err != nil {
			return err
		}
		if b.sb != nil {
			if err := b.waitReplay(lsn, seg); err != nil {
				return err
			}
		}
	}

	// Build the manifest from PGDATA.
	if err := b.buildManifest(); err != nil {
		return err
	}
	if b.sb != nil {
		b.standbySources()
	}
	if b.prior != nil {
		b.autoDelta()
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
	copyStart := e.Now()
	if b.online {
		// Any change after this second gets a newer mtime than the copy
		// start. Only the files changed in this second have to wait for it
		// (waitCopyStart); the others are copied at once.
		copyStart = copyStart.Truncate(time.Second).Add(time.Second)
	}
	b.copyStart = copyStart
	m.Backup.TimestampCopyStart = copyStart.Unix()
	if e.Cfg.Bool(config.Resume) {
		if err := repo.SaveManifestCopy(ctx, b.r.St, b.stanza, m, b.bi.CipherPass); err != nil {
			return err
		}
	}

	// Copy.
	if err := b.copyFiles(); err != nil {
		return err
	}

	// Stop the backup.
	if b.online {
		e.Log.Infof("execute non-exclusive backup stop and wait for all WAL segments to archive")
		res, err := b.db.BackupStop(ctx)
		if err != nil {
			return err
		}
		m.Backup.LsnStop = res.LSN
		m.Backup.ArchiveStop = res.Segment
		e.Log.Infof("backup stop archive = %s, lsn = %s", res.Segment, res.LSN)
		stopTime := e.Now().Unix()
		if err := b.writeGenerated("pg_data/backup_label", []byte(res.BackupLabel), stopTime); err != nil {
			return err
		}
		if res.TablespaceMap != "" {
			if err := b.writeGenerated("pg_data/tablespace_map", []byte(res.TablespaceMap), stopTime); err != nil {
				return err
			}
		}
		if e.Cfg.Bool(config.Resume) {
			m.Sort()
			if err := repo.SaveManifestCopy(ctx, b.r.St, b.stanza, m, b.bi.CipherPass); err != nil {
				return err
			}
		}
		if archiveCheck {
			segs, err := pg.WalSegmentRange(startSegment, res.Segment, ctl.WalSegmentSize)
			if err != nil {
				return err
			}
			if err := b.waitArchived(segs, false); err != nil {
				return err
			}
			e.Log.Infof("check archive for segment(s) %s:%s", startSegment, res.Segment)
		}
	}
	m.Backup.TimestampStop = e.Now().Unix()
	if m.Backup.TimestampStop < m.Backup.TimestampStart {
		m.Backup.TimestampStop = m.Backup.TimestampStart
	}
	return b.finish()
}

// checkArchiveSettings checks archive_mode and archive_command.
func checkArchiveSettings(s pgdb.Settings) error {
	if s.ArchiveMode == "off" {
		return errs.New(errs.ArchiveDisabled, "archive_mode must be enabled")
	}
	if s.ArchiveMode == "always" {
		return errs.New(errs.FeatureNotSupported, "archive_mode=always not supported")
	}
	if !strings.Contains(s.ArchiveCommand, "pgbackrest") && !strings.Contains(s.ArchiveCommand, "pgbr") {
		return errs.New(errs.ArchiveCommandInvalid, "archive_command '%s' must contain pgbackrest or pgbr", s.ArchiveCommand)
	}
	return nil
}

// manifestDB records databases ([db]) in the manifest.
func (b *backupRun) manifestDB() error {
	dbs, err := b.db.Databases(b.e.Ctx)
	if err != nil {
		return err
	}
	for _, d := range dbs {
		b.m.Databases = append(b.m.Databases, repo.ManifestDatabase{Name: d.Name, OID: d.OID, LastSystemID: d.LastSystemID})
	}
	return nil
}

func owner(name string, none bool) repo.Owner {
	if none {
		return repo.Owner{None: true}
	}
	return repo.Owner{Name: name}
}

// buildManifest walks PGDATA and fills targets, paths, links and files.
func (b *backupRun) buildManifest() error {
	e := b.e
	m := b.m
	ctl := b.c.Control
	tsDir := fmt.Sprintf("PG_%s_%d", ctl.Version.Str, ctl.Version.CatalogVersion)
	w, err := walkPgData(b.c.Path, b.online, tsDir, e.Cfg.List(config.Exclude))
	if err != nil {
		return err
	}
	for _, warn := range w.Warnings {
		e.Log.Warnf("%s", warn)
	}
	var tsNames map[uint32]string
	if b.db != nil && len(w.Tablespaces) > 0 {
		if tsNames, err = b.db.Tablespaces(e.Ctx); err != nil {
			return err
		}
	}
	m.Targets = append(m.Targets, repo.ManifestTarget{Name: repo.TargetPgData, Path: b.c.Path, Type: repo.TargetTypePath})
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
	for _, en := range w.Entries {
		switch en.Type {
		case entPath:
			m.Paths = append(m.Paths, repo.ManifestPath{Name: en.Name, Mode: repo.FormatMode(uint32(en.Mode)),
				User: owner(en.User, en.NoUser), Group: owner(en.Group, en.NoGrp)})
		case entLink:
			m.Links = append(m.Links, repo.ManifestLink{Name: en.Name, Destination: en.Dest,
				User: owner(en.User, en.NoUser), Group: owner(en.Group, en.NoGrp)})
		case entFile:
			m.Files = append(m.Files, repo.ManifestFile{Name: en.Name, Size: uint64(en.Size), Timestamp: en.MTime,
				Mode: repo.FormatMode(uint32(en.Mode)), User: owner(en.User, en.NoUser), Group: owner(en.Group, en.NoGrp)})
			b.srcPath[en.Name] = en.Src
		}
	}
	m.Sort()
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
}

// autoDelta switches on checksum delta where size and timestamp cannot be
// trusted, as pgBackRest does (§8.6.3): after a timeline switch, when the
// online option changed, and when a file's timestamp is in the future, went
// backwards, or stayed the same while its size changed.
func (b *backupRun) autoDelta() {
	m, e := b.m, b.e
	if m.Option.Delta {
		return
	}
	enable := func(format string, a ...any) {
		e.Log.Warnf(format, a...)
		m.Option.Delta = true
	}
	prior := b.prior
	if start, stop := m.Backup.ArchiveStart, prior.Backup.ArchiveStop; len(start) == 24 && len(stop) == 24 && start[:8] != stop[:8] {
		enable("a timeline switch has occurred since the %s backup, enabling delta checksum\nHINT: this is normal after restoring from backup or promoting a standby.", prior.Backup.Label)
		return
	}
	if prior.Option.Online != m.Option.Online {
		enable("the online option has changed since the %s backup, enabling delta checksum", prior.Backup.Label)
		return
	}
	now := e.Now().Unix()
	for i := range m.Files {
		f := &m.Files[i]
		pf, ok := prior.FindFile(f.Name)
		if !ok {
			continue
		}
		name := strings.TrimPrefix(f.Name, "pg_data/") // as pgBackRest names it
		switch {
		case f.Timestamp > now+1:
			enable("file '%s' has timestamp (%d) in the future (relative to backup start %d), enabling delta checksum", name, f.Timestamp, now)
		case f.Timestamp < pf.Timestamp:
			enable("file '%s' has timestamp earlier than prior backup (prior %d, current %d), enabling delta checksum", name, pf.Timestamp, f.Timestamp)
		case f.Timestamp == pf.Timestamp && f.Size != pf.Size:
			enable("file '%s' has same timestamp (%d) as prior but different size (prior %d, current %d), enabling delta checksum", name, f.Timestamp, pf.Size, f.Size)
		default:
			continue
		}
		return
	}
}

// planCopy decides, before any resume, which files need a job: files
// unchanged since the prior backup become references (§3.12; with delta
// they are still checksummed by a job), zero-length files of a bundled
// backup are stored in the manifest only (§1.8).
func (b *backupRun) planCopy() {
	m := b.m
	b.plan = make([]filePlan, len(m.Files))
	for i := range m.Files {
		f := &m.Files[i]
		if b.bundle && f.Size == 0 {
			f.Checksum, f.RepoChecksum, f.RepoSize = "", "", 0
			if b.pageChk && pageCheckable(f.Name) {
				f.ChecksumPage = boolp(true)
			}
			b.e.Log.Detailf("store zero-length file %s", b.srcPath[f.Name])
			continue
		}
		if b.prior != nil && b.inherit(f) {
			if m.Option.Delta && f.Size > 0 {
				b.plan[i] = filePlan{copy: true, delta: true}
			}
			continue
		}
		b.plan[i].copy = true
	}
}

// inherit makes f a reference to the prior backup's copy when it is
// unchanged: same size and (delta, zero length or same timestamp), as
// pgBackRest's manifestBuildIncr decides. With delta a job checksums the
// file and copies it when it changed.
func (b *backupRun) inherit(f *repo.ManifestFile) bool {
	pf, ok := b.prior.FindFile(f.Name)
	if !ok || pf.Size != f.Size {
		return false
	}
	if !b.m.Option.Delta && f.Size > 0 && pf.Timestamp != f.Timestamp {
		return false
	}
	f.Checksum = pf.Checksum
	f.RepoChecksum = pf.RepoChecksum
	f.RepoSize = pf.RepoSize
	f.ChecksumPage = pf.ChecksumPage
	f.ChecksumPageError = pf.ChecksumPageError
	f.BundleID = pf.BundleID
	f.BundleOffset = pf.BundleOffset
	f.BlockIncr, f.BlockIncrChecksum, f.BlockIncrMap = pf.BlockIncr, pf.BlockIncrChecksum, pf.BlockIncrMap
	f.Reference = pf.Reference
	if f.Reference == "" {
		f.Reference = b.prior.Backup.Label
	}
	return true
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
func (b *backupRun) copyFiles() error {
	e := b.e
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
	// Largest first, but the files that must wait for the copy start
	// after the others, so the wait overlaps with copying.
	sort.SliceStable(single, func(i, j int) bool {
		a, c := &m.Files[single[i]], &m.Files[single[j]]
		if ha, hc := b.mustWait(a), b.mustWait(c); ha != hc {
			return hc
		}
		return a.Size > c.Size
	})
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
	if t := e.Cfg.Size(config.ManifestSaveThreshold); t > b.saveEvery {
		b.saveEvery = t
	}
	b.lock.ProgressSize(0, b.total)
	e.progress.SetTotal(len(single)+len(small), b.total)

	// One pool: the single files, largest first, then one bundle filler
	// per worker; a worker done with its single files starts filling
	// bundles at once. Each worker keeps its buffers (copyWorker).
	workers := e.processMax()
	b.procs = workers
	cws := make([]*copyWorker, workers+1)
	var nextSmall atomic.Int64
	fillers := 0
	if len(small) > 0 {
		fillers = workers
	}
	err := e.runPool(workers, len(single)+fillers, func(ctx context.Context, proc, i int) error {
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
func (b *backupRun) repoFilePath(name string) string {
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
		if os.IsNotExist(err) && name != "pg_data/global/pg_control" {
			return nil, nil
		}
		return nil, errs.Wrap(errs.FileOpen, err, "unable to open file '%s' for read", src)
	}
	return in, nil
}

// deltaMatch checksums a referenced file (delta): match keeps the
// reference, gone reports a removed file.
func (b *backupRun) deltaMatch(cw *copyWorker, idx int) (match, gone bool, err error) {
	f := &b.m.Files[idx]
	sum, size, missing, err := hashSource(b.srcPath[f.Name], cw.buf)
	if err != nil || missing {
		return false, missing && f.Name != "pg_data/global/pg_control", err
	}
	return size == f.Size && sum == f.EffectiveChecksum(), false, nil
}

// mustWait reports a file whose recorded mtime is in the second before the
// copy start (or later): read before that second is over, a change in the
// rest of it would keep the same mtime and the next incremental backup
// would miss it. Timestamps have a one-second resolution in the manifest.
func (b *backupRun) mustWait(f *repo.ManifestFile) bool {
	return b.online && f.Timestamp >= b.copyStart.Unix()-1
}

// waitCopyStart holds back the read of a file mustWait reports until the
// copy start (pgBackRest waits for it once before copying anything).
func (b *backupRun) waitCopyStart(f *repo.ManifestFile) error {
	if !b.mustWait(f) {
		return nil
	}
	d := time.Until(b.copyStart)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-b.e.Ctx.Done():
		return errs.New(errs.Term, "terminated on signal")
	case <-t.C:
		return nil
	}
}

// copySingle backs up one file into its own repository file.
func (b *backupRun) copySingle(cw *copyWorker, idx int) error {
	f := &b.m.Files[idx]
	plan := b.plan[idx]
	if err := b.waitCopyStart(f); err != nil {
		return err
	}
	src := b.srcPath[f.Name]
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
		f.Checksum, f.RepoChecksum, f.RepoSize = "", "", 0
		b.mu.Unlock()
	}
	in, err := openSource(f.Name, src, f.Size)
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
	w, err := b.r.St.Create(b.e.Ctx, dest, storage.CreateOptions{NoSync: true, InPlace: true})
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s' for write", b.r.St.Full(dest))
	}
	res, err := b.pipeFile(cw, idx, in, w, b.r.St.Full(dest))
	if err != nil {
		w.Abort()
		return err
	}
	if err := w.Commit(); err != nil {
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", b.r.St.Full(dest))
	}
	return b.apply(cw, res)
}

// parallelMin is the size from which a file is compressed and written on
// several goroutines (filter.NewParallelWritePipeline): the largest files
// otherwise keep one worker busy long after the others ran out of work.
const parallelMin = 8 << 20

// pipeFile streams one open source file through the write pipeline
// (SHA-1, page checksums, compress, encrypt) into dst, which may already
// hold other files (a bundle).
func (b *backupRun) pipeFile(cw *copyWorker, idx int, in sourceFile, dst io.Writer, destName string) (fileResult, error) {
	if res, ok, err := b.pipeBlock(cw, idx, in, dst, destName); ok {
		return res, err
	}
	f := &b.m.Files[idx]
	src := b.srcPath[f.Name]
	var p *filter.WritePipeline
	var err error
	if f.Size >= parallelMin && b.procs > 1 {
		p, err = filter.NewParallelWritePipeline(dst, b.ct, b.level, b.m.CipherPass, b.procs)
	} else {
		p, err = filter.NewWritePipeline(dst, b.ct, b.level, b.m.CipherPass)
	}
	if err != nil {
		return fileResult{}, err
	}
	check := b.pageChk && pageCheckable(f.Name)
	if check {
		cw.chk.Reset(segmentNo(f.Name))
	}
	for {
		n, rerr := in.Read(cw.buf)
		if n > 0 {
			if _, werr := p.Write(cw.buf[:n]); werr != nil {
				p.Close()
				return fileResult{}, errs.Wrap(errs.FileWrite, werr, "unable to write '%s'", destName)
			}
			if check {
				cw.chk.Write(cw.buf[:n])
			}
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
func (b *backupRun) apply(cw *copyWorker, res fileResult) error {
	e := b.e
	b.mu.Lock()
	defer b.mu.Unlock()
	f := &b.m.Files[res.idx]
	src := b.srcPath[f.Name]
	e.progress.Add(1, int64(res.size))
	if res.kind == resGone {
		b.removed[res.idx] = true
		e.Log.ProcDetailf(cw.proc, "skip file removed by database %s", src)
		return nil
	}
	b.copied += int64(res.size)
	pct := 100.0
	if b.total > 0 {
		pct = float64(b.copied) * 100 / float64(b.total)
	}
	progress := fmt.Sprintf("%s, %s%%", sizeFormat(res.size), pctFormat(pct))
	if res.bundleID != 0 {
		progress = fmt.Sprintf("bundle %d/%d, %s", res.bundleID, res.bundleOffset, progress)
	}
	sum := ""
	if res.size != 0 {
		sum = " checksum " + res.checksum
	}
	switch res.kind {
	case resMatch:
		e.Log.ProcDetailf(cw.proc, "match file from prior backup %s (%s)%s", src, progress, sum)
	case resResumed:
		e.Log.ProcDetailf(cw.proc, "checksum resumed file %s (%s)%s", src, progress, sum)
	case resCopied:
		e.Log.ProcDetailf(cw.proc, "backup file %s (%s)%s", src, progress, sum)
		f.Size = res.size
		f.Checksum = res.checksum
		if f.Size == 0 {
			f.Checksum = ""
		}
		f.RepoSize = res.repoSize
		f.RepoChecksum = res.repoChecksum
		f.Reference = ""
		f.BundleID = res.bundleID
		f.BundleOffset = res.bundleOffset
		f.BlockIncrMap = res.blockIncrMap
		f.ChecksumPage, f.ChecksumPageError = nil, ""
		if res.pageChecked {
			switch {
			case !res.pageAligned:
				f.ChecksumPage = boolp(false)
				e.Log.Warnf("page misalignment in file %s: file size %d is not divisible by page size %d", src, f.Size, pg.PageSize)
			case len(res.pages) == 0:
				f.ChecksumPage = boolp(true)
			default:
				f.ChecksumPage = boolp(false)
				f.ChecksumPageError = pg.PageErrorsJSON(res.pages)
				e.Log.Warnf("%s", pg.PageErrorsWarning(src, res.pages))
			}
		}
	}
	if p100 := int64(pct * 100); p100-b.lastPct >= 10 {
		b.lastPct = p100
		b.lock.ProgressSize(b.copied, b.total)
	}
	if b.e.Cfg.Bool(config.Resume) && b.copied-b.lastSave >= b.saveEvery {
		b.lastSave = b.copied
		if err := repo.SaveManifestCopy(e.Ctx, b.r.St, b.stanza, b.m, b.bi.CipherPass); err != nil {
			return err
		}
	}
	return nil
}

func boolp(v bool) *bool { return &v }

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
func (b *backupRun) writeGenerated(name string, data []byte, ts int64) error {
	e := b.e
	dest := b.repoFilePath(name)
	w, err := b.r.St.Create(e.Ctx, dest, storage.CreateOptions{})
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s' for write", b.r.St.Full(dest))
	}
	p, err := filter.NewWritePipeline(w, b.ct, b.level, b.m.CipherPass)
	if err != nil {
		w.Abort()
		return err
	}
	if _, err := p.Write(data); err != nil {
		p.Close()
		w.Abort()
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", b.r.St.Full(dest))
	}
	if err := p.Close(); err != nil {
		w.Abort()
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", b.r.St.Full(dest))
	}
	if err := w.Commit(); err != nil {
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", b.r.St.Full(dest))
	}
	f := repo.ManifestFile{Name: name, Size: uint64(p.Size()), Timestamp: ts, Checksum: p.Checksum(),
		RepoSize: uint64(p.RepoSize()), Mode: b.fileMode, User: b.m.FileDefault.User, Group: b.m.FileDefault.Group}
	if b.ct != filter.None || b.m.CipherPass != "" {
		f.RepoChecksum = p.RepoChecksum()
	}
	b.m.Files = append(b.m.Files, f)
	b.m.Sort()
	return nil
}

// waitArchived waits up to archive-timeout for every segment to be in the
// archive.
func (b *backupRun) waitArchived(segments []string, prior bool) error {
	e := b.e
	timeout := e.Cfg.Duration(config.ArchiveTimeout)
	deadline := time.Now().Add(timeout)
	archiveID := b.ai.ArchiveID()
	// Poll often at first (the segment is usually pushed within a few
	// milliseconds of the stop), then every 100 ms.
	delay := 5 * time.Millisecond
	for _, seg := range segments {
		for {
			dir := archiveFileDir(b.stanza, archiveID, seg)
			found, err := findSegment(e, b.r.St, dir, seg)
			if err != nil {
				return err
			}
			if len(found) > 0 {
				break
			}
			if time.Now().After(deadline) {
				return errs.New(errs.ArchiveTimeout, "WAL segment %s was not archived before the %dms timeout\nHINT: check the archive_command to ensure that all options are correct (especially --stanza).\nHINT: check the PostgreSQL server log for errors.\nHINT: run the 'start' command if the stanza was previously stopped.",
					seg, timeout.Milliseconds())
			}
			select {
			case <-e.Ctx.Done():
				return errs.New(errs.Term, "terminated on signal")
			case <-time.After(delay):
			}
			delay = min(2*delay, 100*time.Millisecond)
		}
	}
	return nil
}

// finish saves the manifest, history copy, latest link and backup.info.
func (b *backupRun) finish() error {
	e := b.e
	ctx := e.Ctx
	m := b.m
	m.Sort()
	if err := m.Validate(true); err != nil {
		return err
	}
	// backup.history/<YYYY>/<label>.manifest.gz: gz level 9 of the plain
	// manifest, compressed while the backup files are synced.
	var gz bytes.Buffer
	plain := m.Bytes()
	gzDone := make(chan error, 1)
	go func() {
		cw, err := filter.NewCompressor(&gz, filter.Gz, 9)
		if err == nil {
			cw.Write(plain)
			err = cw.Close()
		}
		gzDone <- err
	}()
	if err := storage.SyncAll(ctx, b.r.St); err != nil {
		<-gzDone
		return errs.Wrap(errs.FileSync, err, "unable to sync backup files")
	}
	if err := repo.SaveManifestBytes(ctx, b.r.St, b.stanza, m.Backup.Label, plain, b.bi.CipherPass); err != nil {
		<-gzDone
		return err
	}
	if err := <-gzDone; err != nil {
		return err
	}
	hist := gz.Bytes()
	var err error
	if b.bi.CipherPass != "" {
		if hist, err = filter.EncryptBytes(hist, b.bi.CipherPass); err != nil {
			return err
		}
	}
	if err := storage.WriteAll(ctx, b.r.St, repo.HistoryManifestPath(b.stanza, m.Backup.Label), hist); err != nil {
		return errs.Wrap(errs.FileWrite, err, "unable to write backup history manifest")
	}
	if err := b.r.St.Symlink(ctx, m.Backup.Label, repo.Layout{Stanza: b.stanza}.Latest()); err != nil {
		e.Log.Warnf("unable to update the latest link: %v", err)
	}
	b.bi.Add(repo.NewBackupInfoEntry(m))
	if err := repo.SaveBackupInfo(ctx, b.r.St, b.stanza, b.bi, b.r.CipherPass); err != nil {
		return err
	}
	if b.ai != nil {
		if err := repo.SaveArchiveInfo(ctx, b.r.St, b.stanza, b.ai, b.r.CipherPass); err != nil {
			return err
		}
	}
	var size uint64
	for i := range m.Files {
		if m.Files[i].Reference == "" {
			size += m.Files[i].Size
		}
	}
	e.Log.Infof("new backup label = %s", m.Backup.Label)
	e.Log.Infof("%s backup size = %s, file total = %d", m.Backup.Type, sizeFormat(size), len(m.Files))
	return nil
}

// sizeFormat formats a size as pgBackRest's strSizeFormat.
func sizeFormat(n uint64) string {
	units := []string{"KB", "MB", "GB"}
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	v := float64(n) / 1024
	u := 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if int(v*10)%10 == 0 {
		return fmt.Sprintf("%d%s", int(v), units[u])
	}
	return fmt.Sprintf("%.1f%s", v, units[u])
}

func pctFormat(p float64) string { return fmt.Sprintf("%.2f", p) }
