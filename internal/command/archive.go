package command

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/lock"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/local"
)

// isSegmentName reports a WAL segment or partial segment name (those get a
// checksum suffix and compression in the archive).
func isSegmentName(name string) bool {
	return pg.IsWalSegment(name) || pg.IsWalPartial(name)
}

// archiveFileDir returns where an archive file lives inside the archive id:
// names starting with 24 hex chars go in their 16-hex dir.
func archiveFileDir(stanza, archiveID, name string) string {
	return repo.Layout{Stanza: stanza}.SegmentDir(archiveID, name)
}

func isUpperHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

var storedSegment = regexp.MustCompile(`^-[0-9a-f]{40}(\.(gz|bz2|lz4|zst|xz))?$`)

// findSegment lists the stored files for a segment name in dir.
func findSegment(e *Env, st storage.Storage, dir, name string) ([]string, error) {
	list, err := st.List(e.Ctx, dir)
	if err != nil {
		return nil, errs.Wrap(errs.PathOpen, err, "unable to list '%s'", st.Full(dir))
	}
	var out []string
	for _, f := range list {
		if f.Type == storage.TypeFile && strings.HasPrefix(f.Name, name) && storedSegment.MatchString(f.Name[len(name):]) {
			out = append(out, f.Name)
		}
	}
	return out, nil
}

func fileSHA1(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha1.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func archivePush(e *Env) error {
	stanza, err := e.stanza()
	if err != nil {
		return err
	}
	params := e.Cfg.Params()
	if len(params) != 1 {
		return errs.New(errs.ParamRequired, "WAL segment to push required")
	}
	if err := lock.CheckStop(e.Cfg.String(config.LockPath), stanza); err != nil {
		return err
	}
	walPath, err := e.resolvePgPath(params[0])
	if err != nil {
		return err
	}
	if e.Cfg.Role() == "async" {
		return archivePushAsync(e, stanza, walPath)
	}
	if e.Cfg.Bool(config.ArchiveAsync) {
		return archivePushQueued(e, stanza, walPath)
	}
	return pushWAL(e, stanza, walPath)
}

// pushWAL pushes one WAL file (segment, .partial, .history, .backup) to
// every repository.
func pushWAL(e *Env, stanza, walPath string) error {
	name := filepath.Base(walPath)
	repos, err := e.repos()
	if err != nil {
		return err
	}
	ct, level, err := e.compressSettings()
	if err != nil {
		return err
	}

	// As pgBackRest: pg_control must be readable when pg1-path is set; each
	// repo's archive.info must load and match the cluster (or, without
	// pg1-path, the repos before it). A repo that fails is reported at the
	// end, after pushing to the healthy ones; none healthy is
	// RepoInvalidError.
	var want *repo.ArchiveHistory
	if e.Cfg.String(config.PgPath.Index(1)) != "" {
		c, err := e.readCluster()
		if err != nil {
			return err
		}
		want = &repo.ArchiveHistory{SystemID: c.Control.SystemID, Version: c.Control.Version.Str}
	}
	var healthy []*repoT
	var infos []*repo.ArchiveInfo
	var failed []string
	for _, r := range repos {
		a, err := repo.LoadArchiveInfo(e.Ctx, r.St, stanza, r.CipherPass)
		if err == nil && want != nil && mismatch(want.Version, want.SystemID, a) {
			what := "PostgreSQL"
			if e.Cfg.String(config.PgPath.Index(1)) == "" {
				what = repos[0].Name() + " stanza"
			}
			err = errs.New(errs.ArchiveMismatch, "%s version %s, system-id %d do not match %s stanza version %s, system-id %d\nHINT: are you archiving to the correct stanza?",
				what, want.Version, want.SystemID, r.Name(), a.DB.Version, a.DB.SystemID)
		}
		if err != nil {
			failed = append(failed, repoErr(r, err))
			continue
		}
		if want == nil {
			want = &repo.ArchiveHistory{SystemID: a.DB.SystemID, Version: a.DB.Version}
		}
		healthy = append(healthy, r)
		infos = append(infos, a)
	}
	if len(healthy) == 0 {
		return errs.New(errs.RepoInvalid, "unable to find a valid repository:\n%s", strings.Join(failed, "\n"))
	}
	repos = healthy
	if _, err := os.Stat(walPath); err != nil {
		if os.IsNotExist(err) {
			return errs.New(errs.FileMissing, "unable to open missing file '%s' for read", walPath)
		}
		return errs.Wrap(errs.FileOpen, err, "unable to open file '%s' for read", walPath)
	}
	segment := isSegmentName(name)
	if segment && e.Cfg.Bool(config.ArchiveHeaderCheck) {
		if err := checkWalHeader(walPath, name, infos[0]); err != nil {
			return err
		}
	}
	if !segment {
		// History and backup history files: raw, under their own name.
		for i, r := range repos {
			dest := archiveFileDir(stanza, infos[i].ArchiveID(), name) + "/" + name
			if err := pushFile(e, r.St, walPath, dest, filter.None, 0, infos[i].CipherPass); err != nil {
				failed = append(failed, repoErr(r, err))
			}
		}
		if len(failed) > 0 {
			return pushErrors(failed)
		}
		e.Log.Infof("pushed WAL file '%s' to the archive", name)
		return nil
	}

	sum, _, err := fileSHA1(walPath)
	if err != nil {
		return errs.Wrap(errs.FileRead, err, "unable to read '%s'", walPath)
	}
	var warned bool
	for i, r := range repos {
		dir := archiveFileDir(stanza, infos[i].ArchiveID(), name)
		existing, err := findSegment(e, r.St, dir, name)
		if err != nil {
			failed = append(failed, repoErr(r, err))
			continue
		}
		if len(existing) > 1 {
			return errs.New(errs.ArchiveDuplicate, "duplicates found in the %s archive for WAL segment %s: %s\nHINT: are multiple primaries archiving to this stanza?",
				r.Name(), name, strings.Join(existing, ", "))
		}
		if len(existing) == 1 {
			if existing[0][len(name)+1:len(name)+41] == sum {
				if e.Cfg.Bool(config.ArchiveModeCheck) {
					e.Log.Warnf("WAL file '%s' already exists in the %s archive with the same checksum\nHINT: this is valid in some recovery scenarios but may also indicate a problem.", name, r.Name())
				}
				warned = true
				continue
			}
			return errs.New(errs.ArchiveDuplicate, "WAL file '%s' already exists in the %s archive with a different checksum", name, r.Name())
		}
		dest := dir + "/" + name + "-" + sum + ct.Ext()
		if err := pushFile(e, r.St, walPath, dest, ct, level, infos[i].CipherPass); err != nil {
			failed = append(failed, repoErr(r, err))
		}
	}
	if len(failed) > 0 {
		return pushErrors(failed)
	}
	_ = warned
	e.Log.Infof("pushed WAL file '%s' to the archive", name)
	return nil
}

// repoErr is one line of a multi-repo error: "repo1: [FileOpenError] msg".
func repoErr(r *repoT, err error) string {
	return fmt.Sprintf("%s: [%s] %s", r.Name(), errs.CodeOf(err).Name(), err.Error())
}

// pushErrors is pgBackRest's CommandError for per-repo failures: the
// healthy repos got the file, PostgreSQL must retry for the others.
func pushErrors(failed []string) error {
	return errs.New(errs.Command, "archive-push command encountered error(s):\n%s", strings.Join(failed, "\n"))
}

// pushFile streams src through compression and encryption into dest.
func pushFile(e *Env, st storage.Storage, src, dest string, ct filter.CompressType, level int, pass string) error {
	f, err := os.Open(src)
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s'", src)
	}
	defer f.Close()
	if err := st.PathCreate(e.Ctx, path.Dir(dest)); err != nil {
		return storageErr(errs.PathCreate, err)
	}
	w, err := st.Create(e.Ctx, dest, storage.CreateOptions{})
	if err != nil {
		return storageErr(errs.FileOpen, err)
	}
	p, err := filter.NewWritePipeline(w, ct, level, pass)
	if err != nil {
		w.Abort()
		return err
	}
	buf := make([]byte, 256*1024)
	if _, err := io.CopyBuffer(p, f, buf); err != nil {
		p.Close()
		w.Abort()
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", st.Full(dest))
	}
	if err := p.Close(); err != nil {
		w.Abort()
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", st.Full(dest))
	}
	if err := w.Commit(); err != nil {
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", st.Full(dest))
	}
	return nil
}

func checkWalHeader(path, name string, a *repo.ArchiveInfo) error {
	f, err := os.Open(path)
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s'", path)
	}
	defer f.Close()
	// pgBackRest reads 512 bytes: a shorter file is no WAL segment.
	buf := make([]byte, 512)
	if _, err := io.ReadFull(f, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errs.New(errs.FileRead, "unable to read 512 byte(s) from '%s'", path)
		}
		return errs.Wrap(errs.FileRead, err, "unable to read '%s'", path)
	}
	h, err := pg.ParseWalHeader(buf)
	if err != nil {
		return errs.New(errs.Format, "%s: %s", name, err.Error())
	}
	if h.Version.Str != a.DB.Version || h.SystemID != a.DB.SystemID {
		return errs.New(errs.ArchiveMismatch, "WAL file '%s' version %s, system-id %d do not match stanza version %s, system-id %d",
			path, h.Version.Str, h.SystemID, a.DB.Version, a.DB.SystemID)
	}
	return nil
}

func archiveGet(e *Env) error {
	stanza, err := e.stanza()
	if err != nil {
		return err
	}
	params := e.Cfg.Params()
	if len(params) == 0 {
		return errs.New(errs.ParamRequired, "WAL segment to get required")
	}
	if len(params) == 1 {
		return errs.New(errs.ParamRequired, "path to copy WAL segment required")
	}
	if len(params) > 2 {
		return errs.New(errs.ParamInvalid, "extra parameters found")
	}
	name := params[0]
	dest, err := e.resolvePgPath(params[1])
	if err != nil {
		return err
	}
	if err := lock.CheckStop(e.Cfg.String(config.LockPath), stanza); err != nil {
		return err
	}
	if e.Cfg.Role() == "async" {
		return archiveGetAsync(e, stanza, name)
	}
	if e.Cfg.Bool(config.ArchiveAsync) && pg.IsWalSegment(name) {
		return archiveGetQueued(e, stanza, name, dest)
	}
	destDir := filepath.Dir(dest)
	root, err := local.Open(destDir)
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s' for write", dest+".pgbackrest.tmp")
	}
	defer root.Close()
	return fetchWAL(e, stanza, name, root, filepath.Base(dest))
}

// fetchWAL copies one archive file to dest in destDir: nil when found, an
// *ExitError with code 1 when it is in no repository, another error
// otherwise.
func fetchWAL(e *Env, stanza, name string, destDir *local.Root, dest string) error {
	c, err := e.readCluster()
	if err != nil {
		return err
	}
	repos, err := e.repos()
	if err != nil {
		return err
	}
	segment := isSegmentName(name)
	valid := 0
	// Copies that were found but could not be read: never "not found"
	// (exit 1 would end recovery early), but FileReadError as pgBackRest.
	var getErrs []string
	for _, r := range repos {
		a, err := repo.LoadArchiveInfo(e.Ctx, r.St, stanza, r.CipherPass)
		if err != nil {
			e.Log.Warnf("%s: [%s] %s", r.Name(), errs.CodeOf(err).Name(), err.Error())
			continue
		}
		ids := a.ArchiveIDs(c.Control.SystemID, c.Control.Version.Str)
		if len(ids) == 0 {
			e.Log.Warnf("%s: [ArchiveMismatchError] unable to retrieve the archive id for database version '%s' and system-id '%d'",
				r.Name(), c.Control.Version.Str, c.Control.SystemID)
			continue
		}
		valid++
		for _, id := range ids {
			dir := archiveFileDir(stanza, id, name)
			var stored string
			if segment {
				found, err := findSegment(e, r.St, dir, name)
				if err != nil {
					return err
				}
				sums := map[string]bool{}
				for _, f := range found {
					sums[f[len(name)+1:len(name)+41]] = true
				}
				if len(sums) > 1 {
					return errs.New(errs.ArchiveDuplicate, "duplicates found for WAL segment %s: %s\nHINT: are multiple primaries archiving to this stanza?", name, strings.Join(found, ", "))
				}
				if len(found) > 0 {
					stored = found[0]
				}
			} else {
				ok, err := r.St.Exists(e.Ctx, dir+"/"+name)
				if err != nil {
					return errs.Wrap(errs.FileOpen, err, "unable to check '%s'", r.St.Full(dir+"/"+name))
				}
				if ok {
					stored = name
				}
			}
			if stored == "" {
				continue
			}
			sum := ""
			if segment {
				sum = stored[len(name)+1 : len(name)+41]
			}
			if err := getFile(e, r.St, dir+"/"+stored, destDir, dest, filter.CompressTypeFromName(stored), a.CipherPass, sum); err != nil {
				getErrs = append(getErrs, fmt.Sprintf("%s: %s [%s] %s", r.Name(), strings.TrimPrefix(dir+"/"+stored, repo.Layout{Stanza: stanza}.ArchiveDir()+"/"),
					errs.CodeOf(err).Name(), err.Error()))
				continue
			}
			for _, w := range getErrs {
				e.Log.Warnf("%s", w)
			}
			e.Log.Infof("found %s in the %s: %s archive", name, r.Name(), id)
			return nil
		}
	}
	if valid == 0 {
		// Each repo's reason was logged above, as pgBackRest does.
		return errs.New(errs.RepoInvalid, "unable to find a valid repository")
	}
	if len(getErrs) > 0 {
		return errs.New(errs.FileRead, "unable to get %s:\n%s", name, strings.Join(getErrs, "\n"))
	}
	return &ExitError{Code: 1, Msg: fmt.Sprintf("unable to find %s in the archive", name)}
}

// getFile copies a stored archive file to dest in dir (atomically),
// verifying the SHA-1 of a segment against its name.
func getFile(e *Env, st storage.Storage, src string, dir *local.Root, dest string, ct filter.CompressType, pass, sum string) error {
	r, err := st.Open(e.Ctx, src)
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s'", st.Full(src))
	}
	defer r.Close()
	p, err := filter.NewReadPipeline(r, ct, pass)
	if err != nil {
		return err
	}
	defer p.Close()
	tmp := dest + ".pgbackrest.tmp"
	f, err := dir.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s' for write", dir.Full(tmp))
	}
	buf := make([]byte, 256*1024)
	_, err = io.CopyBuffer(f, p, buf)
	if err == nil && sum != "" && p.Checksum() != sum {
		err = errs.New(errs.Checksum, "checksum of '%s' is %s but its name says %s", st.Full(src), p.Checksum(), sum)
	}
	if err == nil {
		err = fileSync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = dir.Rename(tmp, dest)
	}
	if err != nil {
		dir.Remove(tmp)
		if errs.CodeOf(err) == errs.Unknown {
			err = errs.Wrap(errs.FileWrite, err, "unable to copy '%s' to '%s'", st.Full(src), dir.Full(dest))
		}
		return err
	}
	if err := dir.SyncDir("."); err != nil {
		return errs.Wrap(errs.PathSync, err, "unable to sync path '%s'", dir.Name())
	}
	return nil
}
