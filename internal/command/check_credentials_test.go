package command

import (
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/credentials"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

func TestCredentialWarnings(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	webID := credentials.Health{KeyType: "web-id", TokenFile: "/t/token", TokenFileMod: now.Add(-10 * time.Minute),
		TokenIssued: now.Add(-10 * time.Minute), TokenExpiry: now.Add(50 * time.Minute), Expiry: now.Add(50 * time.Minute)}
	stale := webID
	stale.TokenFileMod = now.Add(-2 * time.Hour)
	expired := webID
	expired.TokenIssued, expired.TokenExpiry = now.Add(-2*time.Hour), now.Add(-time.Hour)
	early := webID
	early.Expiry = now.Add(2 * time.Hour)
	session := credentials.Health{KeyType: "shared", Expiry: now.Add(30 * time.Minute)}
	static := credentials.Health{KeyType: "shared"}
	cases := []struct {
		name    string
		h       credentials.Health
		longest time.Duration
		want    []string
	}{
		{"healthy", webID, 20 * time.Minute, nil},
		{"stale token file", stale, 0, []string{"was last written 2h0m0s ago, longer than the lifetime of its token (1h0m0s)"}},
		{"expired token", expired, 0, []string{"expired at 2026-12-06T11:00:00Z"}},
		{"token before credentials", early, 0, []string{"expires at 2026-12-06T12:50:00Z, before the credentials it bought (2026-12-06T14:00:00Z)"}},
		{"short credentials", webID, 3 * time.Hour, []string{"the credentials last 50m0s but a backup of stanza 'main' takes up to 3h0m0s", "pgbr refreshes them"}},
		{"static session token", session, time.Hour, []string{"cannot be refreshed"}},
		{"static keys never expire", static, 10 * time.Hour, nil},
	}
	for _, c := range cases {
		got := credentialWarnings(c.h, now, c.longest, "main")
		if len(c.want) == 0 && len(got) != 0 {
			t.Errorf("%s: unexpected warnings %q", c.name, got)
			continue
		}
		all := strings.Join(got, "\n")
		for _, w := range c.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: warnings %q lack %q", c.name, got, w)
			}
		}
	}
}

func TestLongestBackup(t *testing.T) {
	b := &repo.BackupInfo{}
	for i, d := range []int64{7200, 60, 120, 30, 40, 50, 10} { // the 2h one is older than the last 5
		b.Current = append(b.Current, repo.BackupInfoEntry{TimestampStart: int64(i) * 10000, TimestampStop: int64(i)*10000 + d})
	}
	if got := longestBackup(b, 5); got != 120*time.Second {
		t.Fatalf("longest of the last 5: %s", got)
	}
	if got := longestBackup(&repo.BackupInfo{}, 5); got != 0 {
		t.Fatalf("no backups: %s", got)
	}
}
