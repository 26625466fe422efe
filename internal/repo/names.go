package repo

import (
	"strconv"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// Manifest names are joined onto PGDATA and the tablespace directories by
// restore, so a manifest whose names could leave those directories is
// refused before anything reads or writes them. The rules:
//
//   - every name is a relative, slash-separated path whose components are
//     not empty, ".", or ".." and contain no NUL (nor a newline, which an
//     info file cannot hold);
//   - the targets are "pg_data", "pg_tblspc/<oid>" (a tablespace, whose oid
//     is its tablespace-id) and "pg_data/<path>" (another link); a file
//     link's file is one component;
//   - files are "pg_data/<path>" or "pg_tblspc/<oid>/PG_<ver>_<catalog>/<path>"
//     of a tablespace target; nothing is stored under a tablespace link
//     inside PGDATA (pg_data/pg_tblspc/...);
//   - paths are those of files plus "pg_data", "pg_tblspc", "pg_data/pg_tblspc",
//     "pg_tblspc/<oid>" and "pg_tblspc/<oid>/PG_<ver>_<catalog>";
//   - links are "pg_data/pg_tblspc/<oid>" of a tablespace target or
//     "pg_data/<path>" of a link target with the same name.
//
// Where links point and where tablespaces go depend on the restore options
// (remapping), so restore checks those destinations itself.

// CheckNames refuses a manifest with a name that does not follow the rules
// above ([029] FormatError).
func (m *Manifest) CheckNames() error {
	tsDir := m.tablespaceDir()
	tablespaces := map[string]bool{}
	links := map[string]bool{}
	for i := range m.Targets {
		t := &m.Targets[i]
		if err := checkTarget(t); err != nil {
			return err
		}
		if t.TablespaceID != "" {
			tablespaces[t.TablespaceID] = true
		} else if t.Name != TargetPgData {
			links[t.Name] = true
		}
	}
	for i := range m.Files {
		if err := checkEntry("target:file", m.Files[i].Name, tsDir, tablespaces, false); err != nil {
			return err
		}
	}
	for i := range m.Paths {
		if err := checkEntry("target:path", m.Paths[i].Name, tsDir, tablespaces, true); err != nil {
			return err
		}
	}
	for i := range m.Links {
		l := &m.Links[i]
		if err := checkLink(l, tablespaces, links); err != nil {
			return err
		}
	}
	return nil
}

// tablespaceDir is the version directory of m's tablespaces,
// PG_<version>_<catalog> ("" when the version is not known).
func (m *Manifest) tablespaceDir() string {
	if m.DB.Version == "" {
		return ""
	}
	return "PG_" + m.DB.Version + "_" + strconv.FormatUint(uint64(m.DB.CatalogVersion), 10)
}

func nameErr(section, name, why string) error {
	shown := "'" + shortLine(name) + "'"
	if strings.ContainsAny(shown, "\x00\n\r") {
		shown = strconv.Quote(shortLine(name))
	}
	return errs.New(errs.Format, "invalid name %s in manifest section [%s]: %s\n"+
		"HINT: the manifest may have been tampered with; restore refuses names that could leave PGDATA or a tablespace.",
		shown, section, why)
}

// checkRel checks a relative slash-separated path; it returns why it is
// invalid, or "".
func checkRel(p string) string {
	if p == "" {
		return "empty name"
	}
	if p[0] == '/' {
		return "absolute name"
	}
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) {
			switch p[i] {
			case 0:
				return "name contains a NUL byte"
			case '\n', '\r':
				return "name contains a line break"
			case '/':
			default:
				continue
			}
		}
		switch p[start:i] {
		case "":
			return "empty path component"
		case ".":
			return "'.' path component"
		case "..":
			return "'..' path component"
		}
		start = i + 1
	}
	return ""
}

// isOID reports whether s is a tablespace oid as PostgreSQL names the
// directory: decimal digits, no sign, no leading zero, within uint32.
func isOID(s string) bool {
	if s == "" || s[0] == '0' || len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

func checkTarget(t *ManifestTarget) error {
	const sec = "backup:target"
	if why := checkRel(t.Name); why != "" {
		return nameErr(sec, t.Name, why)
	}
	if strings.ContainsRune(t.Path, 0) {
		return nameErr(sec, t.Name, "invalid path '"+shortLine(t.Path)+"'")
	}
	switch {
	case t.Name == TargetPgData:
		if t.TablespaceID != "" || t.File != "" {
			return nameErr(sec, t.Name, "the data directory cannot be a tablespace or a file")
		}
	case strings.HasPrefix(t.Name, TargetPgTblspc+"/"):
		oid := t.Name[len(TargetPgTblspc)+1:]
		if !isOID(oid) {
			return nameErr(sec, t.Name, "a tablespace target must be 'pg_tblspc/<oid>'")
		}
		if t.TablespaceID != oid {
			return nameErr(sec, t.Name, "tablespace-id '"+shortLine(t.TablespaceID)+"' does not match the name")
		}
		if t.Type != TargetTypeLink || t.File != "" {
			return nameErr(sec, t.Name, "a tablespace target must be a directory link")
		}
	case strings.HasPrefix(t.Name, TargetPgData+"/"):
		rel := t.Name[len(TargetPgData)+1:]
		if rel == TargetPgTblspc || strings.HasPrefix(rel, TargetPgTblspc+"/") {
			return nameErr(sec, t.Name, "tablespaces are targets named 'pg_tblspc/<oid>'")
		}
		if t.TablespaceID != "" || t.Type != TargetTypeLink {
			return nameErr(sec, t.Name, "a target inside PGDATA must be a link")
		}
		if t.File != "" {
			if why := checkRel(t.File); why != "" || strings.ContainsRune(t.File, '/') {
				return nameErr(sec, t.Name, "invalid link file '"+shortLine(t.File)+"'")
			}
		}
	default:
		return nameErr(sec, t.Name, "a target must be 'pg_data', 'pg_tblspc/<oid>' or 'pg_data/<path>'")
	}
	return nil
}

// checkEntry checks a file (isPath false) or path name.
func checkEntry(section, name, tsDir string, tablespaces map[string]bool, isPath bool) error {
	if why := checkRel(name); why != "" {
		return nameErr(section, name, why)
	}
	if name == TargetPgData || name == TargetPgTblspc {
		if isPath {
			return nil
		}
		return nameErr(section, name, "a file cannot replace a restore directory")
	}
	if rel, ok := strings.CutPrefix(name, TargetPgData+"/"); ok {
		if rel == TargetPgTblspc {
			if isPath {
				return nil
			}
			return nameErr(section, name, "a file cannot replace the tablespace directory")
		}
		if strings.HasPrefix(rel, TargetPgTblspc+"/") {
			return nameErr(section, name, "nothing is stored under a tablespace link")
		}
		return nil
	}
	if rest, ok := strings.CutPrefix(name, TargetPgTblspc+"/"); ok {
		oid, sub, _ := strings.Cut(rest, "/")
		if !tablespaces[oid] {
			return nameErr(section, name, "no tablespace target 'pg_tblspc/"+shortLine(oid)+"'")
		}
		if sub == "" {
			if isPath {
				return nil
			}
			return nameErr(section, name, "a file cannot replace a tablespace directory")
		}
		dir, _, more := strings.Cut(sub, "/")
		if dir != tsDir || tsDir == "" {
			return nameErr(section, name, "tablespace contents must be in '"+tsDir+"'")
		}
		if !more && !isPath {
			return nameErr(section, name, "a file cannot replace a tablespace directory")
		}
		return nil
	}
	return nameErr(section, name, "a name must start with 'pg_data/' or 'pg_tblspc/<oid>/'")
}

func checkLink(l *ManifestLink, tablespaces, links map[string]bool) error {
	const sec = "target:link"
	if why := checkRel(l.Name); why != "" {
		return nameErr(sec, l.Name, why)
	}
	if strings.ContainsRune(l.Destination, 0) {
		return nameErr(sec, l.Name, "destination contains a NUL byte")
	}
	rel, ok := strings.CutPrefix(l.Name, TargetPgData+"/")
	if !ok {
		return nameErr(sec, l.Name, "a link must be inside PGDATA ('pg_data/<path>')")
	}
	if oid, ok := strings.CutPrefix(rel, TargetPgTblspc+"/"); ok {
		if !isOID(oid) {
			return nameErr(sec, l.Name, "a tablespace link must be 'pg_data/pg_tblspc/<oid>'")
		}
		if !tablespaces[oid] {
			return nameErr(sec, l.Name, "no tablespace target 'pg_tblspc/"+oid+"'")
		}
		return nil
	}
	if rel == TargetPgTblspc {
		return nameErr(sec, l.Name, "the tablespace directory cannot be a link")
	}
	if !links[l.Name] {
		return nameErr(sec, l.Name, "no link target with this name in [backup:target]")
	}
	return nil
}

// SplitName splits a file or path name of a manifest that passed
// CheckNames into its target ("pg_data" or "pg_tblspc/<oid>") and the
// slash-separated path inside that target's directory ("." for the
// directory itself). ok is false for names that have no place on disk
// (the "pg_tblspc" placeholder path) or do not start with a target.
func SplitName(name string) (target, rel string, ok bool) {
	if name == TargetPgData {
		return TargetPgData, ".", true
	}
	if rest, found := strings.CutPrefix(name, TargetPgData+"/"); found && rest != "" {
		return TargetPgData, rest, true
	}
	if rest, found := strings.CutPrefix(name, TargetPgTblspc+"/"); found {
		oid, sub, _ := strings.Cut(rest, "/")
		if oid == "" {
			return "", "", false
		}
		if sub == "" {
			sub = "."
		}
		return TargetPgTblspc + "/" + oid, sub, true
	}
	return "", "", false
}
