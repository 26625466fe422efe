package repo

import (
	"slices"
	"strconv"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/jsonw"
)

const sectionBackupCurrent = "backup:current"

// BackupDB describes a cluster in backup.info ([db] and [db:history]).
type BackupDB struct {
	CatalogVersion uint32
	ControlVersion uint32
	ID             int
	SystemID       uint64
	Version        string
}

// BackupHistory is one [db:history] entry of backup.info.
type BackupHistory = BackupDB

// BackupInfoEntry is one [backup:current] entry (format spec §2.8).
type BackupInfoEntry struct {
	Label           string
	BackrestFormat  int
	BackrestVersion string
	Annotation      map[string]string // nil = none
	ArchiveStart    string            // "" is written as null
	ArchiveStop     string            // "" is written as null
	Error           bool
	// ErrorMissing is set when the loaded entry had no backup-error key
	// (backups made before it existed); backup-error is then not written.
	ErrorMissing  bool
	RepoSize      uint64
	RepoSizeDelta uint64
	// RepoSizeMap/RepoSizeMapDelta exist only for block incremental backups
	// (read and re-written, never produced by pgbr).
	RepoSizeMap      *uint64
	RepoSizeMapDelta *uint64
	Size             uint64
	SizeDelta        uint64
	LsnStart         string // "" = absent
	LsnStop          string
	Prior            string
	Reference        []string // nil = absent (full backups)
	TimestampStart   int64
	TimestampStop    int64
	Type             string // "full", "diff", "incr"
	DbID             int

	OptionArchiveCheck  bool
	OptionArchiveCopy   bool
	OptionBackupStandby bool
	OptionChecksumPage  bool
	OptionCompress      bool
	OptionHardlink      bool
	OptionOnline        bool
}

// BackupInfo is backup/<stanza>/backup.info.
type BackupInfo struct {
	BackrestVersion string
	CipherPass      string // backup sub-passphrase; "" = not encrypted
	DB              BackupDB
	History         []BackupHistory   // ascending by ID
	Current         []BackupInfoEntry // ascending by label
}

// Newest returns the entry with the latest label (nil when there is none).
func (b *BackupInfo) Newest() *BackupInfoEntry {
	if len(b.Current) == 0 {
		return nil
	}
	return &b.Current[len(b.Current)-1]
}

// Find returns the entry with the given label.
func (b *BackupInfo) Find(label string) (*BackupInfoEntry, bool) {
	i, ok := slices.BinarySearchFunc(b.Current, label, func(e BackupInfoEntry, l string) int {
		return strings.Compare(e.Label, l)
	})
	if !ok {
		return nil, false
	}
	return &b.Current[i], true
}

// Add inserts or replaces an entry, keeping Current sorted.
func (b *BackupInfo) Add(e BackupInfoEntry) {
	i, ok := slices.BinarySearchFunc(b.Current, e.Label, func(x BackupInfoEntry, l string) int {
		return strings.Compare(x.Label, l)
	})
	if ok {
		b.Current[i] = e
		return
	}
	b.Current = slices.Insert(b.Current, i, e)
}

// Remove deletes the entry with the given label, if any.
func (b *BackupInfo) Remove(label string) {
	b.Current = slices.DeleteFunc(b.Current, func(e BackupInfoEntry) bool { return e.Label == label })
}

// ParseBackupInfo parses and verifies backup.info.
func ParseBackupInfo(data []byte) (*BackupInfo, error) {
	ini, err := ParseIni(data)
	if err != nil {
		return nil, err
	}
	return backupInfoFromIni(ini)
}

func backupInfoFromIni(ini *Ini) (*BackupInfo, error) {
	h, err := readHeader(ini)
	if err != nil {
		return nil, err
	}
	b := &BackupInfo{BackrestVersion: h.version, CipherPass: h.cipherPass}
	current, hist, err := readPgHistory(ini, true)
	if err != nil {
		return nil, err
	}
	for _, p := range hist {
		e := BackupHistory{ID: p.ID, CatalogVersion: p.CatalogVersion, ControlVersion: p.ControlVersion,
			SystemID: p.SystemID, Version: p.Version}
		b.History = append(b.History, e)
		if p.ID == current {
			b.DB = e
		}
	}
	for _, v := range ini.Values {
		if v.Section != sectionBackupCurrent {
			continue
		}
		e, err := parseBackupInfoEntry(v.Key, v.Value)
		if err != nil {
			return nil, err
		}
		b.Current = append(b.Current, e)
	}
	slices.SortStableFunc(b.Current, func(x, y BackupInfoEntry) int { return strings.Compare(x.Label, y.Label) })
	// A repeated label: the last one wins.
	out := b.Current[:0]
	for i := range b.Current {
		if i+1 < len(b.Current) && b.Current[i+1].Label == b.Current[i].Label {
			continue
		}
		out = append(out, b.Current[i])
	}
	b.Current = out
	return b, nil
}

func parseBackupInfoEntry(label, value string) (BackupInfoEntry, error) {
	where := "[backup:current] " + label
	e := BackupInfoEntry{Label: label, ErrorMissing: true}
	obj, err := parseObject(value, where)
	if err != nil {
		return e, err
	}
	const (
		fFormat = 1 << iota
		fVersion
		fRepoSize
		fRepoSizeDelta
		fSize
		fSizeDelta
		fTsStart
		fTsStop
		fType
		fDbID
		fArchiveCheck
		fArchiveCopy
		fStandby
		fChecksumPage
		fCompress
		fHardlink
		fOnline
		fAll = 1<<iota - 1
	)
	var seen uint32
	var mapDelta *uint64
	for i := range obj.obj {
		m := &obj.obj[i]
		w := where + " " + m.key
		var err error
		var u uint64
		switch m.key {
		case "backrest-format":
			e.BackrestFormat, err = m.val.asInt(w)
			seen |= fFormat
		case "backrest-version":
			e.BackrestVersion, err = m.val.asString(w)
			seen |= fVersion
		case "backup-annotation":
			if m.val.kind != jsonNull {
				e.Annotation, err = m.val.asStringMap(w)
			}
		case "backup-archive-start":
			e.ArchiveStart, err = m.val.asStringOrNull(w)
		case "backup-archive-stop":
			e.ArchiveStop, err = m.val.asStringOrNull(w)
		case "backup-error":
			e.Error, err = m.val.asBool(w)
			e.ErrorMissing = false
		case "backup-info-repo-size":
			e.RepoSize, err = m.val.asUint64(w)
			seen |= fRepoSize
		case "backup-info-repo-size-delta":
			e.RepoSizeDelta, err = m.val.asUint64(w)
			seen |= fRepoSizeDelta
		case "backup-info-repo-size-map":
			u, err = m.val.asUint64(w)
			e.RepoSizeMap = &u
		case "backup-info-repo-size-map-delta":
			u, err = m.val.asUint64(w)
			mapDelta = &u
		case "backup-info-size":
			e.Size, err = m.val.asUint64(w)
			seen |= fSize
		case "backup-info-size-delta":
			e.SizeDelta, err = m.val.asUint64(w)
			seen |= fSizeDelta
		case "backup-lsn-start":
			e.LsnStart, err = m.val.asStringOrNull(w)
		case "backup-lsn-stop":
			e.LsnStop, err = m.val.asStringOrNull(w)
		case "backup-prior":
			e.Prior, err = m.val.asStringOrNull(w)
		case "backup-reference":
			if m.val.kind != jsonNull {
				e.Reference, err = m.val.asStringList(w)
			}
		case "backup-timestamp-start":
			e.TimestampStart, err = m.val.asInt64(w)
			seen |= fTsStart
		case "backup-timestamp-stop":
			e.TimestampStop, err = m.val.asInt64(w)
			seen |= fTsStop
		case "backup-type":
			e.Type, err = m.val.asString(w)
			seen |= fType
		case "db-id":
			e.DbID, err = m.val.asInt(w)
			seen |= fDbID
		case "option-archive-check":
			e.OptionArchiveCheck, err = m.val.asBool(w)
			seen |= fArchiveCheck
		case "option-archive-copy":
			e.OptionArchiveCopy, err = m.val.asBool(w)
			seen |= fArchiveCopy
		case "option-backup-standby":
			e.OptionBackupStandby, err = m.val.asBool(w)
			seen |= fStandby
		case "option-checksum-page":
			e.OptionChecksumPage, err = m.val.asBool(w)
			seen |= fChecksumPage
		case "option-compress":
			e.OptionCompress, err = m.val.asBool(w)
			seen |= fCompress
		case "option-hardlink":
			e.OptionHardlink, err = m.val.asBool(w)
			seen |= fHardlink
		case "option-online":
			e.OptionOnline, err = m.val.asBool(w)
			seen |= fOnline
		}
		if err != nil {
			return e, err
		}
	}
	if seen != fAll {
		names := []string{"backrest-format", "backrest-version", "backup-info-repo-size",
			"backup-info-repo-size-delta", "backup-info-size", "backup-info-size-delta",
			"backup-timestamp-start", "backup-timestamp-stop", "backup-type", "db-id",
			"option-archive-check", "option-archive-copy", "option-backup-standby",
			"option-checksum-page", "option-compress", "option-hardlink", "option-online"}
		for i, n := range names {
			if seen&(1<<i) == 0 {
				return e, errs.New(errs.Format, "%s: missing key '%s'", where, n)
			}
		}
	}
	if e.RepoSizeMap != nil {
		if mapDelta == nil {
			return e, errs.New(errs.Format, "%s: missing key 'backup-info-repo-size-map-delta'", where)
		}
		e.RepoSizeMapDelta = mapDelta
	}
	return e, nil
}

// appendEntry encodes an entry's JSON object (keys ascending).
func (e *BackupInfoEntry) appendJSON(b []byte) []byte {
	var o jsonObj
	o.begin(b)
	o.u64("backrest-format", uint64(max(e.BackrestFormat, 0)))
	o.str("backrest-version", e.BackrestVersion)
	if e.Annotation != nil {
		o.raw("backup-annotation", appendStringMap(nil, e.Annotation))
	}
	o.strOrNull("backup-archive-start", e.ArchiveStart)
	o.strOrNull("backup-archive-stop", e.ArchiveStop)
	if !e.ErrorMissing {
		o.boolean("backup-error", e.Error)
	}
	o.u64("backup-info-repo-size", e.RepoSize)
	o.u64("backup-info-repo-size-delta", e.RepoSizeDelta)
	if e.RepoSizeMap != nil {
		o.u64("backup-info-repo-size-map", *e.RepoSizeMap)
		var d uint64
		if e.RepoSizeMapDelta != nil {
			d = *e.RepoSizeMapDelta
		}
		o.u64("backup-info-repo-size-map-delta", d)
	}
	o.u64("backup-info-size", e.Size)
	o.u64("backup-info-size-delta", e.SizeDelta)
	if e.LsnStart != "" {
		o.str("backup-lsn-start", e.LsnStart)
	}
	if e.LsnStop != "" {
		o.str("backup-lsn-stop", e.LsnStop)
	}
	if e.Prior != "" {
		o.str("backup-prior", e.Prior)
	}
	if e.Reference != nil {
		o.raw("backup-reference", appendStringList(nil, e.Reference))
	}
	o.i64("backup-timestamp-start", e.TimestampStart)
	o.i64("backup-timestamp-stop", e.TimestampStop)
	o.str("backup-type", e.Type)
	o.u64("db-id", uint64(max(e.DbID, 0)))
	o.boolean("option-archive-check", e.OptionArchiveCheck)
	o.boolean("option-archive-copy", e.OptionArchiveCopy)
	o.boolean("option-backup-standby", e.OptionBackupStandby)
	o.boolean("option-checksum-page", e.OptionChecksumPage)
	o.boolean("option-compress", e.OptionCompress)
	o.boolean("option-hardlink", e.OptionHardlink)
	o.boolean("option-online", e.OptionOnline)
	return o.end()
}

// Bytes returns the canonical file content.
func (b *BackupInfo) Bytes() []byte {
	w := newIniWriter(512 + 900*len(b.Current))
	w.putBackrest(b.BackrestVersion)
	cur := b.Current
	if !slices.IsSortedFunc(cur, func(x, y BackupInfoEntry) int { return strings.Compare(x.Label, y.Label) }) {
		cur = slices.Clone(cur)
		slices.SortStableFunc(cur, func(x, y BackupInfoEntry) int { return strings.Compare(x.Label, y.Label) })
	}
	var buf []byte
	for i := range cur {
		buf = cur[i].appendJSON(buf[:0])
		w.put(sectionBackupCurrent, cur[i].Label, buf)
	}
	w.putCipher(b.CipherPass)
	w.putString(sectionDB, "db-catalog-version", strconv.FormatUint(uint64(b.DB.CatalogVersion), 10))
	w.putString(sectionDB, "db-control-version", strconv.FormatUint(uint64(b.DB.ControlVersion), 10))
	w.putString(sectionDB, "db-id", strconv.Itoa(b.DB.ID))
	w.putString(sectionDB, "db-system-id", strconv.FormatUint(b.DB.SystemID, 10))
	w.put(sectionDB, "db-version", jsonw.AppendString(nil, b.DB.Version))
	hist := slices.Clone(b.History)
	slices.SortStableFunc(hist, func(x, y BackupHistory) int { return x.ID - y.ID })
	for _, h := range hist {
		var o jsonObj
		o.begin(nil)
		o.u64("db-catalog-version", uint64(h.CatalogVersion))
		o.u64("db-control-version", uint64(h.ControlVersion))
		o.u64("db-system-id", h.SystemID)
		o.str("db-version", h.Version)
		w.put(sectionDBHistory, strconv.Itoa(h.ID), o.end())
	}
	return w.finish()
}

// NewBackupInfoEntry computes the [backup:current] entry of a completed
// backup from its manifest (§2.8): size sums (repo size 0 counts as size),
// delta sums over files without a reference, backup-error when any file has
// page checksum errors, and for diff/incr the sorted reference list without
// the backup's own label plus the prior label.
func NewBackupInfoEntry(m *Manifest) BackupInfoEntry {
	e := BackupInfoEntry{
		Label:               m.Backup.Label,
		BackrestFormat:      RepoFormat,
		BackrestVersion:     m.BackrestVersion,
		ArchiveStart:        m.Backup.ArchiveStart,
		ArchiveStop:         m.Backup.ArchiveStop,
		LsnStart:            m.Backup.LsnStart,
		LsnStop:             m.Backup.LsnStop,
		TimestampStart:      m.Backup.TimestampStart,
		TimestampStop:       m.Backup.TimestampStop,
		Type:                m.Backup.Type,
		DbID:                m.DB.ID,
		OptionArchiveCheck:  m.Option.ArchiveCheck,
		OptionArchiveCopy:   m.Option.ArchiveCopy,
		OptionBackupStandby: m.Option.BackupStandby,
		OptionChecksumPage:  m.Option.ChecksumPage,
		OptionCompress:      m.Option.Compress(),
		OptionHardlink:      m.Option.Hardlink,
		OptionOnline:        m.Option.Online,
	}
	if e.BackrestVersion == "" {
		e.BackrestVersion = BackrestVersion
	}
	if m.Annotation != nil {
		e.Annotation = make(map[string]string, len(m.Annotation))
		for k, v := range m.Annotation {
			e.Annotation[k] = v
		}
	}
	var mapSize, mapDelta uint64
	for i := range m.Files {
		f := &m.Files[i]
		repo := f.RepoSize
		if repo == 0 {
			repo = f.Size
		}
		e.Size += f.Size
		e.RepoSize += repo
		mapSize += f.BlockIncrMap
		if f.Reference == "" {
			e.SizeDelta += f.Size
			e.RepoSizeDelta += repo
			mapDelta += f.BlockIncrMap
		}
		if f.ChecksumPage != nil && !*f.ChecksumPage {
			e.Error = true
		}
	}
	if m.Backup.BlockIncr {
		e.RepoSizeMap, e.RepoSizeMapDelta = &mapSize, &mapDelta
	}
	if m.Backup.Type != BackupTypeFull {
		ref := slices.Clone(m.Backup.Reference)
		slices.Sort(ref)
		ref = slices.DeleteFunc(ref, func(l string) bool { return l == m.Backup.Label })
		if ref == nil {
			ref = []string{}
		}
		e.Reference = ref
		e.Prior = m.Backup.Prior
	}
	return e
}
