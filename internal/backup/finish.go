package backup

import (
	"bytes"
	"context"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// Finish validates and saves the manifest (after syncing every file of the
// backup), its gz copy in backup.history and the latest link. backup.info
// is the command's.
func (b *Backup) Finish(ctx context.Context) error {
	b.ctx = ctx
	m := b.m
	m.Sort()
	if err := m.Validate(true); err != nil {
		return err
	}
	// The manifest files and backup.history/<YYYY>/<label>.manifest.gz (gz
	// of the plain text) are written, from one rendering, while the backup
	// files are synced; the manifest files are committed after. Level 3:
	// on a manifest of 100k files (19 MB) it took 18 ms for 349 KB, level
	// 9 (pgBackRest's) 99 ms for 350 KB; any level reads the same.
	var gz bytes.Buffer
	type written struct {
		w   *repo.PendingWrite
		err error
	}
	done := make(chan written, 1)
	go func() {
		cw, err := filter.NewCompressor(&gz, filter.Gz, historyGzLevel)
		if err != nil {
			done <- written{err: err}
			return
		}
		w, err := repo.WriteManifest(ctx, b.st, b.stanza, m, b.opt.InfoCipherPass, cw)
		if cerr := cw.Close(); err == nil && cerr != nil {
			w.Abort()
			err = cerr
		}
		done <- written{w, err}
	}()
	if err := storage.SyncAll(ctx, b.st); err != nil {
		if r := <-done; r.err == nil {
			r.w.Abort()
		}
		return errs.Wrap(errs.FileSync, err, "unable to sync backup files")
	}
	r := <-done
	if r.err != nil {
		return r.err
	}
	if err := r.w.Commit(); err != nil {
		return err
	}
	hist := gz.Bytes()
	var err error
	if b.opt.InfoCipherPass != "" {
		if hist, err = filter.EncryptBytes(hist, b.opt.InfoCipherPass); err != nil {
			return err
		}
	}
	if err := storage.WriteAll(ctx, b.st, repo.HistoryManifestPath(b.stanza, m.Backup.Label), hist); err != nil {
		return errs.Wrap(errs.FileWrite, err, "unable to write backup history manifest")
	}
	if err := b.st.Symlink(ctx, m.Backup.Label, repo.Layout{Stanza: b.stanza}.Latest()); err != nil {
		b.log.Warnf("unable to update the latest link: %v", err)
	}
	return nil
}

// historyGzLevel is the gz level of the history copy of the manifest.
const historyGzLevel = 3
