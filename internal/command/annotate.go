package command

import (
	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// annotate adds, changes or (with an empty value) removes annotations of a
// backup set in backup.info of every repository that has it (pgBackRest
// 2.45's src/command/annotate/annotate.c). pgBackRest 2.45 saves the updated
// backup.info to the default repository whichever repository it loaded it
// from; pgbr saves it back to the repository it came from.
func annotate(e *Env) error {
	label := e.Cfg.String(config.Set)
	if !repo.IsLabel(label) {
		return errs.New(errs.OptionInvalidValue, "'%s' is not a valid backup label format", label)
	}
	stanza, l, err := e.lockStanza()
	if err != nil {
		return err
	}
	defer l.Release()
	rs, err := e.repos()
	if err != nil {
		return err
	}
	kv := e.Cfg.Hash(config.Annotation)
	processed, failed := 0, 0
	for _, r := range rs {
		err := func() error {
			bi, err := repo.LoadBackupInfo(e.Ctx, r.St, stanza, r.CipherPass)
			if err != nil {
				return err
			}
			if _, err := reconstructBackupInfo(e, r, stanza, bi); err != nil {
				return err
			}
			b, ok := bi.Find(label)
			if !ok {
				return nil
			}
			processed++
			e.Log.Infof("backup set '%s' to annotate found in %s", label, r.Name())
			if b.Annotation == nil {
				b.Annotation = map[string]string{}
			}
			for _, p := range kv {
				if p[1] == "" {
					delete(b.Annotation, p[0])
				} else {
					b.Annotation[p[0]] = p[1]
				}
			}
			if len(b.Annotation) == 0 {
				b.Annotation = nil
			}
			return repo.SaveBackupInfo(e.Ctx, r.St, stanza, bi, r.CipherPass)
		}()
		if err != nil {
			e.Log.Errorf(int(errs.CodeOf(err)), "%s: %s", r.Name(), err.Error())
			failed++
		}
	}
	if failed > 0 {
		return errs.New(errs.Command, "annotate command encountered %d error(s), check the log file for details", failed)
	}
	if processed == 0 {
		return errs.New(errs.BackupSetInvalid, "no backup set to annotate found")
	}
	return nil
}

// backupAnnotations are backup's --annotation options (empty values are
// left out, as pgBackRest does).
func backupAnnotations(e *Env) map[string]string {
	var m map[string]string
	for _, p := range e.Cfg.Hash(config.Annotation) {
		if p[1] == "" {
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[p[0]] = p[1]
	}
	return m
}
