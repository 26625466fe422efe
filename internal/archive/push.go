package archive

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

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
	return push(ctx, o, walPath, true)
}

// push is Push; overlap hashes and compresses a segment on two goroutines
// (pushSegment).
func push(ctx context.Context, o *PushOptions, walPath string, overlap bool) error {
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
	f, err := os.Open(walPath)
	if err != nil {
		if os.IsNotExist(err) {
			return errs.New(errs.FileMissing, "unable to open missing file '%s' for read", walPath)
		}
		return errs.Wrap(errs.FileOpen, err, "unable to open file '%s' for read", walPath)
	}
	defer f.Close()
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	layout := repo.Layout{Stanza: o.Stanza}
	segment := IsSegmentName(name)
	if !segment {
		// History and backup history files: raw, under their own name.
		for i, r := range repos {
			dest := layout.SegmentDir(infos[i].ArchiveID(), name) + "/" + name
			if err := pushFile(ctx, r.Storage, f, walPath, buf, dest, filter.None, 0, infos[i].CipherPass); err != nil {
				failed = append(failed, RepoErr(r.Name, err))
			}
		}
		if len(failed) > 0 {
			return pushErrors(failed)
		}
		o.Log.Infof("pushed WAL file '%s' to the archive", name)
		return nil
	}

	if o.HeaderCheck {
		if err := headerCheck(f, walPath, name, infos[0]); err != nil {
			return err
		}
	}
	// The archive file is named after the segment's checksum. It is
	// computed before anything is written when a repository holds the
	// segment already (its checksum decides) or cannot rename a file
	// (object stores); otherwise while the segment is compressed into
	// the first repository (pushSegment).
	sum := ""
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
		if sum == "" && len(existing) == 0 && canCommitAs(r.Storage) {
			var rerr error
			sum, rerr, err = pushSegment(ctx, r.Storage, f, walPath, dir, name, o.Compress, o.Level, infos[i].CipherPass, overlap)
			if rerr != nil {
				return rerr
			}
			if err != errNoPipe {
				if err != nil {
					failed = append(failed, RepoErr(r.Name, err))
				}
				continue
			}
			sum = ""
		}
		if sum == "" {
			if sum, err = segmentSum(f, walPath, buf); err != nil {
				return err
			}
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
		if err := pushFile(ctx, r.Storage, f, walPath, buf, dest, o.Compress, o.Level, infos[i].CipherPass); err != nil {
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

// copyBufPool holds the read buffers of archive-push: 64 KiB reads are
// 256 system calls on a 16 MiB segment. Larger buffers cost more than the
// calls they save in a process that lives 50 ms: each page is a page fault
// on first touch (four of 256 KiB: 190 faults more, 1.5 ms of a sync push,
// median of 30 alternated runs).
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

const copyBufSize = 64 << 10

// headerCheck checks the segment's first 512 bytes against the stanza
// (pgBackRest reads 512 bytes: a shorter file is no WAL segment).
func headerCheck(f *os.File, path, name string, a *repo.ArchiveInfo) error {
	var head [512]byte
	n, err := f.ReadAt(head[:], 0)
	if n < len(head) {
		if err == nil || err == io.EOF {
			return errs.New(errs.FileRead, "unable to read 512 byte(s) from '%s'", path)
		}
		return errs.Wrap(errs.FileRead, err, "unable to read '%s'", path)
	}
	return checkWalHeader(head[:], path, name, a)
}

// segmentSum returns the SHA-1 of the open file f (from its start).
func segmentSum(f *os.File, path string, buf []byte) (string, error) {
	h := sha1.New()
	if rerr, _ := readInto(f, path, buf, h, io.Discard); rerr != nil {
		return "", rerr
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readInto reads src from its start into dst a buffer at a time, hashing
// what it reads into h when h is not nil. rerr is a failure to read src
// (wrapped), werr one of dst (as dst returned it); either stops the copy.
func readInto(src io.ReaderAt, srcPath string, buf []byte, h hash.Hash, dst io.Writer) (rerr, werr error) {
	var off int64
	for {
		n, err := src.ReadAt(buf, off)
		off += int64(n)
		if n > 0 {
			if h != nil {
				h.Write(buf[:n])
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return nil, werr
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return errs.Wrap(errs.FileRead, err, "unable to read '%s'", srcPath), nil
		}
	}
}

// pushFile streams the open file src (from its start) through compression
// and encryption into dest, compressing on one goroutine: the background
// process pushes process-max segments at once, and for a single synchronous
// push two lz4 goroutines measured slower (their block buffers cost more
// page faults than the split saves).
func pushFile(ctx context.Context, st storage.Storage, src *os.File, srcPath string, buf []byte, dest string, ct filter.CompressType, level int, pass string) error {
	if err := st.PathCreate(ctx, path.Dir(dest)); err != nil {
		return errs.OrCode(errs.PathCreate, err)
	}
	w, err := st.Create(ctx, dest, storage.CreateOptions{})
	if err != nil {
		return errs.OrCode(errs.FileOpen, err)
	}
	sw, err := filter.NewStreamWriter(w, ct, level, pass, 1)
	if err != nil {
		w.Abort()
		return err
	}
	if rerr, werr := readInto(src, srcPath, buf, nil, sw); rerr != nil || werr != nil {
		sw.Close()
		w.Abort()
		if rerr != nil {
			return rerr
		}
		return errs.Wrap(errs.FileWrite, werr, "unable to write '%s'", st.Full(dest))
	}
	if err := sw.Close(); err != nil {
		w.Abort()
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", st.Full(dest))
	}
	if err := w.Commit(); err != nil {
		return errs.Wrap(errs.FileWrite, err, "unable to write '%s'", st.Full(dest))
	}
	return nil
}

// checkWalHeader checks the first 512 bytes of a segment against the
// stanza.
func checkWalHeader(buf []byte, path, name string, a *repo.ArchiveInfo) error {
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
