package command

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/pgbr-dev/pgbr/internal/lock"
)

// infoBackupLock reports whether a backup/expire holds the stanza's backup
// lock, with its progress (hundredths of a percent) when the lock file has
// one. It reads both layouts: <stanza>-backup.lock (pgbr, pgBackRest up to
// 2.54: "pctCplt", and from 2.48 also "sz"/"szCplt") and the per-repository
// <stanza>-backup-<key>.lock of pgBackRest 2.55 and later, whose sizes are
// summed over the repositories as pgBackRest's info does. As pgBackRest
// does, a held lock whose content cannot be read counts as not held.
func infoBackupLock(lockPath, stanza string) (bool, *uint64) {
	files := []string{filepath.Join(lockPath, stanza+"-"+string(lock.Backup)+".lock")}
	perRepo, _ := filepath.Glob(filepath.Join(lockPath, stanza+"-"+string(lock.Backup)+"-*.lock"))
	sort.Strings(perRepo)
	files = append(files, perRepo...)
	held := false
	var pct *uint64
	var size, done uint64
	sized := false
	for _, path := range files {
		if !lock.HeldFile(path) {
			continue
		}
		var body lockBody
		if !readLockBody(path, &body) {
			continue
		}
		held = true
		if body.Size != nil && *body.Size > 0 {
			sized = true
			size += *body.Size
			if body.SizeCpl != nil {
				done += min(*body.SizeCpl, *body.Size)
			}
		} else if body.PctCplt != nil && pct == nil {
			p := *body.PctCplt
			pct = &p
		}
	}
	if !held {
		return false, nil
	}
	if sized {
		p := lock.Percent(done, size)
		return true, &p
	}
	return true, pct
}

// lockBody is the JSON body of a stanza lock file.
type lockBody struct {
	ExecID  *string `json:"execId"`
	PctCplt *uint64 `json:"pctCplt"`
	Pid     *int64  `json:"pid"`
	Size    *uint64 `json:"sz"`
	SizeCpl *uint64 `json:"szCplt"`
}

// lockReread waits before a lock body is read again (tests replace it).
var lockReread = func(int) { time.Sleep(time.Millisecond) }

// readLockBody reads a held lock's body. The holder rewrites it in place
// while it runs (pgBackRest truncates it first, pgbr overwrites it), so a
// read can meet it empty or half rewritten: it is read again a few times,
// a millisecond apart, before it counts as unreadable.
func readLockBody(path string, body *lockBody) bool {
	for try := 0; ; try++ {
		*body = lockBody{}
		data, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		if json.Unmarshal(data, body) == nil && body.ExecID != nil && body.Pid != nil {
			return true
		}
		if try == 4 {
			return false
		}
		lockReread(try)
	}
}
