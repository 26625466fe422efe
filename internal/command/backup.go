package command

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	backupeng "github.com/pgbr-dev/pgbr/internal/backup"
	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/lock"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/pgdb"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// backupRun holds the command's state of one backup: options, lock, the
// PostgreSQL session and the info files. The work on files is the
// engine's (internal/backup).
type backupRun struct {
	e      *Env
	stanza string
	r      *repoT
	c      *cluster
	db     *pgdb.DB
	sb     *standbyT // backup-standby: the standby files are copied from
	bi     *repo.BackupInfo
	ai     *repo.ArchiveInfo
	m      *repo.Manifest
	prior  *repo.Manifest
	// priorFiles reads the prior's file entries when prior was loaded
	// without them.
	priorFiles repo.FileSource
	eng        *backupeng.Backup
	ct         filter.CompressType
	level      int
	online     bool
	pageChk    bool
	lock       *lock.Lock
	start      time.Time
	bundle     bool
	// labelClock is set when the start fell in the newest backup's second
	// and was moved to the next one: it is read until it gets to start
	// (waitLabel).
	labelClock func() (time.Time, error)
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
	b := &backupRun{e: e, stanza: stanza, r: repos[0], lock: l, online: e.Cfg.Bool(config.Online)}
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
	b.bundle = e.Cfg.Bool(config.RepoBundle.Index(b.r.Key))
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
		now, err := b.laterThanNewest(func() (time.Time, error) {
			ms, err := b.db.ClockMillis(ctx)
			return time.UnixMilli(ms), err
		})
		if err != nil {
			return err
		}
		b.start = now.Truncate(time.Second)
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
		now, err := b.laterThanNewest(func() (time.Time, error) { return e.Now(), nil })
		if err != nil {
			return err
		}
		b.start = now.Truncate(time.Second)
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
	// The prior manifest: block incremental loads it whole now (it reads
	// the prior's block maps while copying); otherwise its head is loaded
	// and its files are read once by Plan. From a local repository the
	// head is streamed (64 KB at a time) while PGDATA is walked; from S3
	// it is read whole (220 MB at 1M files), before the walk takes its
	// memory.
	var priorLoading <-chan priorLoad
	priorLabel := ""
	if priorEntry != nil {
		priorLabel = priorEntry.Label
		switch {
		case e.Cfg.Bool(config.RepoBlock.Index(b.r.Key)):
			b.prior, err = repo.LoadManifest(ctx, b.r.St, b.stanza, priorLabel, b.bi.CipherPass)
		case e.Cfg.String(config.RepoType.Index(b.r.Key)) == "s3":
			b.prior, b.priorFiles, err = repo.LoadManifestHead(ctx, b.r.St, b.stanza, priorLabel, b.bi.CipherPass)
		default:
			priorLoading = b.loadPriorHead(priorLabel)
		}
		if err != nil {
			return err
		}
		e.Log.Infof("last backup label = %s, version = %s", priorLabel, priorEntry.BackrestVersion)
		if b.prior != nil {
			b.priorSettings(typ)
		}
	}

	// The label is chosen after the manifest is built: a resumed backup
	// keeps the label of the interrupted one.
	m := &repo.Manifest{BackrestVersion: BackrestVersion}
	b.m = m
	m.Annotation = backupAnnotations(e)
	m.Backup = repo.ManifestBackup{Type: typ, Prior: priorLabel, TimestampStart: b.start.Unix(), Bundle: b.bundle}
	b.eng = backupeng.New(b.engineOptions(), m)
	m.DB = repo.BackupDB{CatalogVersion: ctl.Version.CatalogVersion, ControlVersion: ctl.Version.ControlVersion,
		ID: b.bi.DB.ID, SystemID: ctl.SystemID, Version: ctl.Version.Str}
	m.Option = repo.ManifestOption{ArchiveCheck: archiveCheck, ArchiveCopy: false, BackupStandby: b.sb != nil,
		BufferSize: uint64(e.Cfg.Size(config.BufferSize)), ChecksumPage: b.pageChk, CompressLevel: b.level,
		CompressLevelNetwork: int(e.Cfg.Int(config.CompressLevelNetwork)), CompressType: string(b.ct),
		Delta: e.Cfg.Bool(config.Delta), Hardlink: false, Online: b.online, ProcessMax: int(e.Cfg.Int(config.ProcessMax))}
	if b.r.CipherPass != "" && priorEntry == nil {
		if m.CipherPass, err = filter.NewSubPassphrase(); err != nil {
			return err
		}
		e.Log.Redact(m.CipherPass)
	}
	if b.prior != nil {
		b.usePrior()
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

	// Build the manifest from PGDATA, plan and copy.
	if err := b.eng.BuildManifest(ctx); err != nil {
		return err
	}
	if priorLoading != nil {
		r := <-priorLoading
		if r.err != nil {
			return r.err
		}
		b.prior, b.priorFiles = r.m, r.files
		b.priorSettings(typ)
		b.usePrior()
	}
	if err := b.waitLabel(); err != nil {
		return err
	}
	if err := b.eng.Plan(ctx); err != nil {
		return err
	}
	if err := b.eng.Copy(ctx); err != nil {
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
		if err := b.eng.WriteGenerated(ctx, "pg_data/backup_label", []byte(res.BackupLabel), stopTime); err != nil {
			return err
		}
		if res.TablespaceMap != "" {
			if err := b.eng.WriteGenerated(ctx, "pg_data/tablespace_map", []byte(res.TablespaceMap), stopTime); err != nil {
				return err
			}
		}
		if err := b.eng.SaveCopy(ctx); err != nil {
			return err
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

// priorLoad is the head of the prior manifest and the source of its files.
type priorLoad struct {
	m     *repo.Manifest
	files repo.FileSource
	err   error
}

// loadPriorHead loads the head of the prior manifest on its own goroutine
// (repo.LoadManifestHead reads and verifies the whole file: 22 MB for 100k
// files), so that it takes no time of its own beside the walk of PGDATA.
func (b *backupRun) loadPriorHead(label string) <-chan priorLoad {
	out := make(chan priorLoad, 1)
	ctx, st, stanza, pass := b.e.Ctx, b.r.St, b.stanza, b.bi.CipherPass
	go func() {
		var r priorLoad
		r.m, r.files, r.err = repo.LoadManifestHead(ctx, st, stanza, label, pass)
		out <- r
	}()
	return out
}

// priorSettings keeps the compression and page checksum settings of the
// prior backup: a backup set does not change them.
func (b *backupRun) priorSettings(typ string) {
	e := b.e
	label := b.prior.Backup.Label
	pct := b.prior.Option.CompressType
	if pct == "" {
		pct = "none"
	}
	if string(b.ct) != pct {
		e.Log.Warnf("%s backup cannot alter compress-type option to '%s', reset to value in %s", typ, b.ct, label)
		b.ct = filter.CompressType(pct)
		b.level = b.prior.Option.CompressLevel
	}
	if b.pageChk != b.prior.Option.ChecksumPage {
		e.Log.Warnf("%s backup cannot alter 'checksum-page' option to '%v', reset to '%v' from %s", typ, b.pageChk, b.prior.Option.ChecksumPage, label)
		b.pageChk = b.prior.Option.ChecksumPage
	}
}

// usePrior gives the manifest and the engine what the prior backup fixes:
// the settings priorSettings kept, the manifest's passphrase, the prior
// itself. The engine lets the prior go once it has planned.
func (b *backupRun) usePrior() {
	m := b.m
	m.Option.CompressType, m.Option.CompressLevel, m.Option.ChecksumPage = string(b.ct), b.level, b.pageChk
	if b.r.CipherPass != "" {
		m.CipherPass = b.prior.CipherPass
		b.e.Log.Redact(m.CipherPass)
	}
	b.eng.SetPrior(b.prior, b.priorFiles, b.ct, b.level, b.pageChk)
	b.prior, b.priorFiles = nil, nil
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

// laterThanNewest reads the backup start from clock and returns it, or,
// when it is in the second of the newest backup's label, the next second:
// two backups cannot share a label, and a pgbr backup can take less than
// a second. The backup then waits for that second before it plans and
// copies (waitLabel), as pgBackRest 2.45 sleeps out the second after its
// start backup: the checkpoint, the walk of PGDATA and the load of the
// prior manifest go on meanwhile. A start more than a few seconds behind
// is left to the label check (clock skew, a changed timezone).
func (b *backupRun) laterThanNewest(clock func() (time.Time, error)) (time.Time, error) {
	now, err := clock()
	n := b.bi.Newest()
	if err != nil || n == nil || len(n.Label) < 16 {
		return now, err
	}
	newest := n.Label
	t, err := time.ParseInLocation("20060102-150405", newest[len(newest)-16:len(newest)-1], time.Local)
	if err != nil {
		return now, nil
	}
	next := t.Add(time.Second)
	if now.Before(next) && next.Sub(now) <= 3*time.Second {
		b.labelClock = clock
		return next, nil
	}
	return now, nil
}

// waitLabel waits until the clock laterThanNewest read reaches the
// backup's start, when that was moved to a later second.
func (b *backupRun) waitLabel() error {
	if b.labelClock == nil {
		return nil
	}
	now, err := b.labelClock()
	for tries := 0; err == nil && now.Before(b.start) && tries < 3; tries++ {
		select {
		case <-b.e.Ctx.Done():
			return errs.New(errs.Term, "terminated on signal")
		case <-time.After(b.start.Sub(now)):
		}
		now, err = b.labelClock()
	}
	return err
}

// waitArchived waits up to archive-timeout for every segment to be in the
// archive.
func (b *backupRun) waitArchived(segments []string, prior bool) error {
	e := b.e
	timeout := e.Cfg.Duration(config.ArchiveTimeout)
	deadline := time.Now().Add(timeout)
	archiveID := b.ai.ArchiveID()
	// Poll every 5-20 ms for the first second (PostgreSQL's archiver
	// starts the archive_command at once and a push takes tens of
	// milliseconds: a doubling delay would overshoot it by as much), then
	// every 100 ms.
	delay := 5 * time.Millisecond
	fast := time.Now().Add(time.Second)
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
			if time.Now().Before(fast) {
				delay = min(2*delay, 20*time.Millisecond)
			} else {
				delay = min(2*delay, 100*time.Millisecond)
			}
		}
	}
	return nil
}

// finish saves the manifest (engine), then backup.info and archive.info.
func (b *backupRun) finish() error {
	e := b.e
	ctx := e.Ctx
	m := b.m
	if err := b.eng.Finish(ctx); err != nil {
		return err
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
	e.Log.Infof("new backup label = %s", m.Backup.Label)
	e.Log.Infof("%s backup size = %s, file total = %d", m.Backup.Type, log.Size(b.eng.Size()), len(m.Files))
	return nil
}

// engineOptions are the engine's inputs from the options and the session.
func (b *backupRun) engineOptions() backupeng.Options {
	e := b.e
	ctl := b.c.Control
	o := backupeng.Options{
		Stanza: b.stanza, Storage: b.r.St, InfoCipherPass: b.bi.CipherPass,
		PgData: b.c.Path, Online: b.online, Excludes: e.Cfg.List(config.Exclude),
		TablespaceDir: fmt.Sprintf("PG_%s_%d", ctl.Version.Str, ctl.Version.CatalogVersion),
		Prior:         b.prior, PriorFiles: b.priorFiles, Compress: b.ct, Level: b.level, PageChecksum: b.pageChk, Start: b.start,
		Resume: e.Cfg.Bool(config.Resume), SaveThreshold: e.Cfg.Size(config.ManifestSaveThreshold),
		ProcessMax: e.processMax(), Pool: e.runPool,
		Log: e.Log, Progress: e.progress, LockProgress: b.lock.ProgressSize, Now: e.Now,
	}
	if n := b.bi.Newest(); n != nil {
		o.NewestLabel, o.NewestStop = n.Label, n.TimestampStop
	}
	if b.bundle {
		o.Bundle = true
		o.BundleSize = uint64(e.Cfg.Size(config.RepoBundleSize.Index(b.r.Key)))
		o.BundleLimit = uint64(e.Cfg.Size(config.RepoBundleLimit.Index(b.r.Key)))
	}
	if e.Cfg.Bool(config.RepoBlock.Index(b.r.Key)) {
		o.BlockIncr = true
		o.BlockSuperSize = uint64(e.Cfg.Size(config.RepoBlockSizeSuper.Index(b.r.Key)))
		o.BlockSuperSizeFull = uint64(e.Cfg.Size(config.RepoBlockSizeSuperFull.Index(b.r.Key)))
	}
	if b.db != nil {
		o.TablespaceNames = b.db.Tablespaces
	}
	if b.sb != nil {
		o.StandbyPath = b.sb.path
	}
	return o
}
