package repo

import (
	"context"
	"slices"
	"time"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/lazyre"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// LabelRegexp matches a backup label (format spec §1.2).
var LabelRegexp = lazyre.New(`^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}(D|I))?$`)

var historyManifestRegexp = lazyre.New(`^([0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}(D|I))?)\.manifest\.gz$`)

var historyYearRegexp = lazyre.New(`^2[0-9]{3}$`)

// IsLabel reports whether s is a backup label.
func IsLabel(s string) bool { return LabelRegexp.MatchString(s) }

// LabelType returns the backup type of a label ("full", "diff", "incr"),
// or "" when s is not a label.
func LabelType(label string) string {
	if !IsLabel(label) {
		return ""
	}
	switch label[len(label)-1] {
	case 'D':
		return BackupTypeDiff
	case 'I':
		return BackupTypeIncr
	}
	return BackupTypeFull
}

// formatLabel builds a label for start (formatted in start's location).
func formatLabel(typ, prior string, start time.Time) string {
	ts := start.Format("20060102-150405")
	switch typ {
	case BackupTypeFull:
		return ts + "F"
	case BackupTypeDiff:
		return prior[:16] + "_" + ts + "D"
	}
	return prior[:16] + "_" + ts + "I"
}

// NewLabel returns the label of a new backup started at start, formatted in
// start's location (pass local time, as pgBackRest uses localtime). prior
// is the prior backup's label (diff/incr only). The label must sort after
// every label in existing (see ExistingLabels); if it does not, one second
// is added, and if it still does not, the result is a ClockError.
func NewLabel(typ, prior string, start time.Time, existing []string) (string, error) {
	switch typ {
	case BackupTypeFull:
	case BackupTypeDiff, BackupTypeIncr:
		if !IsLabel(prior) {
			return "", errs.New(errs.Assert, "invalid prior backup label '%s' for a %s backup", prior, typ)
		}
	default:
		return "", errs.New(errs.Assert, "invalid backup type '%s'", typ)
	}
	latest := ""
	for _, l := range existing {
		if l > latest {
			latest = l
		}
	}
	label := formatLabel(typ, prior, start)
	if latest != "" && label <= latest {
		label = formatLabel(typ, prior, start.Add(time.Second))
		if label <= latest {
			return "", errs.New(errs.Clock,
				"new backup label '%s' is not later than latest backup label '%s'\n"+
					"HINT: has the timezone changed?\nHINT: is there clock skew?", label, latest)
		}
	}
	return label, nil
}

// ExistingLabels returns the labels a new label must sort after: the
// newest label directory in backup/<stanza>/ and the newest label in the
// newest year of backup/<stanza>/backup.history/.
func ExistingLabels(ctx context.Context, st storage.Storage, stanza string) ([]string, error) {
	l := Layout{stanza}
	var out []string
	list, err := st.List(ctx, l.BackupDir())
	if err != nil {
		return nil, err
	}
	newest := ""
	for _, e := range list {
		if IsLabel(e.Name) && e.Name > newest {
			newest = e.Name
		}
	}
	if newest != "" {
		out = append(out, newest)
	}
	years, err := st.List(ctx, l.HistoryDir())
	if err != nil {
		return nil, err
	}
	var yl []string
	for _, y := range years {
		if historyYearRegexp.MatchString(y.Name) {
			yl = append(yl, y.Name)
		}
	}
	if len(yl) == 0 {
		return out, nil
	}
	files, err := st.List(ctx, l.HistoryDir()+"/"+slices.Max(yl))
	if err != nil {
		return nil, err
	}
	newest = ""
	for _, f := range files {
		if m := historyManifestRegexp.FindStringSubmatch(f.Name); m != nil && m[1] > newest {
			newest = m[1]
		}
	}
	if newest != "" {
		out = append(out, newest)
	}
	return out, nil
}

// HistoryManifestPath returns backup/<stanza>/backup.history/<YYYY>/<label>.manifest.gz.
func HistoryManifestPath(stanza, label string) string {
	return Layout{stanza}.HistoryManifest(label)
}
