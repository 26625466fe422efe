package command

import (
	"fmt"
	"time"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/credentials"
	"github.com/pgbr-dev/pgbr/internal/repo"
)

// checkCredentials reports, for an S3 repository whose info files were
// just read (so S3 accepted the credentials), where the credentials come
// from, whom S3 accepted and how long they last, and warns about what will
// make a later command fail: a token file nobody rotates, a web identity
// token that expires before the credentials it bought, credentials that
// do not last as long as this stanza's backups take. Never a secret: the
// access key id is shortened, tokens are only decoded for their times.
func checkCredentials(e *Env, r *repoT, b *repo.BackupInfo) {
	v, ok := e.s3Creds.Load(r.Key)
	if !ok {
		return
	}
	cache := v.(*credentials.Cache)
	now := e.Now()
	h := cache.Health()
	name := r.Name()
	e.Log.Infof("%s: S3 credentials from %s", name, h.Source)
	if h.TokenFile != "" {
		if h.TokenFileErr != "" {
			e.Log.Warnf("%s: cannot read token file %s: %s", name, h.TokenFile, h.TokenFileErr)
		} else {
			msg := fmt.Sprintf("%s: token file %s written %s ago", name, h.TokenFile, fmtDur(now.Sub(h.TokenFileMod)))
			if !h.TokenExpiry.IsZero() {
				msg += fmt.Sprintf(", token expires at %s (%s)", fmtUTC(h.TokenExpiry), fmtIn(now, h.TokenExpiry))
			}
			if l := h.TokenLifetime(); l > 0 {
				msg += ", lifetime " + fmtDur(l)
			}
			if h.TokenSubject != "" {
				msg += ", subject " + h.TokenSubject
			}
			if h.TokenIssuer != "" {
				msg += ", issuer " + h.TokenIssuer
			}
			if h.TokenAudience != "" {
				msg += ", audience " + h.TokenAudience
			}
			e.Log.Infof("%s", msg)
		}
	}
	accepted := fmt.Sprintf("%s: S3 accepted key %s", name, h.AccessKeyPrefix())
	if id, err := cache.CallerIdentity(e.Ctx); err != nil {
		accepted += " (identity not reported: " + err.Error() + ")"
	} else if id != "" {
		accepted += ", identity " + id
	}
	if h.Expiry.IsZero() {
		accepted += ", credentials do not expire"
	} else {
		accepted += fmt.Sprintf(", credentials expire at %s (%s)", fmtUTC(h.Expiry), fmtIn(now, h.Expiry))
	}
	e.Log.Infof("%s", accepted)

	for _, w := range credentialWarnings(h, now, longestBackup(b, 5), e.Cfg.String(config.Stanza)) {
		e.Log.Warnf("%s: %s", name, w)
	}
}

// credentialWarnings lists what will make a later command fail: a token
// file that is no longer rotated, a web identity token that expires before
// the credentials it bought, credentials that last less than the longest
// recent backup.
func credentialWarnings(h credentials.Health, now time.Time, longest time.Duration, stanza string) []string {
	var w []string
	if l := h.TokenLifetime(); l > 0 && !h.TokenFileMod.IsZero() && now.Sub(h.TokenFileMod) > l {
		w = append(w, fmt.Sprintf("token file %s was last written %s ago, longer than the lifetime of its token (%s): is it still being rotated?",
			h.TokenFile, fmtDur(now.Sub(h.TokenFileMod)), fmtDur(l)))
	}
	if !h.TokenExpiry.IsZero() && !h.TokenExpiry.After(now) {
		w = append(w, fmt.Sprintf("the token in %s expired at %s: the next credential refresh will fail unless the file is replaced",
			h.TokenFile, fmtUTC(h.TokenExpiry)))
	} else if h.KeyType == credentials.KeyTypeWebID && !h.TokenExpiry.IsZero() && !h.Expiry.IsZero() && h.TokenExpiry.Before(h.Expiry) {
		w = append(w, fmt.Sprintf("the web identity token in %s expires at %s, before the credentials it bought (%s): refreshing them needs a newer token in the file",
			h.TokenFile, fmtUTC(h.TokenExpiry), fmtUTC(h.Expiry)))
	}
	if !h.Expiry.IsZero() && longest > 0 && h.Expiry.Sub(now) < longest {
		how := "pgbr refreshes them during a backup, which needs their source to keep working"
		if h.KeyType == credentials.KeyTypeShared {
			how = "a static session token cannot be refreshed: such a backup will fail"
		}
		w = append(w, fmt.Sprintf("the credentials last %s but a backup of stanza '%s' takes up to %s (last backups): %s",
			fmtDur(h.Expiry.Sub(now)), stanza, fmtDur(longest), how))
	}
	return w
}

// longestBackup is the longest duration of the last n backups.
func longestBackup(b *repo.BackupInfo, n int) time.Duration {
	var longest time.Duration
	for i := len(b.Current) - 1; i >= 0 && i >= len(b.Current)-n; i-- {
		c := b.Current[i]
		if d := time.Duration(c.TimestampStop-c.TimestampStart) * time.Second; d > longest {
			longest = d
		}
	}
	return longest
}

func fmtUTC(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// fmtDur rounds to the second ("1h2m3s").
func fmtDur(d time.Duration) string { return d.Round(time.Second).String() }

func fmtIn(now, t time.Time) string {
	if t.After(now) {
		return "in " + fmtDur(t.Sub(now))
	}
	return fmtDur(now.Sub(t)) + " ago"
}
