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
	reads := 0
	// The clock read after the wait: just past the newest label's second.
	clock := func() (time.Time, error) { reads++; return newest.Add(time.Second + 5*time.Millisecond), nil }

	got, err := b.laterThanNewest(newest.Add(900*time.Millisecond), clock)
	if err != nil || reads != 1 || !got.Equal(newest.Add(time.Second+5*time.Millisecond)) {
		t.Errorf("start in the newest label's second: %v, %v after %d clock reads", got, err, reads)
	}
	if l, err := repo.NewLabel(repo.BackupTypeFull, "", got.Truncate(time.Second), []string{b.bi.Current[1].Label}); err != nil || l <= b.bi.Current[1].Label {
		t.Errorf("label %q (%v) after the wait", l, err)
	}

	reads = 0
	for _, start := range []time.Time{newest.Add(time.Second), newest.Add(-time.Hour)} {
		if got, err := b.laterThanNewest(start, clock); err != nil || reads != 0 || !got.Equal(start) {
			t.Errorf("start %v: %v, %v after %d clock reads", start, got, err, reads)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.e.Ctx = ctx
	if _, err := b.laterThanNewest(newest.Add(-time.Second), clock); err == nil {
		t.Error("no error when terminated while waiting")
	}
}
