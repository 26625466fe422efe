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
	// backup.history/<YYYY>/<label>.manifest.gz: gz level 9 of the plain
	// manifest, compressed while the backup files are synced.
	var gz bytes.Buffer
	plain := m.Bytes()
	gzDone := make(chan error, 1)
	go func() {
		cw, err := filter.NewCompressor(&gz, filter.Gz, 9)
		if err == nil {
			cw.Write(plain)
			err = cw.Close()
		}
		gzDone <- err
	}()
	if err := storage.SyncAll(ctx, b.st); err != nil {
		<-gzDone
		return errs.Wrap(errs.FileSync, err, "unable to sync backup files")
	}
	if err := repo.SaveManifestBytes(ctx, b.st, b.stanza, m.Backup.Label, plain, b.opt.InfoCipherPass); err != nil {
		<-gzDone
		return err
	}
	if err := <-gzDone; err != nil {
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
