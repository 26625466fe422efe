package command

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/credentials"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// Every command run leaves a small JSON state file,
// <lock-path>/<stanza>-<command>.metrics.json (written to a temporary name
// and renamed, so a reader never sees half of it), which `pgbr exporter`
// serves as metrics: when the run ended, how long it took, its result (the
// exit code), the repository bytes and files it read and wrote (counted by a
// storage wrapper, so no command needs to count), and the credential
// statistics of each S3 repository it used.

// RunState is the content of a state file.
type RunState struct {
	Stanza          string           `json:"stanza"`
	Command         string           `json:"command"`
	Start           int64            `json:"start"` // unix seconds
	End             int64            `json:"end"`
	DurationSeconds float64          `json:"duration_seconds"`
	Result          int              `json:"result"` // exit code, 0 = success
	BytesRead       int64            `json:"bytes_read"`
	BytesWritten    int64            `json:"bytes_written"`
	FilesRead       int64            `json:"files_read"`
	FilesWritten    int64            `json:"files_written"`
	Credentials     []CredentialStat `json:"credentials,omitempty"`
}

// CredentialStat is one S3 repository's credential cache counters.
type CredentialStat struct {
	Repo          string `json:"repo"`
	KeyType       string `json:"key_type"`
	Role          string `json:"role"`
	Refreshes     int    `json:"refreshes"`
	Failures      int    `json:"failures"`
	Invalidations int    `json:"invalidations"`
	LastExpiry    int64  `json:"last_expiry"` // unix seconds, 0 = none
}

// runCounters counts repository I/O of one run.
type runCounters struct {
	bytesRead, bytesWritten, filesRead, filesWritten atomic.Int64
}

type credRef struct {
	repo, keyType, role string
	cache               *credentials.Cache
}

// credRegistry remembers the credential caches the run opened.
type credRegistry struct {
	mu   sync.Mutex
	refs []credRef
}

func (e *Env) noteCreds(key int, keyType, role string, c *credentials.Cache) {
	e.creds.mu.Lock()
	defer e.creds.mu.Unlock()
	e.creds.refs = append(e.creds.refs, credRef{repo: "repo" + strconv.Itoa(key), keyType: keyType, role: role, cache: c})
}

// noStateCommands leave no state file.
var noStateCommands = map[string]bool{"help": true, "version": true, "exporter": true}

// RunStatePath is where the state file of a stanza's command lives.
func RunStatePath(lockPath, stanza, command string) string {
	return filepath.Join(lockPath, stanza+"-"+command+".metrics.json")
}

// writeRunState saves the state of the run that started at start and
// ended with err. Failures are logged at debug level only: metrics never
// change a command's outcome or output.
func (e *Env) writeRunState(start time.Time, err error) {
	cmd := e.Cfg.Command()
	stanza := e.Cfg.String(config.Stanza)
	if noStateCommands[cmd] || stanza == "" {
		return
	}
	switch e.Cfg.Role() {
	case "", "main":
	case "async":
		cmd += "-async"
	default:
		return
	}
	end := e.Now()
	st := RunState{
		Stanza: stanza, Command: cmd, Start: start.Unix(), End: end.Unix(),
		DurationSeconds: end.Sub(start).Seconds(), Result: resultCode(err),
		BytesRead: e.counters.bytesRead.Load(), BytesWritten: e.counters.bytesWritten.Load(),
		FilesRead: e.counters.filesRead.Load(), FilesWritten: e.counters.filesWritten.Load(),
	}
	e.creds.mu.Lock()
	for _, c := range e.creds.refs {
		s := c.cache.Stats()
		cs := CredentialStat{Repo: c.repo, KeyType: c.keyType, Role: c.role, Refreshes: s.Refreshes,
			Failures: s.Failures, Invalidations: s.Invalidations}
		if !s.LastExpiry.IsZero() {
			cs.LastExpiry = s.LastExpiry.Unix()
		}
		st.Credentials = append(st.Credentials, cs)
	}
	e.creds.mu.Unlock()
	data, _ := json.Marshal(st)
	lockPath := e.Cfg.String(config.LockPath)
	if werr := writeStateFile(RunStatePath(lockPath, stanza, cmd), append(data, '\n')); werr != nil {
		e.Log.Debugf("unable to write metrics state file: %v", werr)
	}
}

func resultCode(err error) int {
	var ee *ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	default:
		return int(errs.CodeOf(err))
	}
}

// writeStateFile writes through a temporary name and renames.
func writeStateFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o770); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o640)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// ReadRunState loads a state file.
func ReadRunState(path string) (*RunState, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st RunState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// countingStorage counts the bytes and files a run moves through a
// repository. It forwards every method (and SyncAll) unchanged.
type countingStorage struct {
	storage.Storage
	c *runCounters
}

func (s countingStorage) SyncAll(ctx context.Context) error { return storage.SyncAll(ctx, s.Storage) }

// CanCommitAs forwards the capability archive-push looks for (its writers
// then forward CommitAs).
func (s countingStorage) CanCommitAs() bool {
	c, ok := s.Storage.(interface{ CanCommitAs() bool })
	return ok && c.CanCommitAs()
}

func (s countingStorage) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	r, err := s.Storage.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	s.c.filesRead.Add(1)
	return counted(r, s.c), nil
}

func (s countingStorage) OpenRange(ctx context.Context, p string, off, n int64) (io.ReadCloser, error) {
	r, err := s.Storage.OpenRange(ctx, p, off, n)
	if err != nil {
		return nil, err
	}
	s.c.filesRead.Add(1)
	return countingReader{r, s.c}, nil
}

func (s countingStorage) Create(ctx context.Context, p string, o storage.CreateOptions) (storage.Writer, error) {
	w, err := s.Storage.Create(ctx, p, o)
	if err != nil {
		return nil, err
	}
	return &countingWriter{Writer: w, c: s.c}, nil
}

type countingReader struct {
	io.ReadCloser
	c *runCounters
}

func (r countingReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	r.c.bytesRead.Add(int64(n))
	return n, err
}

// fileReader is what a local file's reader also does: readers of the
// repository use it to size their buffer and to read a large manifest
// twice instead of holding it (internal/repo).
type fileReader interface {
	io.ReadCloser
	io.Seeker
	Stat() (fs.FileInfo, error)
}

// countingFileReader counts and keeps Seek and Stat.
type countingFileReader struct {
	countingReader
	f fileReader
}

func (r countingFileReader) Seek(off int64, whence int) (int64, error) { return r.f.Seek(off, whence) }
func (r countingFileReader) Stat() (fs.FileInfo, error)                { return r.f.Stat() }

func counted(r io.ReadCloser, c *runCounters) io.ReadCloser {
	if f, ok := r.(fileReader); ok {
		return countingFileReader{countingReader{r, c}, f}
	}
	return countingReader{r, c}
}

type countingWriter struct {
	storage.Writer
	c *runCounters
	n int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.Writer.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) Commit() error {
	err := w.Writer.Commit()
	if err == nil {
		w.c.filesWritten.Add(1)
		w.c.bytesWritten.Add(w.n)
	}
	return err
}

// CommitAs is Commit under another name, when the storage can (see
// countingStorage.CanCommitAs).
func (w *countingWriter) CommitAs(p string) error {
	c, ok := w.Writer.(interface{ CommitAs(string) error })
	if !ok {
		w.Writer.Abort()
		return errs.New(errs.Assert, "storage writer cannot commit under another name")
	}
	err := c.CommitAs(p)
	if err == nil {
		w.c.filesWritten.Add(1)
		w.c.bytesWritten.Add(w.n)
	}
	return err
}
