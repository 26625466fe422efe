package command

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/jsonw"
	"github.com/pgbr-dev/pgbr/internal/lazyre"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// The info command, with pgBackRest 2.45's output (format spec §8.9): the
// same text and the same JSON (compact, keys ascending, no trailing
// newline), built the same way: per stanza and repo the info files are
// loaded and every failure becomes a status, never a command error.

// Stanza and repo status codes.
const (
	infoOK                = 0
	infoMissingStanzaPath = 1
	infoNoBackup          = 2
	infoMissingStanzaData = 3
	infoMixed             = 4
	infoPgMismatch        = 5
	infoBackupMissing     = 6
	infoOther             = 99
)

var infoStatusMessage = map[int]string{
	infoOK:                "ok",
	infoMissingStanzaPath: "missing stanza path",
	infoNoBackup:          "no valid backups",
	infoMissingStanzaData: "missing stanza data",
	infoMixed:             "different across repos",
	infoPgMismatch:        "database mismatch across repos",
	infoBackupMissing:     "requested backup not found",
	infoOther:             "other",
}

// The repository listings info reads (pgBackRest's WAL_SEGMENT_DIR_REGEXP
// and WAL_SEGMENT_FILE_REGEXP; [0-F] is the ASCII range as in pgBackRest).
var (
	infoWalDirRegexp  = lazyre.New(`^[0-F]{16}$`)
	infoWalFileRegexp = lazyre.New(`^[0-F]{24}-[0-f]{40}(\.gz|\.lz4|\.zst|\.xz|\.bz2)?$`)
)

// infoRepo is what info learned about one stanza on one repository.
type infoRepo struct {
	key        int
	cipher     string
	cipherPass string
	r          *repoT
	status     int
	err        string // "[ErrorType] message" for status 99
	bi         *repo.BackupInfo
	ai         *repo.ArchiveInfo
	manifest   *repo.Manifest
	next       int // next backup of bi.Current to merge
}

// setError records a failure: status 99 and nothing loaded.
func (ir *infoRepo) setError(err error) {
	ir.status = infoOther
	ir.err = "[" + errs.CodeOf(err).Name() + "] " + err.Error()
	ir.bi, ir.ai, ir.manifest = nil, nil, nil
}

// infoStanza is one stanza over all repositories.
type infoStanza struct {
	name        string
	curVersion  string // current PostgreSQL of the first repo with backup.info
	curSystemID uint64
	lockChecked bool
	lockHeld    bool
	pctCplt     *uint64 // backup progress in hundredths of a percent
	repos       []*infoRepo
}

// The rendered model. Its fields mirror pgBackRest's JSON; appendJSON
// writes the keys in ascending order.

type infoArchiveOut struct {
	dbID     int
	repoKey  int
	id       string
	min, max string // "" = null
}

type infoDBRef struct {
	name string
	oid  uint64
}

type infoLinkOut struct{ name, destination string }

type infoTablespaceOut struct {
	name, destination string
	oid               uint64
}

type infoBackupOut struct {
	annotation     map[string]string // nil = absent
	archiveStart   string            // "" = null
	archiveStop    string
	backrestFormat int
	backrestVer    string
	dbID           int
	repoKey        int
	set            bool // --set detail (database-ref, link, tablespace) present
	databaseRef    []infoDBRef
	errorKnown     bool // backup-error was in backup.info
	errorVal       bool
	errorList      []string // nil = absent
	size, delta    uint64
	repoSize       *uint64 // nil for block incremental backups
	repoDelta      uint64
	repoSizeMap    *uint64
	repoDeltaMap   *uint64
	label          string
	links          []infoLinkOut
	lsnStart       string // both set or neither shown
	lsnStop        string
	prior          string // "" = null
	reference      []string
	referenceSet   bool // false = null
	tablespaces    []infoTablespaceOut
	tsStart        int64
	tsStop         int64
	typ            string
}

type infoDBOut struct {
	id       int
	repoKey  int
	systemID uint64
	version  string
}

type infoRepoOut struct {
	key    int
	cipher string
	code   int
	msg    string
}

type infoStanzaOut struct {
	archive  []infoArchiveOut
	backup   []infoBackupOut
	cipher   string
	db       []infoDBOut
	name     string
	repo     []infoRepoOut
	code     int
	lockHeld bool
	pctCplt  *uint64 // text output only
	// current PostgreSQL of the stanza (for the text "db (current)").
	curVersion  string
	curSystemID uint64
}

func info(e *Env) error {
	out, err := infoRender(e)
	if err != nil {
		return err
	}
	if _, err := e.Stdout.Write([]byte(out)); err != nil {
		return errs.Wrap(errs.FileWrite, err, "unable to write to stdout")
	}
	return nil
}

// infoRender builds the whole output.
func infoRender(e *Env) (string, error) {
	stanza := e.Cfg.String(config.Stanza)
	label := e.Cfg.String(config.Set)
	jsonOut := e.Cfg.String(config.Output) == "json"
	repos, err := e.repos()
	if err != nil {
		return "", err
	}

	var stanzas []*infoStanza
	find := func(name string) *infoStanza {
		for _, s := range stanzas {
			if s.name == name {
				return s
			}
		}
		return nil
	}
	newRepos := func() []*infoRepo {
		list := make([]*infoRepo, len(repos))
		for i, r := range repos {
			list[i] = &infoRepo{key: r.Key, cipher: r.CipherType, cipherPass: r.CipherPass, r: r}
		}
		return list
	}
	repoErrors := newRepos()
	repoError := false
	backupFound := false

	for i, r := range repos {
		err := func() error {
			labelOnRepo := ""
			if label != "" {
				ok, err := r.St.Exists(e.Ctx, repo.BackupManifestPath(stanza, label))
				if err != nil {
					return errs.Wrap(errs.FileOpen, err, "unable to check '%s'", r.St.Full(repo.BackupManifestPath(stanza, label)))
				}
				if ok {
					backupFound = true
					labelOnRepo = label
				}
			}
			list, err := r.St.List(e.Ctx, "backup")
			if err != nil {
				if errs.CodeOf(err) == errs.Unknown {
					err = errs.Wrap(errs.PathOpen, err, "unable to list '%s'", r.St.Full("backup"))
				}
				return err
			}
			var names []string
			for _, f := range list {
				names = append(names, f.Name)
			}
			slices.Sort(names)
			exists := true
			if stanza != "" {
				exists = slices.Contains(names, stanza)
				names = []string{stanza}
			}
			for _, name := range names {
				s := find(name)
				if s == nil {
					s = &infoStanza{name: name, repos: newRepos()}
					stanzas = append(stanzas, s)
				}
				infoUpdateStanza(e, s, i, exists, labelOnRepo)
			}
			return nil
		}()
		if err != nil {
			repoErrors[i].setError(err)
			repoError = true
		}
	}

	// Repository-level errors are reported with every stanza, or with a
	// stanza named "[invalid]" when no stanza was found.
	if repoError {
		if len(stanzas) == 0 {
			name := stanza
			if name == "" {
				name = "[invalid]"
			}
			stanzas = append(stanzas, &infoStanza{name: name, repos: repoErrors})
		} else {
			for _, s := range stanzas {
				for i := range repos {
					if repoErrors[i].status == infoOther {
						s.repos[i] = repoErrors[i]
					}
				}
			}
		}
	}

	// A requested backup found on no repo: one status for the stanza.
	if label != "" && !backupFound {
		if s := find(stanza); s != nil {
			for _, ir := range s.repos {
				if ir.status == infoOK {
					ir.status = infoBackupMissing
					ir.bi = nil
				}
			}
		}
	}

	slices.SortFunc(stanzas, func(a, b *infoStanza) int { return strings.Compare(a.name, b.name) })
	outs := make([]infoStanzaOut, 0, len(stanzas))
	for _, s := range stanzas {
		outs = append(outs, infoStanzaList(e, s, label, jsonOut))
	}
	if jsonOut {
		return string(infoJSON(outs)), nil
	}
	return infoText(outs, label), nil
}

// infoUpdateStanza loads backup.info, archive.info and (for --set) the
// manifest of one stanza on one repo. Failures become the repo's status.
func infoUpdateStanza(e *Env, s *infoStanza, idx int, exists bool, label string) {
	ir := s.repos[idx]
	if !exists {
		ir.status = infoMissingStanzaPath
	} else {
		err := func() error {
			status := infoOK
			bi, err := repo.LoadBackupInfo(e.Ctx, ir.r.St, s.name, ir.cipherPass)
			switch {
			case errs.Is(err, errs.FileMissing):
				status = infoMissingStanzaData
			case errs.Is(err, errs.Crypto):
				return errs.New(errs.Crypto, "%s\nHINT: use option --stanza if encryption settings are different for the stanza than the global settings.", err.Error())
			case err != nil:
				return err
			}
			ir.bi = bi
			if bi != nil {
				if ir.ai, err = repo.LoadArchiveInfo(e.Ctx, ir.r.St, s.name, ir.cipherPass); err != nil {
					return err
				}
				if label != "" {
					if ir.manifest, err = repo.LoadManifest(e.Ctx, ir.r.St, s.name, label, bi.CipherPass); err != nil {
						return err
					}
				}
				if !s.lockChecked {
					s.lockHeld, s.pctCplt = infoBackupLock(e.Cfg.String(config.LockPath), s.name)
					s.lockChecked = true
				}
			}
			ir.status = status
			return nil
		}()
		if err != nil {
			ir.setError(err)
		}
	}
	if s.curVersion == "" && ir.bi != nil {
		s.curVersion, s.curSystemID = ir.bi.DB.Version, ir.bi.DB.SystemID
	}
}

// infoArchiveID finds the archive id of a backup.info history entry: the
// archive.info entry with the same id, version and system id, else the
// newest with the same version and system id.
func infoArchiveID(a *repo.ArchiveInfo, h repo.BackupHistory) (string, error) {
	for i := len(a.History) - 1; i >= 0; i-- {
		if x := a.History[i]; x.ID == h.ID && x.SystemID == h.SystemID && x.Version == h.Version {
			return x.ArchiveID(), nil
		}
	}
	for i := len(a.History) - 1; i >= 0; i-- {
		if x := a.History[i]; x.SystemID == h.SystemID && x.Version == h.Version {
			return x.ArchiveID(), nil
		}
	}
	return "", errs.New(errs.ArchiveMismatch, "unable to retrieve the archive id for database version '%s' and system-id '%d'", h.Version, h.SystemID)
}

// infoWalRange returns the first and last stored WAL segment of an archive
// id ("" when none).
func infoWalRange(e *Env, ir *infoRepo, stanza, archiveID string) (string, string, error) {
	base := repo.ArchiveDir(stanza, archiveID)
	list, err := ir.r.St.List(e.Ctx, base)
	if err != nil {
		return "", "", errs.Wrap(errs.PathOpen, err, "unable to list '%s'", ir.r.St.Full(base))
	}
	var dirs []string
	for _, f := range list {
		if infoWalDirRegexp.MatchString(f.Name) {
			dirs = append(dirs, f.Name)
		}
	}
	slices.Sort(dirs)
	segments := func(dir string) ([]string, error) {
		list, err := ir.r.St.List(e.Ctx, base+"/"+dir)
		if err != nil {
			return nil, errs.Wrap(errs.PathOpen, err, "unable to list '%s'", ir.r.St.Full(base+"/"+dir))
		}
		var out []string
		for _, f := range list {
			if infoWalFileRegexp.MatchString(f.Name) {
				out = append(out, f.Name)
			}
		}
		slices.Sort(out)
		return out, nil
	}
	var first, last string
	for _, d := range dirs {
		segs, err := segments(d)
		if err != nil {
			return "", "", err
		}
		if len(segs) > 0 {
			first = segs[0][:24]
			break
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		segs, err := segments(dirs[i])
		if err != nil {
			return "", "", err
		}
		if len(segs) > 0 {
			last = segs[len(segs)-1][:24]
			break
		}
	}
	return first, last, nil
}

// infoStanzaList builds the output model of one stanza.
func infoStanzaList(e *Env, s *infoStanza, label string, jsonOut bool) infoStanzaOut {
	out := infoStanzaOut{name: s.name, archive: []infoArchiveOut{}, backup: []infoBackupOut{}, db: []infoDBOut{},
		lockHeld: s.lockHeld, curVersion: s.curVersion, curSystemID: s.curSystemID}
	if !jsonOut {
		out.pctCplt = s.pctCplt
	}
	code := -1
	cipher := ""
	for i, ir := range s.repos {
		if ir.status == infoOK && ir.bi == nil {
			ir.status = infoMissingStanzaPath
		}
		if ir.bi != nil {
			err := func() error {
				// History oldest first, each with its archive range.
				for hi, h := range ir.bi.History {
					out.db = append(out.db, infoDBOut{id: h.ID, repoKey: ir.key, systemID: h.SystemID, version: h.Version})
					archiveID, err := infoArchiveID(ir.ai, h)
					if err != nil {
						return err
					}
					min, max, err := infoWalRange(e, ir, s.name, archiveID)
					if err != nil {
						return err
					}
					if hi == len(ir.bi.History)-1 || min != "" {
						out.archive = append(out.archive, infoArchiveOut{dbID: h.ID, repoKey: ir.key, id: archiveID, min: min, max: max})
					}
				}
				if s.curVersion != ir.bi.DB.Version || s.curSystemID != ir.bi.DB.SystemID {
					code = infoPgMismatch
				}
				return nil
			}()
			if err != nil {
				ir.setError(err)
			}
		}
		if ir.status == infoOK && len(ir.bi.Current) == 0 {
			ir.status = infoNoBackup
		}
		if code != infoPgMismatch {
			if i == 0 {
				code = ir.status
			} else if code != ir.status {
				code = infoMixed
			}
		}
		if i == 0 {
			cipher = ir.cipher
		} else if cipher != ir.cipher {
			cipher = "mixed"
		}
		ro := infoRepoOut{key: ir.key, cipher: ir.cipher, code: ir.status, msg: infoStatusMessage[ir.status]}
		if ir.status == infoOther {
			ro.msg = ir.err
		}
		out.repo = append(out.repo, ro)
	}
	out.code = code
	out.cipher = cipher
	out.backup = infoBackupList(e, s, label, jsonOut)
	return out
}

// infoBackupList merges the backups of every repo, oldest (by stop time)
// first; ties go to the lower repo.
func infoBackupList(e *Env, s *infoStanza, label string, jsonOut bool) []infoBackupOut {
	out := []infoBackupOut{}
	typ := ""
	if e.Cfg.IsSet(config.Type) {
		typ = e.Cfg.String(config.Type)
	}
	for {
		var next *infoRepo
		var nextStop int64
		for _, ir := range s.repos {
			if ir.bi == nil || ir.next >= len(ir.bi.Current) {
				continue
			}
			if b := &ir.bi.Current[ir.next]; next == nil || b.TimestampStop < nextStop {
				next, nextStop = ir, b.TimestampStop
			}
		}
		if next == nil {
			return out
		}
		b := &next.bi.Current[next.next]
		next.next++
		if label != "" && b.Label != label {
			continue
		}
		if typ == "" || typ == b.Type {
			out = append(out, infoBackup(b, next, label, jsonOut))
		}
	}
}

// infoBackup builds one backup's output.
func infoBackup(b *repo.BackupInfoEntry, ir *infoRepo, label string, jsonOut bool) infoBackupOut {
	o := infoBackupOut{
		archiveStart: b.ArchiveStart, archiveStop: b.ArchiveStop,
		backrestFormat: b.BackrestFormat, backrestVer: b.BackrestVersion,
		dbID: b.DbID, repoKey: ir.key,
		errorKnown: !b.ErrorMissing, errorVal: b.Error,
		size: b.Size, delta: b.SizeDelta, repoDelta: b.RepoSizeDelta,
		label: b.Label, prior: b.Prior,
		reference: b.Reference, referenceSet: b.Reference != nil,
		tsStart: b.TimestampStart, tsStop: b.TimestampStop, typ: b.Type,
	}
	if b.RepoSizeMap == nil {
		rs := b.RepoSize
		o.repoSize = &rs
	} else if jsonOut {
		o.repoSizeMap, o.repoDeltaMap = b.RepoSizeMap, b.RepoSizeMapDelta
		if o.repoDeltaMap == nil {
			var zero uint64
			o.repoDeltaMap = &zero
		}
	}
	if (jsonOut || label != "") && b.LsnStart != "" && b.LsnStop != "" {
		o.lsnStart, o.lsnStop = b.LsnStart, b.LsnStop
	}
	if (jsonOut || label != "") && b.Annotation != nil {
		o.annotation = b.Annotation
	}
	if label != "" {
		o.set = true
		o.databaseRef = []infoDBRef{}
		if m := ir.manifest; m != nil {
			for _, d := range m.Databases {
				if d.Name != "template0" && d.Name != "template1" {
					o.databaseRef = append(o.databaseRef, infoDBRef{name: d.Name, oid: uint64(d.OID)})
				}
			}
			for _, t := range m.Targets {
				if t.Type != repo.TargetTypeLink {
					continue
				}
				switch {
				case t.TablespaceName != "":
					oid, _ := strconv.ParseUint(t.TablespaceID, 10, 64)
					o.tablespaces = append(o.tablespaces, infoTablespaceOut{name: t.TablespaceName, destination: t.Path, oid: oid})
				case t.File != "":
					o.links = append(o.links, infoLinkOut{name: t.File, destination: t.Path + "/" + t.File})
				default:
					o.links = append(o.links, infoLinkOut{name: infoPathPg(t.Name), destination: t.Path})
				}
			}
			for i := range m.Files {
				if f := &m.Files[i]; f.ChecksumPage != nil && !*f.ChecksumPage {
					o.errorList = append(o.errorList, infoPathPg(f.Name))
				}
			}
			if len(o.errorList) > 0 {
				o.errorKnown, o.errorVal = true, true
			}
		}
	}
	return o
}

// infoPathPg strips the pg_data/ prefix of a manifest name.
func infoPathPg(name string) string {
	if rest, ok := strings.CutPrefix(name, repo.TargetPgData+"/"); ok {
		return rest
	}
	return name
}

// --- JSON -------------------------------------------------------------------

// infoJSONDBRef writes a {"id":...,"repo-key":...} object.
func infoJSONDBRef(w *jsonw.Writer, id, repoKey int) {
	w.Obj()
	w.Key("id").Int(int64(id))
	w.Key("repo-key").Int(int64(repoKey))
	w.EndObj()
}

func infoJSON(stanzas []infoStanzaOut) []byte {
	w := &jsonw.Writer{}
	w.Arr()
	for i := range stanzas {
		s := &stanzas[i]
		w.Obj()
		w.Key("archive").Arr()
		for _, a := range s.archive {
			w.Obj()
			infoJSONDBRef(w.Key("database"), a.dbID, a.repoKey)
			w.Key("id").Str(a.id)
			w.Key("max").StrOrNull(a.max)
			w.Key("min").StrOrNull(a.min)
			w.EndObj()
		}
		w.EndArr()
		w.Key("backup").Arr()
		for j := range s.backup {
			infoBackupJSON(w, &s.backup[j])
		}
		w.EndArr()
		w.Key("cipher").Str(s.cipher)
		w.Key("db").Arr()
		for _, d := range s.db {
			w.Obj()
			w.Key("id").Int(int64(d.id))
			w.Key("repo-key").Int(int64(d.repoKey))
			w.Key("system-id").Uint(d.systemID)
			w.Key("version").Str(d.version)
			w.EndObj()
		}
		w.EndArr()
		w.Key("name").Str(s.name)
		w.Key("repo").Arr()
		for _, r := range s.repo {
			w.Obj()
			w.Key("cipher").Str(r.cipher)
			w.Key("key").Int(int64(r.key))
			w.Key("status").Obj()
			w.Key("code").Int(int64(r.code))
			w.Key("message").Str(r.msg)
			w.EndObj()
			w.EndObj()
		}
		w.EndArr()
		w.Key("status").Obj()
		w.Key("code").Int(int64(s.code))
		w.Key("lock").Obj()
		w.Key("backup").Obj()
		w.Key("held").Bool(s.lockHeld)
		w.EndObj()
		w.EndObj()
		w.Key("message").Str(infoStatusMessage[s.code])
		w.EndObj()
		w.EndObj()
	}
	w.EndArr()
	return w.B
}

func infoBackupJSON(w *jsonw.Writer, b *infoBackupOut) {
	w.Obj()
	if b.annotation != nil {
		w.Key("annotation").Obj()
		keys := make([]string, 0, len(b.annotation))
		for k := range b.annotation {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			w.Key(k).Str(b.annotation[k])
		}
		w.EndObj()
	}
	w.Key("archive").Obj()
	w.Key("start").StrOrNull(b.archiveStart)
	w.Key("stop").StrOrNull(b.archiveStop)
	w.EndObj()
	w.Key("backrest").Obj()
	w.Key("format").Int(int64(b.backrestFormat))
	w.Key("version").Str(b.backrestVer)
	w.EndObj()
	infoJSONDBRef(w.Key("database"), b.dbID, b.repoKey)
	if b.set {
		w.Key("database-ref").Arr()
		for _, d := range b.databaseRef {
			w.Obj()
			w.Key("name").Str(d.name)
			w.Key("oid").Uint(d.oid)
			w.EndObj()
		}
		w.EndArr()
	}
	if b.errorKnown {
		w.Key("error").Bool(b.errorVal)
	}
	if b.errorList != nil {
		w.Key("error-list").StrList(b.errorList)
	}
	w.Key("info").Obj()
	w.Key("delta").Uint(b.delta)
	w.Key("repository").Obj()
	w.Key("delta").Uint(b.repoDelta)
	if b.repoDeltaMap != nil {
		w.Key("delta-map").Uint(*b.repoDeltaMap)
	}
	if b.repoSize != nil {
		w.Key("size").Uint(*b.repoSize)
	}
	if b.repoSizeMap != nil {
		w.Key("size-map").Uint(*b.repoSizeMap)
	}
	w.EndObj()
	w.Key("size").Uint(b.size)
	w.EndObj()
	w.Key("label").Str(b.label)
	if b.set {
		w.Key("link")
		if len(b.links) == 0 {
			w.Null()
		} else {
			w.Arr()
			for _, l := range b.links {
				w.Obj()
				w.Key("destination").Str(l.destination)
				w.Key("name").Str(l.name)
				w.EndObj()
			}
			w.EndArr()
		}
	}
	if b.lsnStart != "" {
		w.Key("lsn").Obj()
		w.Key("start").Str(b.lsnStart)
		w.Key("stop").Str(b.lsnStop)
		w.EndObj()
	}
	w.Key("prior").StrOrNull(b.prior)
	w.Key("reference")
	if b.referenceSet {
		w.StrList(b.reference)
	} else {
		w.Null()
	}
	if b.set {
		w.Key("tablespace")
		if len(b.tablespaces) == 0 {
			w.Null()
		} else {
			w.Arr()
			for _, t := range b.tablespaces {
				w.Obj()
				w.Key("destination").Str(t.destination)
				w.Key("name").Str(t.name)
				w.Key("oid").Uint(t.oid)
				w.EndObj()
			}
			w.EndArr()
		}
	}
	w.Key("timestamp").Obj()
	w.Key("start").Int(b.tsStart)
	w.Key("stop").Int(b.tsStop)
	w.EndObj()
	w.Key("type").Str(b.typ)
	w.EndObj()
}

// --- text -------------------------------------------------------------------

func infoText(stanzas []infoStanzaOut, label string) string {
	if len(stanzas) == 0 {
		return "No stanzas exist in the repository.\n"
	}
	var b strings.Builder
	for i := range stanzas {
		s := &stanzas[i]
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "stanza: %s\n    status: ", s.name)
		pct := ""
		if s.pctCplt != nil {
			pct = fmt.Sprintf(" - %d.%02d%% complete", *s.pctCplt/100, *s.pctCplt%100)
		}
		switch {
		case s.code == infoOK:
			if s.lockHeld {
				fmt.Fprintf(&b, "ok (backup/expire running%s)\n", pct)
			} else {
				b.WriteString("ok\n")
			}
		case s.code == infoMixed || s.code == infoPgMismatch || s.code == infoOther:
			if s.code == infoMixed {
				b.WriteString("mixed")
			} else {
				fmt.Fprintf(&b, "error (%s)", infoStatusMessage[s.code])
			}
			if s.lockHeld {
				fmt.Fprintf(&b, " (backup/expire running%s)", pct)
			}
			b.WriteString("\n")
			multi := len(s.repo) > 1
			spacer := "            "
			if multi {
				spacer = "               "
			}
			for _, r := range s.repo {
				if multi {
					fmt.Fprintf(&b, "        repo%d: ", r.key)
				}
				switch r.code {
				case infoOK:
					b.WriteString("ok\n")
				case infoOther:
					if multi {
						b.WriteString("error (other)\n")
					}
					b.WriteString(spacer + strings.ReplaceAll(r.msg, "\n", "\n"+spacer) + "\n")
				default:
					fmt.Fprintf(&b, "error (%s)\n", r.msg)
				}
			}
		default:
			if s.lockHeld {
				fmt.Fprintf(&b, "error (%s, backup/expire running%s)\n", infoStatusMessage[s.code], pct)
			} else {
				fmt.Fprintf(&b, "error (%s)\n", infoStatusMessage[s.code])
			}
		}
		if s.code != infoMissingStanzaPath {
			fmt.Fprintf(&b, "    cipher: %s\n", s.cipher)
			if s.cipher == "mixed" {
				for _, r := range s.repo {
					fmt.Fprintf(&b, "        repo%d: %s\n", r.key, r.cipher)
				}
			}
		}
		if len(s.db) > 0 {
			infoTextDB(&b, s, label)
		}
	}
	return b.String()
}

// infoDBGroup is every history entry (over all repos) of one cluster
// (system id and version).
type infoDBGroup struct {
	systemID uint64
	version  string
	current  bool
	min, max string
	backups  []*infoBackupOut
}

func infoTextDB(b *strings.Builder, s *infoStanzaOut, label string) {
	var groups []*infoDBGroup
	groupOf := func(sysID uint64, version string) (int, *infoDBGroup) {
		for i, g := range groups {
			if g.systemID == sysID && g.version == version {
				return i, g
			}
		}
		return -1, nil
	}
	for _, d := range s.db {
		_, g := groupOf(d.systemID, d.version)
		if g == nil {
			g = &infoDBGroup{systemID: d.systemID, version: d.version,
				current: d.systemID == s.curSystemID && d.version == s.curVersion}
			groups = append(groups, g)
		}
		for _, a := range s.archive {
			if a.dbID == d.id && a.repoKey == d.repoKey && a.min != "" {
				if g.min == "" || g.min > a.min {
					g.min = a.min
				}
				if g.max == "" || g.max < a.max {
					g.max = a.max
				}
			}
		}
	}
	lo, hi := 0, len(groups)
	for i := range s.backup {
		bk := &s.backup[i]
		for _, d := range s.db {
			if bk.dbID == d.id && bk.repoKey == d.repoKey {
				if gi, g := groupOf(d.systemID, d.version); g != nil {
					g.backups = append(g.backups, bk)
					if label != "" {
						lo, hi = gi, gi+1
					}
				}
				break
			}
		}
	}
	var current strings.Builder
	showCurrent := false
	for _, g := range groups[lo:hi] {
		switch {
		case g.current:
			current.WriteString("\n    db (current)")
			infoTextBackups(&current, g)
			showCurrent = true
		case g.min != "" || len(g.backups) > 0:
			b.WriteString("\n    db (prior)")
			infoTextBackups(b, g)
		}
	}
	if showCurrent {
		b.WriteString(current.String())
	}
}

func infoTime(ts int64) string { return time.Unix(ts, 0).Format("2006-01-02 15:04:05") }

func infoTextBackups(b *strings.Builder, g *infoDBGroup) {
	fmt.Fprintf(b, "\n        wal archive min/max (%s): ", g.version)
	if g.min != "" {
		fmt.Fprintf(b, "%s/%s\n", g.min, g.max)
	} else {
		b.WriteString("none present\n")
	}
	for _, bk := range g.backups {
		fmt.Fprintf(b, "\n        %s backup: %s\n", bk.typ, bk.label)
		fmt.Fprintf(b, "            timestamp start/stop: %s / %s\n", infoTime(bk.tsStart), infoTime(bk.tsStop))
		if bk.archiveStart != "" && bk.archiveStop != "" {
			fmt.Fprintf(b, "            wal start/stop: %s / %s\n", bk.archiveStart, bk.archiveStop)
		} else {
			b.WriteString("            wal start/stop: n/a\n")
		}
		if bk.lsnStart != "" {
			fmt.Fprintf(b, "            lsn start/stop: %s / %s\n", bk.lsnStart, bk.lsnStop)
		}
		fmt.Fprintf(b, "            database size: %s, database backup size: %s\n", log.Size(bk.size), log.Size(bk.delta))
		fmt.Fprintf(b, "            repo%d: ", bk.repoKey)
		if bk.repoSize != nil {
			fmt.Fprintf(b, "backup set size: %s, ", log.Size(*bk.repoSize))
		}
		fmt.Fprintf(b, "backup size: %s\n", log.Size(bk.repoDelta))
		if bk.referenceSet {
			fmt.Fprintf(b, "            backup reference list: %s\n", strings.Join(bk.reference, ", "))
		}
		if bk.set {
			b.WriteString("            database list:")
			if len(bk.databaseRef) == 0 {
				b.WriteString(" none\n")
			} else {
				for i, d := range bk.databaseRef {
					if i > 0 {
						b.WriteString(",")
					}
					fmt.Fprintf(b, " %s (%d)", d.name, d.oid)
				}
				b.WriteString("\n")
			}
			if len(bk.links) > 0 {
				b.WriteString("            symlinks:\n")
				for _, l := range bk.links {
					fmt.Fprintf(b, "                %s => %s\n", l.name, l.destination)
				}
			}
			if len(bk.tablespaces) > 0 {
				b.WriteString("            tablespaces:\n")
				for _, t := range bk.tablespaces {
					fmt.Fprintf(b, "                %s (%d) => %s\n", t.name, t.oid, t.destination)
				}
			}
		}
		if bk.errorKnown && bk.errorVal {
			if len(bk.errorList) > 0 {
				fmt.Fprintf(b, "            error list: %s\n", strings.Join(bk.errorList, ", "))
			} else {
				b.WriteString("            error(s) detected during backup\n")
			}
		}
		if bk.annotation != nil {
			keys := make([]string, 0, len(bk.annotation))
			for k := range bk.annotation {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			b.WriteString("            annotation(s)\n")
			for _, k := range keys {
				fmt.Fprintf(b, "                %s: %s\n", k, bk.annotation[k])
			}
		}
	}
}
