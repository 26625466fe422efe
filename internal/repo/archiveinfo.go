package repo

import (
	"slices"
	"strconv"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/jsonw"
)

// ArchiveHistory is one [db:history] entry of archive.info.
type ArchiveHistory struct {
	ID       int
	SystemID uint64
	Version  string
}

// ArchiveID returns "<version>-<id>", e.g. "15-1".
func (h ArchiveHistory) ArchiveID() string { return h.Version + "-" + strconv.Itoa(h.ID) }

// ArchiveInfo is archive/<stanza>/archive.info (format spec §2.7).
type ArchiveInfo struct {
	BackrestVersion string // "" on a new file means BackrestVersion
	CipherPass      string // archive sub-passphrase; "" = not encrypted
	DB              ArchiveHistory
	History         []ArchiveHistory // ascending by ID (oldest first)
}

// ArchiveID returns the archive id of the current cluster ("15-1").
func (a *ArchiveInfo) ArchiveID() string { return a.DB.ArchiveID() }

// ArchiveIDs returns the archive ids of every history entry with the given
// system id and version, newest (highest id) first — the search order of
// archive-get.
func (a *ArchiveInfo) ArchiveIDs(systemID uint64, version string) []string {
	var ids []string
	for i := len(a.History) - 1; i >= 0; i-- {
		if h := a.History[i]; h.SystemID == systemID && h.Version == version {
			ids = append(ids, h.ArchiveID())
		}
	}
	return ids
}

// ParseArchiveInfo parses and verifies archive.info.
func ParseArchiveInfo(data []byte) (*ArchiveInfo, error) {
	ini, err := ParseIni(data)
	if err != nil {
		return nil, err
	}
	return archiveInfoFromIni(ini)
}

func archiveInfoFromIni(ini *Ini) (*ArchiveInfo, error) {
	h, err := readHeader(ini)
	if err != nil {
		return nil, err
	}
	a := &ArchiveInfo{BackrestVersion: h.version, CipherPass: h.cipherPass}
	current, hist, err := readPgHistory(ini, false)
	if err != nil {
		return nil, err
	}
	for _, p := range hist {
		a.History = append(a.History, ArchiveHistory{ID: p.ID, SystemID: p.SystemID, Version: p.Version})
		if p.ID == current {
			a.DB = a.History[len(a.History)-1]
		}
	}
	return a, nil
}

// Bytes returns the canonical file content.
func (a *ArchiveInfo) Bytes() []byte {
	w := newIniWriter(256 + 64*len(a.History))
	w.putBackrest(a.BackrestVersion)
	w.putCipher(a.CipherPass)
	w.putString(sectionDB, "db-id", strconv.Itoa(a.DB.ID))
	w.putString(sectionDB, "db-system-id", strconv.FormatUint(a.DB.SystemID, 10))
	w.put(sectionDB, "db-version", jsonw.AppendString(nil, a.DB.Version))
	hist := slices.Clone(a.History)
	slices.SortStableFunc(hist, func(x, y ArchiveHistory) int { return x.ID - y.ID })
	for _, h := range hist {
		var o jsonObj
		o.begin(nil)
		o.u64("db-id", h.SystemID) // historic typo: the system id is stored as db-id
		o.str("db-version", h.Version)
		w.put(sectionDBHistory, strconv.Itoa(h.ID), o.end())
	}
	return w.finish()
}

// pgHistory is a [db:history] entry of either info file.
type pgHistory struct {
	ID             int
	CatalogVersion uint32
	ControlVersion uint32
	SystemID       uint64
	Version        string
}

// readPgHistory reads [db] db-id and [db:history]. backup selects the
// backup.info layout (catalog/control versions, system id under
// db-system-id). History is returned ascending by id.
func readPgHistory(ini *Ini, backup bool) (int, []pgHistory, error) {
	current := 0
	var hist []pgHistory
	for _, v := range ini.Values {
		switch v.Section {
		case sectionDB:
			if v.Key != "db-id" {
				continue
			}
			jv, err := parseJSON(v.Value)
			if err != nil {
				return 0, nil, err
			}
			if current, err = jv.asInt("[db] db-id"); err != nil {
				return 0, nil, err
			}
		case sectionDBHistory:
			id, err := strconv.ParseUint(v.Key, 10, 31)
			if err != nil {
				return 0, nil, errs.New(errs.Format, "invalid history id '%s' in [db:history]", shortLine(v.Key))
			}
			where := "[db:history] " + v.Key
			obj, err := parseObject(v.Value, where)
			if err != nil {
				return 0, nil, err
			}
			p := pgHistory{ID: int(id)}
			var haveSys, haveVer, haveCat, haveCtl bool
			sysKey := "db-id"
			if backup {
				sysKey = "db-system-id"
			}
			for i := range obj.obj {
				m := &obj.obj[i]
				switch m.key {
				case sysKey:
					p.SystemID, err = m.val.asUint64(where + " " + m.key)
					haveSys = true
				case "db-version":
					p.Version, err = m.val.asString(where + " " + m.key)
					haveVer = true
				case "db-catalog-version":
					if backup {
						p.CatalogVersion, err = m.val.asUint32(where + " " + m.key)
						haveCat = true
					}
				case "db-control-version":
					if backup {
						p.ControlVersion, err = m.val.asUint32(where + " " + m.key)
						haveCtl = true
					}
				}
				if err != nil {
					return 0, nil, err
				}
			}
			switch {
			case backup && !haveCat:
				return 0, nil, errs.New(errs.Format, "%s: missing key 'db-catalog-version'", where)
			case backup && !haveCtl:
				return 0, nil, errs.New(errs.Format, "%s: missing key 'db-control-version'", where)
			case !haveSys:
				return 0, nil, errs.New(errs.Format, "%s: missing key '%s'", where, sysKey)
			case !haveVer:
				return 0, nil, errs.New(errs.Format, "%s: missing key 'db-version'", where)
			}
			hist = append(hist, p)
		}
	}
	if len(hist) == 0 {
		return 0, nil, errs.New(errs.Format, "history is missing")
	}
	if current <= 0 {
		return 0, nil, errs.New(errs.Format, "current id is missing")
	}
	slices.SortStableFunc(hist, func(x, y pgHistory) int { return x.ID - y.ID })
	for i := 1; i < len(hist); i++ {
		if hist[i].ID == hist[i-1].ID {
			return 0, nil, errs.New(errs.Format, "duplicate history id %d", hist[i].ID)
		}
	}
	found := false
	for _, p := range hist {
		if p.ID == current {
			found = true
		}
	}
	if !found {
		return 0, nil, errs.New(errs.Format, "unable to find current id in history")
	}
	return current, hist, nil
}
