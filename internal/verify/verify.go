package verify

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/lazyre"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/progress"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// verifyCode is the outcome of checking one file.
type verifyCode int

const (
	verifyOK verifyCode = iota
	verifyMissing
	verifyChecksum
	verifySize
	verifyOther
)

// message is pgBackRest's wording of a code in the per-file log lines.
func (c verifyCode) message() string {
	switch c {
	case verifyMissing:
		return "file missing"
	case verifyChecksum:
		return "invalid checksum"
	case verifySize:
		return "invalid size"
	}
	return "invalid result"
}

type verifyInvalid struct {
	name   string // path below archive/<stanza>/ or backup/<stanza>/
	reason verifyCode
}

// verifyCounts tallies invalid files by reason.
type verifyCounts struct{ missing, checksum, size, other int }

func (c *verifyCounts) add(list []verifyInvalid) {
	for _, f := range list {
		switch f.reason {
		case verifyMissing:
			c.missing++
		case verifyChecksum:
			c.checksum++
		case verifySize:
			c.size++
		default:
			c.other++
		}
	}
}

func (c verifyCounts) total() int { return c.missing + c.checksum + c.size + c.other }

// render is pgBackRest's "\n    missing: N, checksum invalid: N, ..." line:
// every count when verbose, else only the non-zero ones.
func (c verifyCounts) render(verbose bool) string {
	var parts []string
	if verbose || c.missing > 0 {
		parts = append(parts, fmt.Sprintf("missing: %d", c.missing))
	}
	if verbose || c.checksum > 0 {
		parts = append(parts, fmt.Sprintf("checksum invalid: %d", c.checksum))
	}
	if verbose || c.size > 0 {
		parts = append(parts, fmt.Sprintf("size invalid: %d", c.size))
	}
	if verbose || c.other > 0 {
		parts = append(parts, fmt.Sprintf("other: %d", c.other))
	}
	return "\n    " + strings.Join(parts, ", ")
}

// walRange is a run of consecutive WAL segments in one archive id.
type walRange struct {
	start, stop string
	invalid     []verifyInvalid
}

type archiveResult struct {
	id         string
	totalWal   int
	totalValid int
	walSize    uint32
	ranges     []*walRange
	present    map[string]bool       // segments found (valid or not)
	bad        map[string]verifyCode // segments found invalid or duplicated
}

type backupStatus int

const (
	backupValid backupStatus = iota
	backupInvalid
	backupMissingManifest
	backupInProgress
	backupDirMissing // listed in backup.info, no directory
)

func (s backupStatus) String() string {
	switch s {
	case backupInvalid:
		return "invalid"
	case backupMissingManifest:
		return "manifest missing"
	case backupInProgress:
		return "in-progress"
	case backupDirMissing:
		return "directory missing"
	}
	return "valid"
}

type backupResult struct {
	label         string
	status        backupStatus
	complete      bool // every file was checked (references may reuse the results)
	totalManifest int
	totalVerify   int
	totalValid    int
	invalid       []verifyInvalid
	invalidByName map[string]verifyCode
	manifestErr   error // why neither manifest nor copy is usable

	// WAL the backup needs to be consistent (archive start to stop in
	// archiveID); walCheck is false when it need not be in the archive.
	walCheck               bool
	archiveID              string
	archiveStart           string
	archiveStop            string
	missingWal, invalidWal []walSpan
}

func (b *backupResult) addInvalid(name string, reason verifyCode) {
	b.invalid = append(b.invalid, verifyInvalid{name: name, reason: reason})
	if b.invalidByName == nil {
		b.invalidByName = map[string]verifyCode{}
	}
	if _, ok := b.invalidByName[name]; !ok {
		b.invalidByName[name] = reason
	}
}

// verifyJob is one file to check.
type verifyJob struct {
	// sf is the file to read and what it must read back to (the stored
	// bytes' checksum and size too when the manifest has them).
	sf   repo.StoredFile
	name string // name in messages (below archive/<stanza>/ or backup/<stanza>/)
	// blockIncr is a file stored with block incremental and its manifest:
	// the file is also assembled from its block map (verify_block.go).
	blockIncr *repo.ManifestFile
	blockSet  *repo.Manifest

	archive *archiveResult
	segment string
	backup  *backupResult
}

type verifier struct {
	ctx        context.Context
	log        *log.Logger
	progress   *progress.Counter
	pool       PoolFunc
	st         storage.Storage
	stanza     string
	cipherPass string // the repository's (info files)
	set        string
	procs      int
	verbose    bool

	errorTotal int
	archives   []*archiveResult
	backups    []*backupResult
	backupIdx  map[string]int
	bundled    map[string]bool // bundledBackup's answers

	bInfo        *repo.BackupInfo
	manifestPass string // backup.info sub-passphrase
	walPass      string // archive.info sub-passphrase

	// repoErr is the first storage failure (not a missing file) reading an
	// info file: the repository cannot be read at all.
	repoErr error

	// --set: only WAL from archiveStart to archiveStop ("" = none).
	filterWal                 bool
	archiveStart, archiveStop string
}

var (
	verifyArchiveIDRegexp = lazyre.New(`^[0-9]+(\.[0-9]+)*-[0-9]+$`)
	verifyWalDirRegexp    = lazyre.New(`^[0-F]{16}$`)
	verifyWalFileRegexp   = lazyre.New(`^[0-F]{24}-[0-f]{40}(\.(gz|bz2|lz4|zst|xz))?$`)
)

func (v *verifier) layout() repo.Layout { return repo.Layout{Stanza: v.stanza} }
func (v *verifier) backupDir() string   { return v.layout().BackupDir() }
func (v *verifier) archiveDir() string  { return v.layout().ArchiveDir() }

func (v *verifier) run() (string, error) {
	var res strings.Builder
	bInfo, bErr := v.backupInfo()
	aInfo, aErr := v.archiveInfo()
	if (bInfo == nil || aInfo == nil) && v.repoErr != nil {
		// Not a damaged repository but one that cannot be read: say why.
		return "", errs.Wrap(errs.CodeOf(v.repoErr), v.repoErr, "unable to read the repository '%s'", v.st.Root())
	}
	if bInfo == nil {
		res.WriteString("\n  No usable backup.info file")
		v.problem(0, "no usable backup.info file (nor copy): %v", bErr)
	}
	if aInfo == nil {
		res.WriteString("\n  No usable archive.info file")
		v.problem(0, "no usable archive.info file (nor copy): %v", aErr)
	}
	if aInfo != nil && bInfo != nil {
		if err := verifyPgHistory(aInfo, bInfo); err != nil {
			res.WriteString("\n" + err.Error())
			v.problem(0, "%v", err)
		}
	}
	if v.errorTotal == 0 {
		v.manifestPass, v.walPass = bInfo.CipherPass, aInfo.CipherPass
		out, err := v.process(aInfo, bInfo)
		if err != nil {
			return "", err
		}
		res.WriteString(out)
	}
	if !v.verbose && v.errorTotal == 0 {
		return "", nil
	}
	status := "ok"
	if v.errorTotal > 0 {
		status = "error"
	}
	return fmt.Sprintf("stanza: %s\nstatus: %s%s", v.stanza, status, res.String()), nil
}

// process checks the archive and the backups and returns the rendered
// result.
func (v *verifier) process(aInfo *repo.ArchiveInfo, bInfo *repo.BackupInfo) (string, error) {
	set := v.set
	var backups []string
	if set != "" {
		if !repo.IsLabel(set) {
			v.errorTotal++
			return fmt.Sprintf("\n  '%s' is not a valid backup label format", set), nil
		}
	}
	list, err := v.st.List(v.ctx, v.backupDir())
	if err != nil {
		return "", errs.OrCode(errs.PathOpen, err)
	}
	for _, f := range list {
		if repo.IsLabel(f.Name) && (set == "" || f.Name == set) {
			backups = append(backups, f.Name)
		}
	}
	slices.Sort(backups)
	if set != "" && len(backups) == 0 {
		v.errorTotal++
		return fmt.Sprintf("\n  backup set %s is not valid", set), nil
	}
	list, err = v.st.List(v.ctx, v.archiveDir())
	if err != nil {
		return "", errs.OrCode(errs.PathOpen, err)
	}
	var archiveIDs []string
	for _, f := range list {
		if verifyArchiveIDRegexp.MatchString(f.Name) {
			archiveIDs = append(archiveIDs, f.Name)
		}
	}
	slices.SortStableFunc(archiveIDs, func(a, b string) int {
		return cmp.Compare(archiveIDNum(a), archiveIDNum(b))
	})
	if set != "" {
		// Only the WAL that makes the backup consistent; none when its
		// manifest cannot be read (the backup check reports why).
		v.filterWal = true
		if m, err := repo.LoadManifest(v.ctx, v.st, v.stanza, set, v.manifestPass); err == nil {
			v.archiveStart, v.archiveStop = m.Backup.ArchiveStart, m.Backup.ArchiveStop
		}
	}
	if len(archiveIDs) == 0 && len(backups) == 0 {
		return "\n    no archives or backups exist in the repo", nil
	}
	if len(archiveIDs) == 0 {
		v.log.Detailf("no archives exist in the repo")
	} else if len(backups) == 0 {
		v.log.Detailf("no backups exist in the repo")
	}

	// The newest backup on disk that backup.info does not know may be
	// running now.
	current := ""
	if n := len(backups); n > 0 {
		if _, ok := bInfo.Find(backups[n-1]); !ok {
			current = backups[n-1]
		}
	}
	// Archive ids on disk must be in the history.
	if len(archiveIDs) > 0 {
		known := map[string]bool{}
		for _, h := range aInfo.History {
			known[h.ArchiveID()] = true
		}
		var missing []string
		for _, id := range archiveIDs {
			if !known[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			v.problem(0, "archiveIds '%s' are not in the archive.info history list", strings.Join(missing, ", "))
		}
	}

	if err := v.verifyArchive(archiveIDs); err != nil {
		return "", err
	}
	for _, label := range backups {
		if err := v.verifyBackup(label, label == current, aInfo); err != nil {
			return "", err
		}
	}
	if set == "" {
		v.missingBackupDirs(bInfo)
	}
	v.checkBackupWal()
	out := v.render()
	v.warnSummary()
	return out, nil
}

// archiveIDNum is the history id of an archive id ("15-2" → 2).
func archiveIDNum(id string) int {
	n, _ := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	return n
}

// verifyArchive checks every WAL segment of every archive id.
func (v *verifier) verifyArchive(ids []string) error {
	var jobs []verifyJob
	for _, id := range ids {
		ar := &archiveResult{id: id, present: map[string]bool{}, bad: map[string]verifyCode{}}
		v.archives = append(v.archives, ar)
		base := v.archiveDir() + "/" + id
		list, err := v.st.List(v.ctx, base)
		if err != nil {
			return errs.OrCode(errs.PathOpen, err)
		}
		var dirs []string
		for _, f := range list {
			if verifyWalDirRegexp.MatchString(f.Name) {
				dirs = append(dirs, f.Name)
			}
		}
		slices.Sort(dirs)
		if len(dirs) == 0 {
			v.log.Detailf("archive path '%s' is empty", id)
			continue
		}
		for _, dir := range dirs {
			list, err := v.st.List(v.ctx, base+"/"+dir)
			if err != nil {
				return errs.OrCode(errs.PathOpen, err)
			}
			var files []string
			for _, f := range list {
				if verifyWalFileRegexp.MatchString(f.Name) {
					files = append(files, f.Name)
					ar.present[f.Name[:24]] = true
				}
			}
			slices.Sort(files)
			if v.filterWal {
				files = slices.DeleteFunc(files, func(f string) bool {
					return v.archiveStart == "" || f[:24] < v.archiveStart || f[:24] > v.archiveStop
				})
			}
			if len(files) > 0 {
				if ar.walSize == 0 {
					size, err := v.walSegmentSize(base + "/" + dir + "/" + files[0])
					if err != nil {
						return err
					}
					ar.walSize = size
				}
				ar.totalWal += len(files)
				files = v.walRanges(ar, files)
			}
			if len(files) == 0 {
				v.log.Detailf("path '%s/%s' does not contain any valid WAL to be processed", id, dir)
				continue
			}
			for _, f := range files {
				name := id + "/" + dir + "/" + f
				jobs = append(jobs, verifyJob{sf: repo.StoredFile{Path: v.archiveDir() + "/" + name,
					Compress: filter.CompressTypeFromName(f), CipherPass: v.walPass, Checksum: f[25:65],
					Size: int64(ar.walSize), RepoSize: -1}, name: name, archive: ar, segment: f[:24]})
			}
		}
	}
	return v.runJobs(jobs)
}

// walSegmentSize reads the WAL segment size from the header of a stored
// segment.
func (v *verifier) walSegmentSize(path string) (uint32, error) {
	in, err := v.st.Open(v.ctx, path)
	if err != nil {
		return 0, errs.OrCode(errs.FileOpen, err)
	}
	defer in.Close()
	p, err := filter.NewReadPipeline(in, filter.CompressTypeFromName(path), v.walPass)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	buf := make([]byte, 512)
	if _, err := io.ReadFull(p, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, errs.New(errs.FileRead, "unable to read 512 byte(s) from '%s'", v.st.Full(path))
		}
		if errs.CodeOf(err) == errs.Unknown {
			return 0, errs.Wrap(errs.FileRead, err, "unable to read '%s'", v.st.Full(path))
		}
		return 0, err
	}
	h, err := pg.ParseWalHeader(buf)
	if err != nil {
		return 0, err
	}
	return h.SegmentSize, nil
}

// walRanges drops duplicated segments (reported as errors) and extends the
// archive id's ranges of consecutive segments. It returns the files to
// check.
func (v *verifier) walRanges(ar *archiveResult, files []string) []string {
	var cur *walRange
	if n := len(ar.ranges); n > 0 && ar.ranges[n-1].stop[:8] == files[0][:8] {
		cur = ar.ranges[n-1]
	}
	out := files[:0:0]
	for i := 0; i < len(files); {
		seg := files[i][:24]
		if i+1 < len(files) && files[i+1][:24] == seg {
			v.problem(0, "duplicate WAL '%s' for '%s' exists, skipping", seg, ar.id)
			ar.bad[seg] = verifyOther
			for i < len(files) && files[i][:24] == seg {
				i++
			}
			continue
		}
		next := ""
		if cur != nil {
			next, _ = pg.WalSegmentNext(cur.stop, ar.walSize)
		}
		if cur == nil || next != seg {
			cur = &walRange{start: seg, stop: seg}
			ar.ranges = append(ar.ranges, cur)
		} else {
			cur.stop = seg
		}
		out = append(out, files[i])
		i++
	}
	return out
}

// verifyBackup checks the files of one backup on disk.
func (v *verifier) verifyBackup(label string, inProgress bool, aInfo *repo.ArchiveInfo) error {
	br := &backupResult{label: label}
	v.backupIdx[label] = len(v.backups)
	v.backups = append(v.backups, br)
	m := v.manifest(br, inProgress, aInfo)
	if m == nil {
		return nil
	}
	br.totalManifest = len(m.Files)
	if len(m.Files) == 0 {
		v.problem(0, "backup '%s' manifest does not contain any target files to verify", label)
		br.status = backupInvalid
		return nil
	}
	v.walNeeded(br, m)
	ext := repo.CompressExt(m.Option.CompressType)
	var jobs []verifyJob
	for i := range m.Files {
		f := &m.Files[i]
		br.totalVerify++
		// Zero-length files are not stored in a bundle, nor when a
		// reference points to a bundled backup (with --set that backup is
		// not verified first).
		if f.Size == 0 && (m.Backup.Bundle || f.Reference != "" && f.BundleID == 0 && v.bundledBackup(f.Reference)) {
			br.totalValid++
			continue
		}
		fileLabel := label
		if f.Reference != "" {
			fileLabel = f.Reference
			// A prior backup already checked in full: reuse its result.
			if pi, ok := v.backupIdx[f.Reference]; ok && v.backups[pi].complete {
				prior := v.backups[pi]
				name := f.Reference + "/" + f.Name + ext
				if reason, bad := prior.invalidByName[name]; bad {
					br.addInvalid(name, reason)
					br.status = backupInvalid
				} else {
					br.totalValid++
				}
				continue
			}
		}
		name := fileLabel + "/" + f.Name + ext
		// End to end: the stored bytes (when the manifest has their
		// checksum) and the decrypted, decompressed content. Block
		// incremental: the stored bytes are a block map and blocks, not one
		// stream; their checksum is compared here and the file is
		// assembled from its map (verifyBlockIncr).
		j := verifyJob{sf: v.layout().StoredFile(m, f, true), name: name, backup: br}
		v.blockIncrJob(&j, m, f)
		jobs = append(jobs, j)
	}
	if err := v.runJobs(jobs); err != nil {
		return err
	}
	if len(jobs) > 0 {
		br.complete = true
	}
	return nil
}

// manifest loads a backup's manifest as pgBackRest's verify does: the main
// file, else the copy; a missing main manifest of the newest backup means
// the backup is still running. The manifest's cluster must be in the
// archive history.
func (v *verifier) manifest(br *backupResult, inProgress bool, aInfo *repo.ArchiveInfo) *repo.Manifest {
	path := repo.BackupManifestPath(v.stanza, br.label)
	var m *repo.Manifest
	parse := func(b []byte) error {
		var err error
		m, err = repo.ParseManifest(b)
		return err
	}
	sum, _, err := v.loadInfoErr(path, v.manifestPass, parse)
	code := errs.CodeOf(err)
	if code == 0 {
		if sumCopy, codeCopy := v.loadInfo(path+repo.CopyExt, v.manifestPass, nil); codeCopy == 0 && sumCopy != sum {
			v.log.Detailf("backup '%s' manifest.copy does not match manifest", br.label)
		}
	} else if !(inProgress && code == errs.FileMissing) {
		m = nil
		if _, codeCopy := v.loadInfo(path+repo.CopyExt, v.manifestPass, parse); codeCopy == 0 {
			v.log.Detailf("%s/backup.manifest is missing or unusable, using copy", br.label)
		} else {
			m = nil // a partial parse of the copy
			br.manifestErr = err
			if code == errs.FileMissing && codeCopy == errs.FileMissing {
				br.status = backupMissingManifest
				v.log.Detailf("manifest missing for '%s' - backup may have expired", br.label)
			}
		}
	} else {
		m = nil
		br.status = backupInProgress
		v.log.Infof("backup '%s' appears to be in progress, skipping", br.label)
	}
	if m != nil {
		found := false
		for _, h := range aInfo.History {
			if h.ID == m.DB.ID && h.SystemID == m.DB.SystemID && h.Version == m.DB.Version {
				found = true
				break
			}
		}
		if !found {
			v.log.Warnf("'%s' may not be recoverable - PG data (id %d, version %s, system-id %d) is not in the backup.info history, skipping",
				br.label, m.DB.ID, m.DB.Version, m.DB.SystemID)
			m = nil
		}
	}
	if m == nil && br.status == backupValid {
		br.status = backupInvalid
		v.errorTotal++
	}
	if br.status == backupMissingManifest && v.listed(br.label) {
		// An expiring backup may lose its manifest first, but one that
		// backup.info still lists cannot be restored.
		v.problem(0, "backup '%s' is listed in backup.info but has no manifest", br.label)
	}
	return m
}

// bundledBackup reports whether the manifest of backup label says it was
// written with bundling (remembered per label).
func (v *verifier) bundledBackup(label string) bool {
	if b, ok := v.bundled[label]; ok {
		return b
	}
	bundled := false
	parse := func(b []byte) error {
		m, err := repo.ParseManifest(b)
		if err == nil {
			bundled = m.Backup.Bundle
		}
		return err
	}
	if _, code := v.loadInfo(repo.BackupManifestPath(v.stanza, label), v.manifestPass, parse); code != 0 {
		v.loadInfo(repo.BackupManifestPath(v.stanza, label)+repo.CopyExt, v.manifestPass, parse)
	}
	if v.bundled == nil {
		v.bundled = map[string]bool{}
	}
	v.bundled[label] = bundled
	return bundled
}

// loadInfo reads (and decrypts) an info file, hashes the plain text and,
// when parse is given, parses it. It returns the SHA-1 of the plain text,
// or the code of the failure (logged at detail level).
func (v *verifier) loadInfo(path, pass string, parse func([]byte) error) (string, errs.Code) {
	sum, _, err := v.loadInfoErr(path, pass, parse)
	return sum, errs.CodeOf(err)
}

// loadInfoErr is loadInfo returning the failure itself, and whether it is
// a failure of the storage (not a missing file, not the content).
func (v *verifier) loadInfoErr(path, pass string, parse func([]byte) error) (sum string, unreadable bool, err error) {
	data, err := storage.ReadAll(v.ctx, v.st, path)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			err = errs.New(errs.FileMissing, "unable to open missing file '%s' for read", v.st.Full(path))
		} else {
			err = errs.OrCode(errs.FileRead, err)
			unreadable = true
		}
	}
	if err == nil && pass != "" {
		data, err = filter.DecryptBytes(data, pass)
	}
	if err == nil && parse != nil {
		err = parse(data)
	}
	if err != nil {
		msg := err.Error()
		if errs.CodeOf(err) == errs.Checksum {
			msg += " " + v.st.Full(path)
		}
		v.log.Detailf("%s", msg)
		if errs.CodeOf(err) == errs.Unknown {
			err = errs.Wrap(errs.Format, err, "unable to load '%s'", v.st.Full(path))
		}
		return "", unreadable, err
	}
	h := sha1.Sum(data)
	return hex.EncodeToString(h[:]), false, nil
}

// backupInfo loads backup.info, else its copy (nil and the main file's
// failure when neither is usable).
func (v *verifier) backupInfo() (*repo.BackupInfo, error) {
	var b *repo.BackupInfo
	parse := func(data []byte) error {
		var err error
		b, err = repo.ParseBackupInfo(data)
		return err
	}
	err := v.infoPair(repo.BackupInfoPath(v.stanza), repo.BackupInfoName, parse)
	if err != nil {
		b = nil
	}
	v.bInfo = b
	return b, err
}

// archiveInfo loads archive.info, else its copy (nil and the main file's
// failure when neither is usable).
func (v *verifier) archiveInfo() (*repo.ArchiveInfo, error) {
	var a *repo.ArchiveInfo
	parse := func(data []byte) error {
		var err error
		a, err = repo.ParseArchiveInfo(data)
		return err
	}
	if err := v.infoPair(repo.ArchiveInfoPath(v.stanza), repo.ArchiveInfoName, parse); err != nil {
		return nil, err
	}
	return a, nil
}

// infoPair loads an info file with parse, else its copy; when the main file
// is usable the copy is only compared with it. It returns the main file's
// failure when the copy is not usable either; when that is because the
// storage refused to read them, the failure is also kept in repoErr.
func (v *verifier) infoPair(path, name string, parse func([]byte) error) error {
	sum, unreadable, err := v.loadInfoErr(path, v.cipherPass, parse)
	if err == nil {
		if sumCopy, codeCopy := v.loadInfo(path+repo.CopyExt, v.cipherPass, nil); codeCopy == 0 && sumCopy != sum {
			v.log.Detailf("%s.copy does not match %s", name, name)
		}
		return nil
	}
	_, unreadableCopy, errCopy := v.loadInfoErr(path+repo.CopyExt, v.cipherPass, parse)
	if errCopy == nil {
		return nil
	}
	if v.repoErr == nil {
		if unreadable {
			v.repoErr = err
		} else if unreadableCopy {
			v.repoErr = errCopy
		}
	}
	return err
}

// verifyPgHistory checks that archive.info and backup.info describe the
// same current cluster and the same history.
func verifyPgHistory(a *repo.ArchiveInfo, b *repo.BackupInfo) error {
	if err := repo.StanzaInfoMatch(a, b); err != nil {
		return err
	}
	if len(a.History) != len(b.History) {
		return errs.New(errs.Format, "archive and backup history lists do not match")
	}
	for i := range a.History {
		ah, bh := a.History[i], b.History[i]
		if ah.ID != bh.ID || ah.SystemID != bh.SystemID || ah.Version != bh.Version {
			return errs.New(errs.Format, "archive and backup history lists do not match")
		}
	}
	return nil
}

// runJobs checks files with process-max workers and records each result
// as it arrives (in the calling goroutine).
func (v *verifier) runJobs(jobs []verifyJob) error {
	if len(jobs) == 0 {
		return nil
	}
	v.progress.AddTotal(jobsTotal(jobs))
	// A file's problem is recorded, not returned: the pool stops only on a
	// signal or a panic.
	var mu sync.Mutex
	return v.pool(v.procs, len(jobs), func(_ context.Context, proc, i int) error {
		code, err := v.verifyFile(&jobs[i])
		mu.Lock()
		v.record(&jobs[i], code, err, proc)
		mu.Unlock()
		v.progress.Add(1, jobs[i].sf.Size)
		return nil
	})
}

// record logs and counts one file's result.
func (v *verifier) record(j *verifyJob, code verifyCode, err error, proc int) {
	// pgBackRest 2.45 logs these at info level (but a WAL segment gone
	// meanwhile); pgbr warns so that the default console level shows them.
	lg := v.log
	if err != nil {
		c := errs.CodeOf(err)
		lg.Log(log.Warn, proc, 0, fmt.Sprintf("%s %s: [%d] %s", verifyOther.message(), j.name, int(c), err.Error()))
		v.errorTotal++
		code = verifyOther
	} else if code != verifyOK {
		lg.Log(log.Warn, proc, 0, fmt.Sprintf("%s '%s'", code.message(), j.name))
		if j.archive == nil || code != verifyMissing {
			// Expire may have removed a WAL segment meanwhile: not an
			// error unless a backup needs it (checkBackupWal).
			v.errorTotal++
		}
	}
	if j.archive != nil {
		if code == verifyOK {
			j.archive.totalValid++
			return
		}
		j.archive.bad[j.segment] = code
		for _, rg := range j.archive.ranges {
			if rg.stop >= j.segment {
				rg.invalid = append(rg.invalid, verifyInvalid{name: j.name, reason: code})
				break
			}
		}
		return
	}
	if code == verifyOK {
		j.backup.totalValid++
		return
	}
	j.backup.status = backupInvalid
	j.backup.addInvalid(j.name, code)
}

// verifyFile reads one stored file through decryption and decompression
// and compares the stored bytes' SHA-1 and size (when the job has them),
// then the content's.
func (v *verifier) verifyFile(j *verifyJob) (verifyCode, error) {
	in, err := j.sf.Open(v.ctx, v.st)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return verifyMissing, nil
		}
		return verifyOther, errs.OrCode(errs.FileOpen, err)
	}
	defer in.Close()
	if code, err := checkStream(in, j); code != verifyOK || err != nil {
		return code, err
	}
	return v.verifyBlockIncr(j)
}

// checkStream checks one file's stored bytes read from in (see
// repo.StoredReader.Drain: the stored bytes' checksum first when the job
// has it, then the decrypted, decompressed content).
func checkStream(in io.Reader, j *verifyJob) (verifyCode, error) {
	r, err := repo.NewStoredReader(in, j.sf, j.sf.Path)
	if err != nil {
		return verifyOther, err
	}
	defer r.Close()
	switch mm, err := r.Drain(); {
	case err != nil:
		return verifyOther, err
	case mm == repo.MismatchChecksum:
		return verifyChecksum, nil
	case mm == repo.MismatchSize:
		return verifySize, nil
	}
	return verifyOK, nil
}

// render is pgBackRest's result text below "status:".
func (v *verifier) render() string {
	var b strings.Builder
	if v.verbose && len(v.archives) == 0 {
		b.WriteString("\n  archiveId: none found")
	} else {
		for _, ar := range v.archives {
			if v.verbose || ar.totalWal != ar.totalValid {
				fmt.Fprintf(&b, "\n  archiveId: %s, total WAL checked: %d, total valid WAL: %d", ar.id, ar.totalWal, ar.totalValid)
			}
			if ar.totalWal == 0 {
				continue
			}
			var c verifyCounts
			for _, rg := range ar.ranges {
				v.log.Detailf("archiveId: %s, wal start: %s, wal stop: %s", ar.id, rg.start, rg.stop)
				c.add(rg.invalid)
			}
			if v.verbose || c.total() > 0 {
				b.WriteString(c.render(v.verbose))
			}
		}
	}
	if v.verbose && len(v.backups) == 0 {
		b.WriteString("\n  backup: none found")
	} else {
		for _, br := range v.backups {
			if v.verbose || (br.status != backupValid && br.status != backupInProgress) {
				fmt.Fprintf(&b, "\n  backup: %s, status: %s, total files checked: %d, total valid files: %d",
					br.label, br.status, br.totalVerify, br.totalValid)
			}
			if br.totalVerify == 0 {
				continue
			}
			var c verifyCounts
			c.add(br.invalid)
			if v.verbose || c.total() > 0 {
				b.WriteString(c.render(v.verbose))
			}
			if len(br.missingWal) > 0 {
				// Not in pgBackRest 2.45, which does not check this.
				fmt.Fprintf(&b, "\n    WAL missing for consistency: %s", spanList(br.missingWal))
			}
		}
	}
	return b.String()
}
