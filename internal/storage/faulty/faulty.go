// Package faulty wraps a storage.Storage and injects faults on a
// programmable schedule: fail the Nth call of an operation, or each call
// with a seeded probability. Faults are errors, ENOSPC, short writes, a
// dropped connection (a reader ending in io.ErrUnexpectedEOF), an operation
// that takes effect but reports an error (a lost reply), and slow calls.
// Tests use it to prove that every failure surfaces and leaves nothing
// half-written behind.
package faulty

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pgbr-dev/pgbr/internal/storage"
)

// Op names an operation faults apply to.
type Op string

const (
	OpOpen       Op = "open"   // Open and OpenRange
	OpRead       Op = "read"   // every Read of a reader from Open/OpenRange
	OpCreate     Op = "create" // Create
	OpWrite      Op = "write"  // every Write of a writer from Create
	OpCommit     Op = "commit" // Writer.Commit
	OpList       Op = "list"
	OpStat       Op = "stat"   // Stat and Exists
	OpRemove     Op = "remove" // Remove and RemoveAll
	OpPathCreate Op = "pathcreate"
	OpSymlink    Op = "symlink"
	OpSync       Op = "sync" // SyncAll
)

var ops = []Op{OpOpen, OpRead, OpCreate, OpWrite, OpCommit, OpList, OpStat, OpRemove, OpPathCreate, OpSymlink, OpSync}

// Kind is what an injected fault does.
type Kind string

const (
	// KindError fails the call with an error (nothing done).
	KindError Kind = "error"
	// KindENOSPC fails the call with syscall.ENOSPC (a Write stores half
	// of its bytes first, as a filling disk does).
	KindENOSPC Kind = "enospc"
	// KindShort makes a Write store half of its bytes and return
	// io.ErrShortWrite.
	KindShort Kind = "short"
	// KindDrop makes a reader (Open: from its second Read; Read: at once)
	// fail with io.ErrUnexpectedEOF, as a dropped connection.
	KindDrop Kind = "drop"
	// KindAfter performs the call, then reports an error: the reply was
	// lost (Commit, Remove, PathCreate, Symlink, SyncAll).
	KindAfter Kind = "after"
	// KindSlow delays the call by Delay, then performs it.
	KindSlow Kind = "slow"
)

var kinds = []Kind{KindError, KindENOSPC, KindShort, KindDrop, KindAfter, KindSlow}

// Fault is one schedule entry.
type Fault struct {
	Op   Op
	Kind Kind
	// Nth fails the Nth call (1-based) of Op (among calls matching Path);
	// 0 uses Prob instead.
	Nth int
	// Prob fails each matching call with this probability (seeded).
	Prob float64
	// Path limits the fault to calls whose path contains this substring.
	Path string
	// Delay is the delay of KindSlow.
	Delay time.Duration

	seen int // matching calls so far
}

// ErrInjected is wrapped by every injected error.
var ErrInjected = errors.New("injected fault")

// Error is an injected failure.
type Error struct {
	Op   Op
	Kind Kind
	Path string
	N    int   // call number of Op
	Err  error // the cause reported (ENOSPC, io.ErrShortWrite, ...)
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s '%s': %v (injected %s fault, call %d)", e.Op, e.Path, e.Err, e.Kind, e.N)
}

// Unwrap gives both the cause and ErrInjected to errors.Is.
func (e *Error) Unwrap() []error { return []error{e.Err, ErrInjected} }

// Injection records one injected fault.
type Injection struct {
	Op   Op
	Kind Kind
	Path string
	N    int
}

func (i Injection) String() string {
	return fmt.Sprintf("%s %s call %d '%s'", i.Kind, i.Op, i.N, i.Path)
}

// Storage is the fault-injecting wrapper.
type Storage struct {
	inner storage.Storage

	mu       sync.Mutex
	faults   []*Fault
	calls    map[Op]int
	rng      *rand.Rand
	injected []Injection
	// OnInject, when set, is called (outside the lock) for every injected
	// fault.
	OnInject func(Injection)
}

// New wraps inner; seed drives the probabilistic faults.
func New(inner storage.Storage, seed int64, faults ...Fault) *Storage {
	s := &Storage{inner: inner, calls: map[Op]int{}, rng: rand.New(rand.NewSource(seed))}
	for _, f := range faults {
		s.Add(f)
	}
	return s
}

// Add schedules one more fault.
func (s *Storage) Add(f Fault) {
	if f.Kind == "" {
		f.Kind = KindError
	}
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// Clear removes every scheduled fault (counts are kept).
func (s *Storage) Clear() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// Injected lists the faults injected so far.
func (s *Storage) Injected() []Injection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Injection(nil), s.injected...)
}

// Calls returns how many calls of op were made.
func (s *Storage) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Inner returns the wrapped storage.
func (s *Storage) Inner() storage.Storage { return s.inner }

// check counts a call and returns the fault to inject (nil: none).
func (s *Storage) check(op Op, path string) *Error {
	s.mu.Lock()
	s.calls[op]++
	n := s.calls[op]
	var hit *Fault
	for _, f := range s.faults {
		if f.Op != op || (f.Path != "" && !strings.Contains(path, f.Path)) {
			continue
		}
		f.seen++
		if (f.Nth > 0 && f.seen == f.Nth) || (f.Nth == 0 && f.Prob > 0 && s.rng.Float64() < f.Prob) {
			if hit == nil {
				hit = f
			}
		}
	}
	if hit == nil {
		s.mu.Unlock()
		return nil
	}
	in := Injection{Op: op, Kind: hit.Kind, Path: path, N: n}
	s.injected = append(s.injected, in)
	cb := s.OnInject
	delay := hit.Delay
	s.mu.Unlock()
	if cb != nil {
		cb(in)
	}
	e := &Error{Op: op, Kind: hit.Kind, Path: path, N: n}
	switch hit.Kind {
	case KindENOSPC:
		e.Err = syscall.ENOSPC
	case KindShort:
		e.Err = io.ErrShortWrite
	case KindDrop:
		e.Err = io.ErrUnexpectedEOF
	case KindSlow:
		if delay <= 0 {
			delay = 100 * time.Millisecond
		}
		time.Sleep(delay)
		return nil
	default:
		e.Err = errors.New("injected I/O error")
	}
	return e
}

func (s *Storage) Root() string            { return s.inner.Root() }
func (s *Storage) Full(path string) string { return s.inner.Full(path) }

func (s *Storage) Open(ctx context.Context, path string) (io.ReadCloser, error) {
	return s.open(path, func() (io.ReadCloser, error) { return s.inner.Open(ctx, path) })
}

func (s *Storage) OpenRange(ctx context.Context, path string, offset, length int64) (io.ReadCloser, error) {
	return s.open(path, func() (io.ReadCloser, error) { return s.inner.OpenRange(ctx, path, offset, length) })
}

func (s *Storage) open(path string, open func() (io.ReadCloser, error)) (io.ReadCloser, error) {
	f := s.check(OpOpen, path)
	if f != nil && f.Kind != KindDrop {
		return nil, f
	}
	r, err := open()
	if err != nil {
		return nil, err
	}
	rd := &reader{s: s, r: r, path: path}
	if f != nil {
		rd.dropAfter = 1
	}
	return rd, nil
}

type reader struct {
	s         *Storage
	r         io.ReadCloser
	path      string
	reads     int
	dropAfter int // >0: fail from this many reads on
	dropped   error
}

func (r *reader) Read(p []byte) (int, error) {
	if r.dropped != nil {
		return 0, r.dropped
	}
	if r.dropAfter > 0 && r.reads >= r.dropAfter {
		r.dropped = &Error{Op: OpOpen, Kind: KindDrop, Path: r.path, Err: io.ErrUnexpectedEOF}
		return 0, r.dropped
	}
	r.reads++
	if f := r.s.check(OpRead, r.path); f != nil {
		if f.Kind == KindDrop || f.Kind == KindError || f.Kind == KindAfter {
			f.Err = io.ErrUnexpectedEOF
		}
		r.dropped = f
		return 0, f
	}
	return r.r.Read(p)
}

func (r *reader) Close() error { return r.r.Close() }

func (s *Storage) Create(ctx context.Context, path string, opts storage.CreateOptions) (storage.Writer, error) {
	if f := s.check(OpCreate, path); f != nil {
		return nil, f
	}
	w, err := s.inner.Create(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	return &writer{s: s, w: w, path: path}, nil
}

type writer struct {
	s    *Storage
	w    storage.Writer
	path string
}

func (w *writer) Write(p []byte) (int, error) {
	f := w.s.check(OpWrite, w.path)
	if f == nil {
		return w.w.Write(p)
	}
	switch f.Kind {
	case KindShort, KindENOSPC:
		n, err := w.w.Write(p[:len(p)/2])
		if err != nil {
			return n, err
		}
		return n, f
	case KindAfter:
		n, err := w.w.Write(p)
		if err != nil {
			return n, err
		}
		return n, f
	}
	return 0, f
}

func (w *writer) Commit() error {
	f := w.s.check(OpCommit, w.path)
	if f == nil {
		return w.w.Commit()
	}
	if f.Kind == KindAfter {
		if err := w.w.Commit(); err != nil {
			return err
		}
		return f
	}
	w.w.Abort()
	return f
}

func (w *writer) Abort() error { return w.w.Abort() }

func (s *Storage) List(ctx context.Context, path string) ([]storage.Info, error) {
	if f := s.check(OpList, path); f != nil {
		return nil, f
	}
	return s.inner.List(ctx, path)
}

func (s *Storage) Stat(ctx context.Context, path string) (storage.Info, error) {
	if f := s.check(OpStat, path); f != nil {
		return storage.Info{}, f
	}
	return s.inner.Stat(ctx, path)
}

func (s *Storage) Exists(ctx context.Context, path string) (bool, error) {
	if f := s.check(OpStat, path); f != nil {
		return false, f
	}
	return s.inner.Exists(ctx, path)
}

// after runs do unless the fault forbids it; a KindAfter fault runs it and
// then reports the fault.
func after(f *Error, do func() error) error {
	if f == nil {
		return do()
	}
	if f.Kind == KindAfter {
		if err := do(); err != nil {
			return err
		}
	}
	return f
}

func (s *Storage) Remove(ctx context.Context, path string) error {
	return after(s.check(OpRemove, path), func() error { return s.inner.Remove(ctx, path) })
}

func (s *Storage) RemoveAll(ctx context.Context, path string) error {
	return after(s.check(OpRemove, path), func() error { return s.inner.RemoveAll(ctx, path) })
}

func (s *Storage) PathCreate(ctx context.Context, path string) error {
	return after(s.check(OpPathCreate, path), func() error { return s.inner.PathCreate(ctx, path) })
}

func (s *Storage) Symlink(ctx context.Context, target, path string) error {
	return after(s.check(OpSymlink, path), func() error { return s.inner.Symlink(ctx, target, path) })
}

// SyncAll forwards to the wrapped driver (when it syncs in batches).
func (s *Storage) SyncAll(ctx context.Context) error {
	return after(s.check(OpSync, ""), func() error { return storage.SyncAll(ctx, s.inner) })
}

// Parse reads a schedule: faults separated by ';', each a comma-separated
// list of key=value: op (required), err (kind, default error), nth, prob,
// path, delay (Go duration). "seed=N" (in any fault) sets the seed of the
// probabilistic faults. Example: "op=commit,nth=3,err=enospc;op=read,prob=0.01,err=drop,seed=7".
func Parse(spec string) (faults []Fault, seed int64, err error) {
	for _, part := range strings.Split(spec, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var f Fault
		for _, kv := range strings.Split(part, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				return nil, 0, fmt.Errorf("fault '%s': '%s' is not key=value", part, kv)
			}
			switch k {
			case "op":
				f.Op = Op(v)
				if !contains(ops, f.Op) {
					return nil, 0, fmt.Errorf("fault '%s': unknown op '%s'", part, v)
				}
			case "err", "kind":
				f.Kind = Kind(v)
				if !contains(kinds, f.Kind) {
					return nil, 0, fmt.Errorf("fault '%s': unknown kind '%s'", part, v)
				}
			case "nth":
				if _, err := fmt.Sscanf(v, "%d", &f.Nth); err != nil || f.Nth < 1 {
					return nil, 0, fmt.Errorf("fault '%s': nth must be a positive integer", part)
				}
			case "prob":
				if _, err := fmt.Sscanf(v, "%g", &f.Prob); err != nil || f.Prob <= 0 || f.Prob > 1 {
					return nil, 0, fmt.Errorf("fault '%s': prob must be in (0,1]", part)
				}
			case "path":
				f.Path = v
			case "delay":
				if f.Delay, err = time.ParseDuration(v); err != nil {
					return nil, 0, fmt.Errorf("fault '%s': %v", part, err)
				}
			case "seed":
				if _, err := fmt.Sscanf(v, "%d", &seed); err != nil {
					return nil, 0, fmt.Errorf("fault '%s': seed must be an integer", part)
				}
				continue
			default:
				return nil, 0, fmt.Errorf("fault '%s': unknown key '%s'", part, k)
			}
		}
		if f.Op == "" {
			if f.Nth == 0 && f.Prob == 0 && f.Kind == "" && f.Path == "" {
				continue // seed only
			}
			return nil, 0, fmt.Errorf("fault '%s': op is required", part)
		}
		if f.Nth == 0 && f.Prob == 0 {
			return nil, 0, fmt.Errorf("fault '%s': nth or prob is required", part)
		}
		if f.Kind == "" {
			f.Kind = KindError
		}
		faults = append(faults, f)
	}
	return faults, seed, nil
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

var (
	_ storage.Storage = (*Storage)(nil)
	_ storage.Syncer  = (*Storage)(nil)
)
