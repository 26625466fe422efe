package command

import (
	"context"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/repo"
)

// TestLaterThanNewest: a backup started in the second of the newest
// backup's label takes the next second as its start without waiting, and
// waitLabel then reads the clock again until it gets there; one started
// later, or far behind (clock skew: left to the label check), keeps its
// start and does not wait.
func TestLaterThanNewest(t *testing.T) {
	newest := time.Now().Truncate(time.Second)
	label := newest.Format("20060102-150405") + "F"
	newRun := func() *backupRun {
		return &backupRun{e: &Env{Ctx: context.Background()}, bi: &repo.BackupInfo{Current: []repo.BackupInfoEntry{
			{Label: newest.Add(-time.Hour).Format("20060102-150405") + "F"}, {Label: label + "_" + newest.Format("20060102-150405") + "I"}}}}
	}
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

	b := newRun()
	got, err := b.laterThanNewest(clockFrom(newest.Add(900 * time.Millisecond)))
	if err != nil || reads != 1 || !got.Equal(newest.Add(time.Second)) {
		t.Errorf("start in the newest label's second: %v, %v after %d clock reads (want the next second, no wait)", got, err, reads)
	}
	if l, err := repo.NewLabel(repo.BackupTypeFull, "", got, []string{b.bi.Current[1].Label}); err != nil || l <= b.bi.Current[1].Label {
		t.Errorf("label %q (%v)", l, err)
	}
	b.start = got // as run() keeps it
	// Still in the newest label's second when the backup is about to plan:
	// the clock is read until it has reached the label.
	reads = 0
	b.labelClock = clockFrom(newest.Add(950 * time.Millisecond))
	if err := b.waitLabel(); err != nil || reads != 2 {
		t.Errorf("waitLabel: %v after %d clock reads (want a wait and a second read)", err, reads)
	}
	// Past it already: no wait.
	reads = 0
	b.labelClock = clockFrom(newest.Add(time.Second + 100*time.Millisecond))
	if err := b.waitLabel(); err != nil || reads != 1 {
		t.Errorf("waitLabel past the label: %v after %d clock reads (want one)", err, reads)
	}

	for _, start := range []time.Time{newest.Add(time.Second), newest.Add(-time.Hour)} {
		b := newRun()
		reads = 0
		if got, err := b.laterThanNewest(clockFrom(start)); err != nil || reads != 1 || !got.Equal(start) {
			t.Errorf("start %v: %v, %v after %d clock reads (want no second)", start, got, err, reads)
		}
		if err := b.waitLabel(); err != nil || reads != 1 {
			t.Errorf("start %v: waitLabel %v after %d clock reads (want none)", start, err, reads)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b = newRun()
	b.e.Ctx = ctx
	stuck := func() (time.Time, error) { return newest.Add(100 * time.Millisecond), nil }
	if b.start, err = b.laterThanNewest(stuck); err != nil {
		t.Fatal(err)
	}
	if err := b.waitLabel(); err == nil {
		t.Error("no error when terminated while waiting")
	}
}
