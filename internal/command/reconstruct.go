package command

import (
	"sort"

	"github.com/pgbr-dev/pgbr/internal/errs"
	expirepkg "github.com/pgbr-dev/pgbr/internal/expire"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// reconstructBackupInfo brings backup.info in line with the backup
// directories of the repository, as pgBackRest's
// infoBackupLoadFileReconstruct does for backup and expire (format spec
// §2.8):
//
//   - an entry whose <label>/backup.manifest is missing is dropped with every
//     backup that depends on it;
//   - a directory that has backup.manifest (not just the .copy of an
//     interrupted backup) but no entry is added back when its cluster matches
//     a [db:history] entry and its prior backup is (still) in backup.info.
//
// bi is changed in memory only; changed tells the caller to save it.
func reconstructBackupInfo(e *Env, r *repoT, stanza string, bi *repo.BackupInfo) (changed bool, err error) {
	ctx := e.Ctx
	base := repo.Layout{Stanza: stanza}.BackupDir()
	manifestExists := func(label string) (bool, error) {
		ok, err := r.St.Exists(ctx, repo.BackupManifestPath(stanza, label))
		if err != nil {
			return false, errs.OrCode(errs.FileOpen, err)
		}
		return ok, nil
	}

	// Entries without a manifest, and their dependents (newest first).
	current := make([]string, 0, len(bi.Current))
	for _, c := range bi.Current {
		current = append(current, c.Label)
	}
	for _, label := range current {
		if _, ok := bi.Find(label); !ok {
			continue // already removed as a dependent
		}
		ok, err := manifestExists(label)
		if err != nil {
			return changed, err
		}
		if ok {
			continue
		}
		deps := expirepkg.Dependents(bi, label)
		sort.Sort(sort.Reverse(sort.StringSlice(deps)))
		for _, d := range deps {
			e.Log.Warnf("backup '%s' missing manifest removed from backup.info", d)
			bi.Remove(d)
			changed = true
		}
	}

	// Complete backups on disk that backup.info does not list (oldest
	// first, so a prior added here satisfies the check of its dependents).
	list, err := r.St.List(ctx, base)
	if err != nil {
		return changed, errs.Wrap(errs.PathOpen, err, "unable to list backups")
	}
	var labels []string
	for _, en := range list {
		if repo.IsLabel(en.Name) {
			labels = append(labels, en.Name)
		}
	}
	sort.Strings(labels)
	for _, label := range labels {
		if _, ok := bi.Find(label); ok {
			continue
		}
		ok, err := manifestExists(label)
		if err != nil {
			return changed, err
		}
		if !ok {
			continue // interrupted (resumable) or partly removed backup
		}
		m, err := repo.LoadManifest(ctx, r.St, stanza, label, bi.CipherPass)
		if err != nil {
			return changed, err
		}
		found := false
		for _, h := range bi.History {
			if m.Backup.Label != label {
				break // a manifest copied from another directory
			}
			if m.DB.ID == h.ID && m.DB.SystemID == h.SystemID && m.DB.Version == h.Version {
				if m.Backup.Prior == "" {
					found = true
				} else if _, ok := bi.Find(m.Backup.Prior); ok {
					found = true
				}
			}
			if found {
				break
			}
		}
		if !found {
			e.Log.Warnf("invalid backup '%s' cannot be added to current backups", m.Backup.Label)
			continue
		}
		e.Log.Warnf("backup '%s' found in repository added to backup.info", label)
		bi.Add(repo.NewBackupInfoEntry(m))
		changed = true
	}
	return changed, nil
}
