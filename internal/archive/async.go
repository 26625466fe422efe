package archive

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/log"
	"github.com/pgbr-dev/pgbr/internal/pg"
	"github.com/pgbr-dev/pgbr/internal/storage/local"
)

// PushAsyncOptions is the background side of an asynchronous archive-push
// (the command holds the archive lock and opened the spool).
type PushAsyncOptions struct {
	// Push pushes one file; nil with SetupErr set when the push could not
	// be prepared (every ready file then fails with SetupErr, which its
	// .error status reports to the foreground).
	Push     *PushOptions
	SetupErr error
	Out      *local.Root // <spool>/archive/<stanza>/out
	WalDir   string      // pg_wal, holding archive_status/*.ready
	Workers  int
	Pool     Pool
	Log      *log.Logger
}

// PushAsync pushes every WAL file PostgreSQL has marked ready, writing a
// status file for each, until none is left.
func PushAsync(ctx context.Context, o *PushAsyncOptions) error {
	out := o.Out
	for round := 0; ; round++ {
		ready, err := readyWAL(o.WalDir)
		if err != nil {
			return err
		}
		readySet := map[string]bool{}
		for _, r := range ready {
			readySet[r] = true
		}
		// Status files of WAL PostgreSQL no longer waits for are stale.
		if round == 0 {
			if ents, err := out.ReadDir("."); err == nil {
				for _, en := range ents {
					n := strings.TrimSuffix(strings.TrimSuffix(en.Name(), ".ok"), ".error")
					if !readySet[n] {
						out.Remove(en.Name())
					}
				}
			}
		}
		var todo []string
		for _, r := range ready {
			if _, err := out.Lstat(r + ".ok"); err == nil {
				continue
			}
			if _, err := out.Lstat(r + ".error"); err == nil && round > 0 {
				continue // failed in this run: the foreground reports it
			}
			todo = append(todo, r)
		}
		if len(todo) == 0 {
			return nil
		}
		o.Log.Infof("push %d WAL file(s) to the archive: %s%s", len(todo), todo[0],
			map[bool]string{true: "...", false: ""}[len(todo) > 1])
		// A status file that cannot be written leaves the foreground
		// waiting until archive-timeout: the first such error ends this
		// process with it (in the async log).
		// With fewer files than workers, a spare core hashes a segment
		// while another compresses it.
		overlap := len(todo) < o.Workers
		err = o.Pool(o.Workers, len(todo), func(_ context.Context, _, i int) error {
			name := todo[i]
			err := o.SetupErr
			if err == nil {
				err = errs.Guard(o.Log.Debugf, func() error { return push(ctx, o.Push, filepath.Join(o.WalDir, name), overlap) })
			}
			if err == nil {
				return logStatusErr(ctx, o.Log, WriteStatus(out, name+".ok", ""))
			}
			o.Log.Warnf("could not push WAL file %s to the archive: [%03d] %s", name, errs.CodeOf(err), err.Error())
			return logStatusErr(ctx, o.Log, WriteError(out, name, err))
		})
		if err != nil {
			return err
		}
	}
}

// logStatusErr logs a failed status file write (the foreground cannot
// report it) and returns it.
func logStatusErr(ctx context.Context, l *log.Logger, err error) error {
	if err != nil && ctx.Err() == nil {
		l.Errorf(int(errs.CodeOf(err)), "%v", err)
	}
	return err
}

// GetAsyncOptions is the background side of an asynchronous archive-get
// (the command holds the archive lock, opened the spool and read
// pg_control).
type GetAsyncOptions struct {
	// Get fetches one segment; nil with SetupErr set when the fetch could
	// not be prepared (the requested segment then fails with SetupErr).
	Get      *GetOptions
	SetupErr error
	In       *local.Root // <spool>/archive/<stanza>/in
	Name     string      // the requested segment
	// SegmentSize is the cluster's WAL segment size; QueueMax
	// (archive-get-queue-max) bounds the bytes fetched ahead.
	SegmentSize uint32
	QueueMax    int64
	Workers     int
	Pool        Pool
	Log         *log.Logger
}

// GetAsync fetches the requested segment and the next ones into the
// spool: the requested one's outcome is a status file when it is not
// fetched (<name>.ok: in no repository; <name>.error: failed); later
// segments after the first missing one are not queued.
func GetAsync(ctx context.Context, o *GetAsyncOptions) error {
	in, name := o.In, o.Name
	if err := CheckSpoolName(name); err != nil {
		return err
	}
	count := int(o.QueueMax / int64(o.SegmentSize))
	count = max(count, 1)
	// Segments before the requested one were consumed (or are not wanted).
	if ents, err := in.ReadDir("."); err == nil {
		for _, en := range ents {
			if len(en.Name()) >= 24 && en.Name()[:24] < name {
				in.Remove(en.Name())
			}
		}
	}
	queue := []string{name}
	for next := name; len(queue) < count; {
		var err error
		if next, err = pg.WalSegmentNext(next, o.SegmentSize); err != nil {
			break
		}
		queue = append(queue, next)
	}
	var mu sync.Mutex
	missing := ""
	// A signal fails the process (segments fetched so far stay in the
	// spool); the pool says so.
	return o.Pool(o.Workers, len(queue), func(_ context.Context, _, i int) error {
		seg := queue[i]
		mu.Lock()
		stop := missing != "" && seg > missing
		mu.Unlock()
		if stop {
			return nil
		}
		if _, err := in.Lstat(seg); err == nil {
			return nil
		}
		err := o.SetupErr
		if err == nil {
			err = errs.Guard(o.Log.Debugf, func() error { return Get(ctx, o.Get, seg, in, seg) })
		}
		var nf *NotFoundError
		switch {
		case err == nil:
		case errors.As(err, &nf):
			// Not in the archive: only the requested segment's answer
			// matters; later ones are simply not queued.
			mu.Lock()
			if missing == "" || seg < missing {
				missing = seg
			}
			mu.Unlock()
			if seg == name {
				return logStatusErr(ctx, o.Log, WriteStatus(in, seg+".ok", ""))
			}
		default:
			o.Log.Warnf("could not get WAL file %s from the archive: [%03d] %s", seg, errs.CodeOf(err), err.Error())
			if seg == name {
				return logStatusErr(ctx, o.Log, WriteError(in, seg, err))
			}
		}
		return nil
	})
}
