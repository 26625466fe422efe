package archive

import (
	"context"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// PushOptions is what archive-push needs: the repositories, compression
// and the checks to make.
type PushOptions struct {
	Stanza   string
	Repos    []Repo
	Compress filter.CompressType
	Level    int
	// Cluster is the identity read from pg_control when pg1-path is set;
	// nil without pg1-path (the first healthy repository's archive.info
	// is then the reference).
	Cluster *repo.ArchiveHistory
	// HeaderCheck checks a segment's header against archive.info
	// (archive-header-check); ModeCheck warns about a segment already
	// archived with the same checksum (archive-mode-check).
	HeaderCheck bool
	ModeCheck   bool
	Log         *log.Logger
}

// Push pushes one WAL file (segment, .partial, .history, .backup) to every
// repository.
//
// As pgBackRest: each repo's archive.info must load and match the cluster
// (or, without a cluster, the repos before it). A repo that fails is
// reported at the end, after pushing to the healthy ones; none healthy is
// RepoInvalidError.
func Push(ctx context.Context, o *PushOptions, walPath string) error {
	name := filepath.Base(walPath)
	want := o.Cluster
	var healthy []Repo
	var infos []*repo.ArchiveInfo
	var failed []string
	for _, r := range o.Repos {
		a, err := repo.LoadArchiveInfo(ctx, r.Storage, o.Stanza, r.CipherPass)
		if err == nil && want != nil && (want.Version != a.DB.Version || want.SystemID != a.DB.SystemID) {
			what := "PostgreSQL"
			if o.Cluster == nil {
				what = o.Repos[0].Name + " stanza"
			}
			err = errs.New(errs.ArchiveMismatch, "%s version %s, system-id %d do not match %s stanza version %s, system-id %d\nHINT: are you archiving to the correct stanza?",
				what, want.Version, want.SystemID, r.Name, a.DB.Version, a.DB.SystemID)
		}
		if err != nil {
			failed = append(failed, RepoErr(r.Name, err))
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
	repos := healthy
	if _, err := os.Stat(walPath); err != nil {
		if os.IsNotExist(err) {
			return errs.New(errs.FileMissing, "unable to open missing file '%s' for read", walPath)
		}
		return errs.Wrap(errs.FileOpen, err, "unable to open file '%s' for read", walPath)
	}
	layout := repo.Layout{Stanza: o.Stanza}
	segment := IsSegmentName(name)
	if segment && o.HeaderCheck {
		if err := checkWalHeader(walPath, name, infos[0]); err != nil {
			return err
		}
	}
	if !segment {
		// History and backup history files: raw, under their own name.
		for i, r := range repos {
			dest := layout.SegmentDir(infos[i].ArchiveID(), name) + "/" + name
			if err := pushFile(ctx, r.Storage, walPath, dest, filter.None, 0, infos[i].CipherPass); err != nil {
				failed = append(failed, RepoErr(r.Name, err))
			}
		}
		if len(failed) > 0 {
			return pushErrors(failed)
		}
		o.Log.Infof("pushed WAL file '%s' to the archive", name)
		return nil
	}

	sum, _, err := fileSHA1(walPath)
	if err != nil {
		return errs.Wrap(errs.FileRead, err, "unable to read '%s'", walPath)
	}
	for i, r := range repos {
		dir := layout.SegmentDir(infos[i].ArchiveID(), name)
		existing, err := FindSegment(ctx, r.Storage, dir, name)
		if err != nil {
			failed = append(failed, RepoErr(r.Name, err))
			continue
		}
		if len(existing) > 1 {
			return errs.New(errs.ArchiveDuplicate, "duplicates found in the %s archive for WAL segment %s: %s\nHINT: are multiple primaries archiving to this stanza?",
				r.Name, name, strings.Join(existing, ", "))
		}
		if len(existing) == 1 {
			if existing[0][len(name)+1:len(name)+41] == sum {
				if o.ModeCheck {
					o.Log.Warnf("WAL file '%s' already exists in the %s archive with the same checksum\nHINT: this is valid in some recovery scenarios but may also indicate a problem.", name, r.Name)
				}
				continue
			}
			return errs.New(errs.ArchiveDuplicate, "WAL file '%s' already exists in the %s archive with a different checksum", name, r.Name)
		}
		dest := dir + "/" + name + "-" + sum + o.Compress.Ext()
		if err := pushFile(ctx, r.Storage, walPath, dest, o.Compress, o.Level, infos[i].CipherPass); err != nil {
			failed = append(failed, RepoErr(r.Name, err))
		}
	}
	if len(failed) > 0 {
		return pushErrors(failed)
	}
	o.Log.Infof("pushed WAL file '%s' to the archive", name)
	return nil
}

// pushErrors is pgBackRest's CommandError for per-repo failures: the
// healthy repos got the file, PostgreSQL must retry for the others.
func pushErrors(failed []string) error {
	return errs.New(errs.Command, "archive-push command encountered error(s):\n%s", strings.Join(failed, "\n"))
}

// pushFile streams src through compression and encryption into dest.
func pushFile(ctx context.Context, st storage.Storage, src, dest string, ct filter.CompressType, level int, pass string) error {
	f, err := os.Open(src)
	if err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to open '%s'", src)
	}
	defer f.Close()
	if err := st.PathCreate(ctx, path.Dir(dest)); err != nil {
		return errs.OrCode(errs.PathCreate, err)
	}
	w, err := st.Create(ctx, dest, storage.CreateOptions{})
	if err != nil {
		return errs.OrCode(errs.FileOpen, err)
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
