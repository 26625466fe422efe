// Package expire decides what retention removes. Plan is a pure function of
// backup.info, the archive history, the policy and the time: it names the
// backups to expire (each with its dependants and the rule that expired
// it) and, per archive id, the WAL that must stay. ApplyBackups and
// ApplyWAL (apply.go) carry a plan out on a repository; the expire command
// reads the options and logs the decisions.
//
// The rules are pgBackRest 2.45's, checked against it on the same
// repositories (test/expire_test.go):
//
//   - retention-full (count): the oldest full backups beyond the count go,
//     each with every backup that depends on it.
//   - retention-full-type=time: every full backup older than the newest full
//     that stopped before now - retention-full days goes (that newest one
//     stays, so a restore to any time inside the window has a base).
//   - retention-diff: the oldest differential backups beyond the count go
//     (full backups count towards it but are never removed by it).
//   - --set: one backup and its dependants; the only full backup of the
//     current database cannot go.
//   - WAL: per archive id, everything from the archive start of the oldest
//     of the newest retention-archive backups of retention-archive-type
//     stays, and the consistency range (archive start to stop) of every
//     older remaining backup.
package expire

import (
	"errors"
	"fmt"
	"time"

	"github.com/pgbr-dev/pgbr/internal/repo"
)

// Policy is the retention configuration of one repository.
type Policy struct {
	// Set expires one backup and its dependants (--set); the retention
	// options are then not applied.
	Set string

	// Full is retention-full (a count, or days with FullTime); HasFull
	// tells whether it is set.
	HasFull  bool
	Full     int64
	FullTime bool // retention-full-type=time

	HasDiff bool
	Diff    int64 // retention-diff

	HasArchive  bool
	Archive     int64  // retention-archive
	ArchiveType string // retention-archive-type: full (default), diff, incr
}

// Reason names the rule that expired a set of backups; its text is the
// one pgBackRest logs.
type Reason string

// The reasons, with pgBackRest's wording.
const (
	ReasonFull     Reason = "expire full backup set"
	ReasonTime     Reason = "expire time-based backup set"
	ReasonDiff     Reason = "expire diff backup set"
	ReasonAdhoc    Reason = "expire adhoc backup"
	ReasonAdhocSet Reason = "expire adhoc backup set"
)

// Expired is one decision: backups that go together, oldest first.
type Expired struct {
	Labels []string
	Reason Reason
}

// ArchiveSkip tells why no WAL is expired.
type ArchiveSkip int

// Reasons for keeping all WAL.
const (
	ArchiveExpire     ArchiveSkip = iota // WAL retention applies
	ArchiveNotSet                        // no retention-archive and nothing to derive it from
	ArchiveTimeNotMet                    // time-based retention not met yet
)

// Range is the WAL a kept backup needs for consistency.
type Range struct {
	Label       string
	Start, Stop string // segment names
}

// ArchiveID is the WAL decision for one archive id (e.g. "15-1").
type ArchiveID struct {
	ID string
	// RemoveAll: no remaining backup belongs to this id and it is not the
	// current database: the whole archive path goes.
	RemoveAll bool
	// KeepAll: too few backups of the retention type (or none with an
	// archive start): nothing is removed.
	KeepAll bool
	// From is the archive start of the retention backup (FromLabel):
	// every segment from it on stays.
	From      string
	FromLabel string
	// Ranges are the consistency ranges of the older remaining backups.
	Ranges []Range
}

// Needed reports whether a WAL segment (24 hex characters) stays. Segment
// names compare as strings, as pgBackRest compares them: later timelines
// sort after.
func (a ArchiveID) Needed(seg string) bool {
	if a.KeepAll || seg >= a.From {
		return true
	}
	for _, r := range a.Ranges {
		if seg >= r.Start && seg <= r.Stop {
			return true
		}
	}
	return false
}

// Result is the whole plan.
type Result struct {
	// Expire lists the decisions in the order they were taken; no label
	// appears twice.
	Expire []Expired
	// LatestExpired is set when --set expires the newest backup (pgBackRest
	// warns that point-in-time recovery may be affected).
	LatestExpired string
	// ArchiveSkip, ArchiveKeep and ArchiveType describe WAL retention;
	// Archive holds one entry per archive id when ArchiveSkip is
	// ArchiveExpire.
	ArchiveSkip ArchiveSkip
	ArchiveKeep int64
	ArchiveType string
	Archive     []ArchiveID
}

// Labels returns every expired label.
func (r *Result) Labels() map[string]bool {
	m := map[string]bool{}
	for _, e := range r.Expire {
		for _, l := range e.Labels {
			m[l] = true
		}
	}
	return m
}

// ErrSetMissing and ErrLastFull are the --set refusals.
var (
	ErrSetMissing = errors.New("backup does not exist")
	ErrLastFull   = errors.New("full backup cannot be expired until another full backup has been created on this repo")
)

// SetError is a refused --set.
type SetError struct {
	Label string
	Err   error
}

func (e *SetError) Error() string {
	if e.Err == ErrSetMissing {
		return fmt.Sprintf("backup '%s' does not exist", e.Label)
	}
	return fmt.Sprintf("full backup %s cannot be expired until another full backup has been created on this repo", e.Label)
}

func (e *SetError) Unwrap() error { return e.Err }

// ErrHistoryMismatch: archive.info and backup.info disagree.
var ErrHistoryMismatch = errors.New("archive expiration cannot continue - archive and backup history lists do not match")

// Dependents returns label plus every backup whose prior chain leads to it,
// in backup.info order.
func Dependents(bi *repo.BackupInfo, label string) []string {
	set := map[string]bool{label: true}
	for changed := true; changed; {
		changed = false
		for _, c := range bi.Current {
			if !set[c.Label] && c.Prior != "" && set[c.Prior] {
				set[c.Label] = true
				changed = true
			}
		}
	}
	var out []string
	for _, c := range bi.Current {
		if set[c.Label] {
			out = append(out, c.Label)
		}
	}
	return out
}

// Plan decides what to expire. With ai nil the WAL part stops at
// ArchiveSkip/ArchiveKeep (the caller loads archive.info only when WAL
// retention applies and then calls PlanWAL). bi and ai are not modified.
func Plan(bi *repo.BackupInfo, ai *repo.ArchiveInfo, p Policy, now time.Time) (*Result, error) {
	res := &Result{}
	done := map[string]bool{}
	add := func(labels []string, why Reason) {
		var fresh []string
		for _, l := range labels {
			if !done[l] {
				done[l] = true
				fresh = append(fresh, l)
			}
		}
		if len(fresh) > 0 {
			res.Expire = append(res.Expire, Expired{Labels: fresh, Reason: why})
		}
	}

	if p.Set != "" {
		entry, ok := bi.Find(p.Set)
		if !ok {
			return nil, &SetError{Label: p.Set, Err: ErrSetMissing}
		}
		if entry.Type == repo.BackupTypeFull && entry.DbID == bi.DB.ID {
			fulls := 0
			for _, c := range bi.Current {
				if c.Type == repo.BackupTypeFull && c.DbID == entry.DbID {
					fulls++
				}
			}
			if fulls <= 1 {
				return nil, &SetError{Label: p.Set, Err: ErrLastFull}
			}
		}
		deps := Dependents(bi, p.Set)
		if bi.Current[len(bi.Current)-1].Label == deps[len(deps)-1] {
			res.LatestExpired = deps[len(deps)-1]
		}
		if len(deps) == 1 {
			add(deps, ReasonAdhoc)
		} else {
			add(deps, ReasonAdhocSet)
		}
	} else {
		if p.HasFull {
			var fulls []repo.BackupInfoEntry
			for _, c := range bi.Current {
				if c.Type == repo.BackupTypeFull {
					fulls = append(fulls, c)
				}
			}
			if p.FullTime {
				cutoff := now.Add(-time.Duration(p.Full) * 24 * time.Hour).Unix()
				keepFrom := -1
				for i := len(fulls) - 1; i >= 0; i-- {
					if fulls[i].TimestampStop < cutoff {
						keepFrom = i
						break
					}
				}
				for i := 0; i < keepFrom; i++ {
					add(Dependents(bi, fulls[i].Label), ReasonTime)
				}
			} else if int64(len(fulls)) > p.Full {
				for _, f := range fulls[:int64(len(fulls))-p.Full] {
					add(Dependents(bi, f.Label), ReasonFull)
				}
			}
		}
		if p.HasDiff {
			var diffs []repo.BackupInfoEntry
			for _, c := range bi.Current {
				if !done[c.Label] && (c.Type == repo.BackupTypeFull || c.Type == repo.BackupTypeDiff) {
					diffs = append(diffs, c)
				}
			}
			if int64(len(diffs)) > p.Diff {
				for _, d := range diffs[:int64(len(diffs))-p.Diff] {
					if d.Type == repo.BackupTypeDiff {
						add(Dependents(bi, d.Label), ReasonDiff)
					}
				}
			}
		}
	}

	remaining := res.remaining(bi)
	retentionWAL(res, remaining, p, now)
	if ai != nil && res.ArchiveSkip == ArchiveExpire {
		if err := res.PlanWAL(bi, ai); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// remaining lists the backups the plan keeps, in backup.info order.
func (r *Result) remaining(bi *repo.BackupInfo) []repo.BackupInfoEntry {
	done := r.Labels()
	var out []repo.BackupInfoEntry
	for _, c := range bi.Current {
		if !done[c.Label] {
			out = append(out, c)
		}
	}
	return out
}

// retentionWAL decides whether WAL is expired and how many backups of
// which type its retention counts.
func retentionWAL(res *Result, remaining []repo.BackupInfoEntry, p Policy, now time.Time) {
	typ := p.ArchiveType
	if typ == "" {
		typ = repo.BackupTypeFull
	}
	res.ArchiveType = typ
	switch {
	case p.HasArchive:
		res.ArchiveKeep = p.Archive
	case typ == repo.BackupTypeFull && p.HasFull && !p.FullTime:
		res.ArchiveKeep = p.Full
	case typ == repo.BackupTypeDiff && p.HasDiff:
		res.ArchiveKeep = p.Diff
	case p.HasFull && p.FullTime && typ == repo.BackupTypeFull:
		// Time-based: WAL is kept from the oldest remaining full on, once
		// some full is older than the window (as pgBackRest 2.45).
		cutoff := now.Add(-time.Duration(p.Full) * 24 * time.Hour).Unix()
		met := false
		for _, c := range remaining {
			if c.Type == repo.BackupTypeFull {
				res.ArchiveKeep++
				met = met || c.TimestampStop < cutoff
			}
		}
		if !met {
			res.ArchiveSkip = ArchiveTimeNotMet
		}
	default:
		res.ArchiveSkip = ArchiveNotSet
	}
}

// PlanWAL decides, per archive id of archive.info, which WAL stays, from
// the backups the plan keeps.
func (res *Result) PlanWAL(bi *repo.BackupInfo, ai *repo.ArchiveInfo) error {
	res.Archive = nil
	if res.ArchiveSkip != ArchiveExpire {
		return nil
	}
	typ := res.ArchiveType
	remaining := res.remaining(bi)
	history := ai.History
	if len(history) != len(bi.History) {
		return ErrHistoryMismatch
	}
	for i := range history {
		if history[i].ID != bi.History[i].ID || history[i].SystemID != bi.History[i].SystemID || history[i].Version != bi.History[i].Version {
			return ErrHistoryMismatch
		}
	}
	for _, h := range history {
		a := ArchiveID{ID: h.ArchiveID()}
		var backups []repo.BackupInfoEntry
		for _, c := range remaining {
			if c.DbID == h.ID {
				backups = append(backups, c)
			}
		}
		if len(backups) == 0 {
			if h.ID != ai.DB.ID {
				a.RemoveAll = true
			} else {
				a.KeepAll = true
			}
			res.Archive = append(res.Archive, a)
			continue
		}
		var ofType []repo.BackupInfoEntry
		for _, c := range backups {
			if typ == repo.BackupTypeIncr || c.Type == repo.BackupTypeFull || (typ == repo.BackupTypeDiff && c.Type == repo.BackupTypeDiff) {
				ofType = append(ofType, c)
			}
		}
		keep := res.ArchiveKeep
		if int64(len(ofType)) < keep || len(ofType) == 0 || keep <= 0 {
			a.KeepAll = true
			res.Archive = append(res.Archive, a)
			continue
		}
		rb := ofType[len(ofType)-int(keep)]
		if rb.ArchiveStart == "" {
			a.KeepAll = true
			res.Archive = append(res.Archive, a)
			continue
		}
		for _, c := range backups {
			if c.Label < rb.Label && c.ArchiveStart != "" {
				a.Ranges = append(a.Ranges, Range{Label: c.Label, Start: c.ArchiveStart, Stop: c.ArchiveStop})
			}
		}
		a.From, a.FromLabel = rb.ArchiveStart, rb.Label
		res.Archive = append(res.Archive, a)
	}
	return nil
}
