package expire

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/repo"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// chain builds a backup.info from a compact description: one backup per
// word, "F", "D" or "I" (full, diff, incr), optionally followed by
// "@<days ago>" for its stop time and "#<db id>" for its database. Labels
// are generated in order; a diff depends on the last full, an incr on the
// backup before it; backup n archives segments 2n..2n+1 of timeline 1.
func chain(t *testing.T, desc string) *repo.BackupInfo {
	t.Helper()
	bi := &repo.BackupInfo{DB: repo.BackupDB{ID: 1, SystemID: 7, Version: "15"}}
	bi.History = []repo.BackupHistory{{ID: 1, SystemID: 7, Version: "15"}}
	var lastFull, last string
	for i, w := range strings.Fields(desc) {
		age := float64(len(strings.Fields(desc)) - i)
		db := 1
		kind := w[:1]
		rest := w[1:]
		if j := strings.IndexByte(rest, '#'); j >= 0 {
			fmt.Sscan(rest[j+1:], &db)
			rest = rest[:j]
		}
		if strings.HasPrefix(rest, "@") {
			fmt.Sscan(rest[1:], &age)
		}
		if db > bi.DB.ID {
			bi.DB = repo.BackupDB{ID: db, SystemID: 7, Version: "16"}
			bi.History = append(bi.History, bi.DB)
		}
		stamp := fmt.Sprintf("20261101-%06d", i)
		e := repo.BackupInfoEntry{DbID: db, TimestampStop: now.Add(-time.Duration(age*24) * time.Hour).Unix(),
			ArchiveStart: fmt.Sprintf("0000000100000000%08X", 2*i+2), ArchiveStop: fmt.Sprintf("0000000100000000%08X", 2*i+3)}
		switch kind {
		case "F":
			e.Type, e.Label = repo.BackupTypeFull, stamp+"F"
			lastFull = e.Label
		case "D":
			e.Type, e.Label, e.Prior = repo.BackupTypeDiff, lastFull[:15]+"_"+stamp[9:]+"D", lastFull
		case "I":
			e.Type, e.Label, e.Prior = repo.BackupTypeIncr, lastFull[:15]+"_"+stamp[9:]+"I", last
		default:
			t.Fatalf("bad chain word %q", w)
		}
		last = e.Label
		bi.Current = append(bi.Current, e)
	}
	return bi
}

func archiveOf(bi *repo.BackupInfo) *repo.ArchiveInfo {
	ai := &repo.ArchiveInfo{DB: repo.ArchiveHistory{ID: bi.DB.ID, SystemID: bi.DB.SystemID, Version: bi.DB.Version}}
	for _, h := range bi.History {
		ai.History = append(ai.History, repo.ArchiveHistory{ID: h.ID, SystemID: h.SystemID, Version: h.Version})
	}
	return ai
}

// render writes a plan as text: one line per decision with the backups'
// positions in the chain (0-based), then the WAL decision per archive id.
func render(bi *repo.BackupInfo, r *Result) string {
	pos := map[string]int{}
	for i, c := range bi.Current {
		pos[c.Label] = i
	}
	var b strings.Builder
	for _, e := range r.Expire {
		var ns []string
		for _, l := range e.Labels {
			ns = append(ns, fmt.Sprint(pos[l]))
		}
		fmt.Fprintf(&b, "%s: %s\n", e.Reason, strings.Join(ns, ","))
	}
	if r.LatestExpired != "" {
		fmt.Fprintf(&b, "latest expired: %d\n", pos[r.LatestExpired])
	}
	switch r.ArchiveSkip {
	case ArchiveNotSet:
		b.WriteString("wal: not set\n")
	case ArchiveTimeNotMet:
		b.WriteString("wal: time not met\n")
	default:
		fmt.Fprintf(&b, "wal: keep %d %s\n", r.ArchiveKeep, r.ArchiveType)
	}
	for _, a := range r.Archive {
		switch {
		case a.RemoveAll:
			fmt.Fprintf(&b, "%s: remove all\n", a.ID)
		case a.KeepAll:
			fmt.Fprintf(&b, "%s: keep all\n", a.ID)
		default:
			fmt.Fprintf(&b, "%s: from %s (%d)", a.ID, a.From[16:], pos[a.FromLabel])
			for _, rg := range a.Ranges {
				fmt.Fprintf(&b, " +%s-%s (%d)", rg.Start[16:], rg.Stop[16:], pos[rg.Label])
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestPlan(t *testing.T) {
	cases := []struct {
		name  string
		chain string
		p     Policy
		want  string
	}{
		{"nothing set", "F I D", Policy{},
			"wal: not set\n"},
		{"full count keeps all", "F I F I", Policy{HasFull: true, Full: 2},
			"wal: keep 2 full\n15-1: from 00000002 (0) +\n"},
		{"full count with dependants", "F I D I F I F", Policy{HasFull: true, Full: 2},
			"expire full backup set: 0,1,2,3\nwal: keep 2 full\n15-1: from 0000000A (4)\n"},
		{"full count 1", "F I F D I F", Policy{HasFull: true, Full: 1},
			"expire full backup set: 0,1\nexpire full backup set: 2,3,4\nwal: keep 1 full\n15-1: from 0000000C (5)\n"},
		{"diff count", "F D I D I D", Policy{HasFull: true, Full: 9, HasDiff: true, Diff: 2},
			"expire diff backup set: 1,2\nwal: keep 9 full\n15-1: keep all\n"},
		{"diff count counts fulls", "F D F D D", Policy{HasFull: true, Full: 9, HasDiff: true, Diff: 2},
			"expire diff backup set: 1\nwal: keep 9 full\n15-1: keep all\n"},
		{"diff counts only what full retention left", "F D F D D", Policy{HasFull: true, Full: 1, HasDiff: true, Diff: 2},
			"expire full backup set: 0,1\nwal: keep 1 full\n15-1: from 00000006 (2)\n"},
		{"archive retention diff", "F D I D I", Policy{HasFull: true, Full: 9, HasArchive: true, Archive: 1, ArchiveType: "diff"},
			"wal: keep 1 diff\n15-1: from 00000008 (3) +00000002-00000003 (0) +00000004-00000005 (1) +00000006-00000007 (2)\n"},
		{"archive retention incr", "F I I I", Policy{HasFull: true, Full: 9, HasArchive: true, Archive: 2, ArchiveType: "incr"},
			"wal: keep 2 incr\n15-1: from 00000006 (2) +00000002-00000003 (0) +00000004-00000005 (1)\n"},
		{"archive retention larger than backups", "F I", Policy{HasFull: true, Full: 9, HasArchive: true, Archive: 3},
			"wal: keep 3 full\n15-1: keep all\n"},
		{"archive diff defaults to retention-diff", "F D D", Policy{HasDiff: true, Diff: 5, ArchiveType: "diff"},
			"wal: keep 5 diff\n15-1: keep all\n"},
		{"time: newest full older than window stays", "F@40 I@35 F@20 I@15 F@3 I@1", Policy{HasFull: true, Full: 10, FullTime: true},
			"expire time-based backup set: 0,1\nwal: keep 2 full\n15-1: from 00000006 (2) +\n"},
		{"time: not met", "F@5 I@4 F@2", Policy{HasFull: true, Full: 10, FullTime: true},
			"wal: time not met\n"},
		{"time: met, nothing to expire", "F@20 I@4 F@2", Policy{HasFull: true, Full: 10, FullTime: true},
			"wal: keep 2 full\n15-1: from 00000002 (0) +\n"},
		{"adhoc single", "F I F I", Policy{Set: "@3"},
			"expire adhoc backup: 3\nlatest expired: 3\nwal: not set\n"},
		{"adhoc with dependants", "F D I F I", Policy{Set: "@1", HasFull: true, Full: 1},
			"expire adhoc backup set: 1,2\nwal: keep 1 full\n15-1: from 00000008 (3) +00000002-00000003 (0)\n"},
		{"adhoc full with another full", "F I F", Policy{Set: "@0"},
			"expire adhoc backup set: 0,1\nwal: not set\n"},
		{"old database without backups", "F#1 I#1 F#2 I#2", Policy{HasFull: true, Full: 1},
			"expire full backup set: 0,1\nwal: keep 1 full\n15-1: remove all\n16-2: from 00000006 (2)\n"},
		{"old database keeps its backups' WAL", "F#1 F#2 I#2", Policy{HasFull: true, Full: 2},
			"wal: keep 2 full\n15-1: keep all\n16-2: keep all\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bi := chain(t, c.chain)
			if strings.HasPrefix(c.p.Set, "@") {
				var i int
				fmt.Sscan(c.p.Set[1:], &i)
				c.p.Set = bi.Current[i].Label
			}
			before := fmt.Sprint(bi)
			r, err := Plan(bi, archiveOf(bi), c.p, now)
			if err != nil {
				t.Fatal(err)
			}
			got := render(bi, r)
			// A range list written as "+" alone means "no ranges".
			want := strings.ReplaceAll(c.want, " +\n", "\n")
			if got != want {
				t.Errorf("plan for %q %+v:\n got:\n%s want:\n%s", c.chain, c.p, got, want)
			}
			if fmt.Sprint(bi) != before {
				t.Error("Plan modified backup.info")
			}
		})
	}
}

func TestPlanNeverExpiresEverything(t *testing.T) {
	// Whatever the counts, count-based retention of at least one full
	// keeps the newest full and everything after it.
	for _, desc := range []string{"F", "F I", "F D I F", "F F F F", "F I D I F D I"} {
		for keep := int64(1); keep <= 4; keep++ {
			bi := chain(t, desc)
			r, err := Plan(bi, archiveOf(bi), Policy{HasFull: true, Full: keep, HasDiff: true, Diff: keep}, now)
			if err != nil {
				t.Fatal(err)
			}
			gone := r.Labels()
			lastFull := -1
			for i, c := range bi.Current {
				if c.Type == repo.BackupTypeFull {
					lastFull = i
				}
			}
			if gone[bi.Current[lastFull].Label] || gone[bi.Current[len(bi.Current)-1].Label] {
				t.Errorf("%q keep %d: expired the newest full or the newest backup: %v", desc, keep, gone)
			}
			// Every expired backup's dependants are expired too.
			for _, c := range bi.Current {
				if c.Prior != "" && gone[c.Prior] && !gone[c.Label] {
					t.Errorf("%q keep %d: %s kept but its prior %s expired", desc, keep, c.Label, c.Prior)
				}
			}
		}
	}
}

func TestPlanSetRefusals(t *testing.T) {
	bi := chain(t, "F I")
	_, err := Plan(bi, nil, Policy{Set: "20990101-000000F"}, now)
	var se *SetError
	if !errors.As(err, &se) || !errors.Is(err, ErrSetMissing) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing set: %v", err)
	}
	_, err = Plan(bi, nil, Policy{Set: bi.Current[0].Label}, now)
	if !errors.Is(err, ErrLastFull) {
		t.Errorf("only full: %v", err)
	}
	// The only full of an older database may go.
	bi = chain(t, "F#1 F#2")
	r, err := Plan(bi, nil, Policy{Set: bi.Current[0].Label}, now)
	if err != nil || len(r.Expire) != 1 {
		t.Errorf("old database's only full: %v %+v", err, r)
	}
}

func TestPlanHistoryMismatch(t *testing.T) {
	bi := chain(t, "F I F")
	ai := archiveOf(bi)
	ai.History[0].SystemID = 8
	if _, err := Plan(bi, ai, Policy{HasFull: true, Full: 1}, now); !errors.Is(err, ErrHistoryMismatch) {
		t.Errorf("got %v", err)
	}
	ai = archiveOf(bi)
	ai.History = append(ai.History, repo.ArchiveHistory{ID: 2, SystemID: 7, Version: "16"})
	if _, err := Plan(bi, ai, Policy{HasFull: true, Full: 1}, now); !errors.Is(err, ErrHistoryMismatch) {
		t.Errorf("got %v", err)
	}
}

func TestNeeded(t *testing.T) {
	a := ArchiveID{From: "000000010000000000000010", Ranges: []Range{{Start: "000000010000000000000002", Stop: "000000010000000000000003"}}}
	for seg, want := range map[string]bool{
		"000000010000000000000001": false,
		"000000010000000000000002": true,
		"000000010000000000000003": true,
		"000000010000000000000004": false,
		"00000001000000000000000F": false,
		"000000010000000000000010": true,
		"000000020000000000000001": true, // a later timeline sorts after
	} {
		if a.Needed(seg) != want {
			t.Errorf("Needed(%s) = %v", seg, !want)
		}
	}
	if !(ArchiveID{KeepAll: true}).Needed("000000010000000000000001") {
		t.Error("KeepAll must keep everything")
	}
}
