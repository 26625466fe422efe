package archive

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/local"
)

// GetOptions is what archive-get needs: the repositories in the order to
// search them and the identity of the cluster (from pg_control) that
// selects the archive ids.
type GetOptions struct {
	Stanza   string
	Repos    []Repo
	SystemID uint64
	Version  string // "15"
	Log      *log.Logger
}

// Get copies one archive file to dest in destDir: nil when found, a
// *NotFoundError when it is in no repository, another error otherwise.
func Get(ctx context.Context, o *GetOptions, name string, destDir *local.Root, dest string) error {
	segment := IsSegmentName(name)
	layout := repo.Layout{Stanza: o.Stanza}
	valid := 0
	// Copies that were found but could not be read: never "not found"
	// (exit 1 would end recovery early), but FileReadError as pgBackRest.
	var getErrs []string
	for _, r := range o.Repos {
		a, err := repo.LoadArchiveInfo(ctx, r.Storage, o.Stanza, r.CipherPass)
		if err != nil {
			o.Log.Warnf("%s: [%s] %s", r.Name, errs.CodeOf(err).Name(), err.Error())
			continue
		}
		ids := a.ArchiveIDs(o.SystemID, o.Version)
		if len(ids) == 0 {
			o.Log.Warnf("%s: [ArchiveMismatchError] unable to retrieve the archive id for database version '%s' and system-id '%d'",
				r.Name, o.Version, o.SystemID)
			continue
		}
		valid++
		for _, id := range ids {
			dir := layout.SegmentDir(id, name)
			var stored string
			if segment {
				found, err := FindSegment(ctx, r.Storage, dir, name)
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
				ok, err := r.Storage.Exists(ctx, dir+"/"+name)
				if err != nil {
					return errs.Wrap(errs.FileOpen, err, "unable to check '%s'", r.Storage.Full(dir+"/"+name))
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
			if err := getFile(ctx, r.Storage, dir+"/"+stored, destDir, dest, filter.CompressTypeFromName(stored), a.CipherPass, sum); err != nil {
				getErrs = append(getErrs, fmt.Sprintf("%s: %s [%s] %s", r.Name, strings.TrimPrefix(dir+"/"+stored, layout.ArchiveDir()+"/"),
					errs.CodeOf(err).Name(), err.Error()))
				continue
			}
			for _, w := range getErrs {
				o.Log.Warnf("%s", w)
			}
			o.Log.Infof("found %s in the %s: %s archive", name, r.Name, id)
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
	return &NotFoundError{Name: name}
}

// getFile copies a stored archive file to dest in dir (atomically),
// verifying the SHA-1 of a segment against its name.
func getFile(ctx context.Context, st storage.Storage, src string, dir *local.Root, dest string, ct filter.CompressType, pass, sum string) error {
	r, err := st.Open(ctx, src)
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
