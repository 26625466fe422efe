package command

import (
	"context"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/repo"
)

// TestLaterThanNewest: a backup started in the second of the newest
// backup's label waits for the next second (the clock is read again);
// one started later, or far behind (clock skew: left to the label check),
// does not wait.
func TestLaterThanNewest(t *testing.T) {
	newest := time.Now().Truncate(time.Second)
	label := newest.Format("20060102-150405") + "F"
	b := &backupRun{e: &Env{Ctx: context.Background()}, bi: &repo.BackupInfo{Current: []repo.BackupInfoEntry{
		{Label: newest.Add(-time.Hour).Format("20060102-150405") + "F"}, {Label: label + "_" + newest.Format("20060102-150405") + "I"}}}}
	// start is what the clock reads first; every later read (after a
	// wait) is just past the newest label's second.
	reads := 0
	clockFrom := func(start time.Time) func() (time.Time, error) {
		return func() (time.Time, error) {
			reads++
			if reads == 1 {
				return start, nil
			}
			return newest.Add(time.Second + 5*time.Millisecond), nil
		}
	}

	got, err := b.laterThanNewest(clockFrom(newest.Add(900 * time.Millisecond)))
	if err != nil || reads != 2 || !got.Equal(newest.Add(time.Second+5*time.Millisecond)) {
		t.Errorf("start in the newest label's second: %v, %v after %d clock reads (want one again)", got, err, reads)
	}
	if l, err := repo.NewLabel(repo.BackupTypeFull, "", got.Truncate(time.Second), []string{b.bi.Current[1].Label}); err != nil || l <= b.bi.Current[1].Label {
		t.Errorf("label %q (%v) after the wait", l, err)
	}

	for _, start := range []time.Time{newest.Add(time.Second), newest.Add(-time.Hour)} {
		reads = 0
		if got, err := b.laterThanNewest(clockFrom(start)); err != nil || reads != 1 || !got.Equal(start) {
			t.Errorf("start %v: %v, %v after %d clock reads (want no second)", start, got, err, reads)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.e.Ctx = ctx
	reads = 0
	if _, err := b.laterThanNewest(clockFrom(newest.Add(-time.Second))); err == nil {
		t.Error("no error when terminated while waiting")
	}
}
