package verify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// Checks of verify beyond pgBackRest 2.45: backups listed in backup.info
// without a directory, the WAL each backup needs, and the warnings that
// make every problem visible at the default console level (warn).

// problem logs one problem at warn level and counts it as an error.
func (v *verifier) problem(proc int, format string, a ...any) {
	v.log.Log(log.Warn, proc, 0, fmt.Sprintf(format, a...))
	v.errorTotal++
}

// listed reports whether backup.info lists the backup.
func (v *verifier) listed(label string) bool {
	if v.bInfo == nil {
		return false
	}
	_, ok := v.bInfo.Find(label)
	return ok
}

// missingBackupDirs adds a "directory missing" result for each backup that
// backup.info lists but whose directory is gone: restore cannot use it.
func (v *verifier) missingBackupDirs(b *repo.BackupInfo) {
	if b == nil {
		return
	}
	added := false
	for _, entry := range b.Current {
		if _, ok := v.backupIdx[entry.Label]; ok {
			continue
		}
		v.backups = append(v.backups, &backupResult{label: entry.Label, status: backupDirMissing})
		v.problem(0, "backup '%s' is listed in backup.info but its directory '%s' is missing",
			entry.Label, v.st.Full(v.backupDir()+"/"+entry.Label))
		added = true
	}
	if added {
		slices.SortFunc(v.backups, func(a, b *backupResult) int { return strings.Compare(a.label, b.label) })
		for i, br := range v.backups {
			v.backupIdx[br.label] = i
		}
	}
}

// walNeeded records the WAL a backup needs to be consistent: from its
// archive start to stop in its archive id. An offline backup, or one taken
// without archive check or with the WAL copied into the backup
// (archive-copy), does not need it in the archive.
func (v *verifier) walNeeded(br *backupResult, m *repo.Manifest) {
	if m.Backup.ArchiveStart == "" || m.Backup.ArchiveStop == "" || !m.Option.ArchiveCheck || m.Option.ArchiveCopy {
		return
	}
	br.walCheck = true
	br.archiveID = fmt.Sprintf("%s-%d", m.DB.Version, m.DB.ID)
	br.archiveStart, br.archiveStop = m.Backup.ArchiveStart, m.Backup.ArchiveStop
}

// walSpan is a run of consecutive WAL segments.
type walSpan struct{ start, stop string }

func (s walSpan) String() string {
	if s.start == s.stop {
		return s.start
	}
	return s.start + " to " + s.stop
}

func spanList(list []walSpan) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", ")
}

// addSpan appends seg to the list, extending the last span when seg
// follows it (next is the segment after the last span's stop).
func addSpan(list []walSpan, seg, next string) []walSpan {
	if n := len(list); n > 0 && next == seg {
		list[n-1].stop = seg
		return list
	}
	return append(list, walSpan{seg, seg})
}

// backupWal lists the segments from start to stop. Without a known
// segment size (no WAL at all in the archive id) or across timelines, only
// start and stop are known.
func backupWal(start, stop string, segSize uint32) []string {
	if segs, err := pg.WalSegmentRange(start, stop, segSize); err == nil && len(segs) > 0 {
		return segs
	}
	if start == stop {
		return []string{start}
	}
	return []string{start, stop}
}

// checkBackupWal makes every backup whose WAL (archive start to stop) is
// missing from the archive invalid, and warns about invalid WAL it needs.
func (v *verifier) checkBackupWal() {
	archives := map[string]*archiveResult{}
	for _, ar := range v.archives {
		archives[ar.id] = ar
	}
	for _, br := range v.backups {
		if !br.walCheck {
			continue
		}
		ar := archives[br.archiveID]
		var segSize uint32
		if ar != nil {
			segSize = ar.walSize
		}
		prev := ""
		for _, seg := range backupWal(br.archiveStart, br.archiveStop, segSize) {
			next := ""
			if prev != "" && segSize != 0 {
				next, _ = pg.WalSegmentNext(prev, segSize)
			}
			prev = seg
			switch {
			case ar == nil || !ar.present[seg] || ar.bad[seg] == verifyMissing:
				br.missingWal = addSpan(br.missingWal, seg, next)
				v.errorTotal++
			case ar.bad[seg] != verifyOK:
				// Already counted as an invalid WAL segment.
				br.invalidWal = addSpan(br.invalidWal, seg, next)
			}
		}
		if len(br.missingWal) > 0 {
			if br.status == backupValid {
				br.status = backupInvalid
			}
			v.log.Warnf("backup '%s' needs WAL %s (archiveId %s) to be consistent, which is missing from the archive",
				br.label, spanList(br.missingWal), br.archiveID)
		}
		if len(br.invalidWal) > 0 {
			v.log.Warnf("backup '%s' needs WAL %s (archiveId %s) to be consistent, which is invalid",
				br.label, spanList(br.invalidWal), br.archiveID)
		}
	}
}

// walGaps returns the gaps between consecutive ranges of one timeline: the
// last segment before each gap and the first after it.
func walGaps(ranges []*walRange) []walSpan {
	var gaps []walSpan
	for i := 1; i < len(ranges); i++ {
		a, b := ranges[i-1], ranges[i]
		if a.stop[:8] == b.start[:8] {
			gaps = append(gaps, walSpan{a.stop, b.start})
		}
	}
	return gaps
}

// warnSummary warns about each WAL gap and each backup that is not valid,
// so that the default console level shows what the result text tells.
func (v *verifier) warnSummary() {
	lg := v.log
	for _, ar := range v.archives {
		for _, g := range walGaps(ar.ranges) {
			lg.Warnf("archiveId %s: WAL gap: no WAL between %s and %s", ar.id, g.start, g.stop)
		}
	}
	for _, br := range v.backups {
		switch br.status {
		case backupValid, backupInProgress, backupDirMissing:
			// A missing directory was logged when found.
			continue
		case backupMissingManifest:
			if !v.listed(br.label) { // else logged when found
				lg.Warnf("backup '%s' is not valid: its manifest is missing (an expired backup not yet removed?)", br.label)
			}
			continue
		}
		var why []string
		if len(br.invalid) > 0 {
			why = append(why, fmt.Sprintf("%d of %d file(s) invalid or missing", len(br.invalid), br.totalVerify))
		}
		if len(br.missingWal) > 0 {
			why = append(why, "WAL "+spanList(br.missingWal)+" missing")
		}
		if br.manifestErr != nil {
			why = append(why, "its manifest is unusable: "+br.manifestErr.Error())
		} else if br.totalManifest == 0 && len(why) == 0 {
			why = append(why, "its manifest is unusable")
		}
		lg.Warnf("backup '%s' is not valid: %s", br.label, strings.Join(why, ", "))
	}
}
