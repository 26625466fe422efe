package faulty

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/storage"
	"github.com/pgbr-dev/pgbr/internal/storage/posix"
	"github.com/pgbr-dev/pgbr/internal/storage/storagetest"
)

var ctx = context.Background()

// Without faults the wrapper is a conforming driver.
func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage { return New(posix.New(t.TempDir()), 1) })
}

// Slow calls change timing only: the suite still passes.
func TestConformanceSlow(t *testing.T) {
	var injected int
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s := New(posix.New(t.TempDir()), 7)
		for _, op := range ops {
			s.Add(Fault{Op: op, Kind: KindSlow, Prob: 0.3, Delay: time.Millisecond})
		}
		t.Cleanup(func() { injected += len(s.Injected()) })
		return s
	})
	if injected == 0 {
		t.Fatal("no slow call injected")
	}
}

func write(s storage.Storage, path string, data []byte) error {
	w, err := s.Create(ctx, path, storage.CreateOptions{})
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

func visible(t *testing.T, s *Storage, path string) bool {
	t.Helper()
	ok, err := s.Inner().Exists(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// The Nth call fails, the others do not; a failed write or commit leaves
// nothing under the final name.
func TestNthCommit(t *testing.T) {
	s := New(posix.New(t.TempDir()), 1, Fault{Op: OpCommit, Nth: 3, Kind: KindENOSPC})
	for i, p := range []string{"a", "b", "c", "d"} {
		err := write(s, p, []byte("data"))
		if i == 2 {
			if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrInjected) {
				t.Fatalf("3rd commit: %v", err)
			}
			if visible(t, s, p) {
				t.Fatal("failed commit left the file visible")
			}
			continue
		}
		if err != nil {
			t.Fatalf("commit %d: %v", i+1, err)
		}
	}
	if in := s.Injected(); len(in) != 1 || in[0] != (Injection{Op: OpCommit, Kind: KindENOSPC, Path: "c", N: 3}) {
		t.Fatalf("injected %v", in)
	}
	if s.Calls(OpCommit) != 4 {
		t.Fatalf("commit calls %d", s.Calls(OpCommit))
	}
	l, _ := s.List(ctx, "")
	if len(l) != 3 {
		t.Fatalf("list after a failed commit: %v", l)
	}
}

func TestWriteFaults(t *testing.T) {
	for _, k := range []Kind{KindError, KindENOSPC, KindShort} {
		t.Run(string(k), func(t *testing.T) {
			s := New(posix.New(t.TempDir()), 1, Fault{Op: OpWrite, Nth: 1, Kind: k})
			w, err := s.Create(ctx, "f", storage.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			n, err := w.Write(make([]byte, 100))
			if !errors.Is(err, ErrInjected) {
				t.Fatalf("write: %d, %v", n, err)
			}
			switch k {
			case KindShort:
				if n != 50 || !errors.Is(err, io.ErrShortWrite) {
					t.Fatalf("short write: %d, %v", n, err)
				}
			case KindENOSPC:
				if n != 50 || !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("enospc write: %d, %v", n, err)
				}
			}
			w.Abort()
			if visible(t, s, "f") {
				t.Fatal("aborted file visible")
			}
		})
	}
}

// A lost reply: the commit happened, the caller sees an error.
func TestAfterCommit(t *testing.T) {
	s := New(posix.New(t.TempDir()), 1, Fault{Op: OpCommit, Nth: 1, Kind: KindAfter}, Fault{Op: OpRemove, Nth: 1, Kind: KindAfter})
	if err := write(s, "f", []byte("x")); !errors.Is(err, ErrInjected) {
		t.Fatalf("commit: %v", err)
	}
	if !visible(t, s, "f") {
		t.Fatal("file not committed")
	}
	if err := s.Remove(ctx, "f"); !errors.Is(err, ErrInjected) {
		t.Fatalf("remove: %v", err)
	}
	if visible(t, s, "f") {
		t.Fatal("file not removed")
	}
}

// A dropped connection: part of the data, then io.ErrUnexpectedEOF.
func TestDrop(t *testing.T) {
	s := New(posix.New(t.TempDir()), 1)
	data := bytes.Repeat([]byte("0123456789"), 10000)
	if err := write(s, "f", data); err != nil {
		t.Fatal(err)
	}
	s.Add(Fault{Op: OpOpen, Nth: 1, Kind: KindDrop})
	r, err := s.Open(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := r.Read(buf)
	if n != 4096 || err != nil {
		t.Fatalf("first read %d, %v", n, err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 0 {
		t.Fatalf("after the drop: %d bytes, %v", len(got), err)
	}
	// The Nth read of any reader.
	s.Add(Fault{Op: OpRead, Nth: 3, Kind: KindDrop})
	r, _ = s.Open(ctx, "f")
	got, err = io.ReadAll(r)
	r.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) == 0 || len(got) >= len(data) {
		t.Fatalf("dropped read: %d bytes, %v", len(got), err)
	}
	r, _ = s.OpenRange(ctx, "f", 10, 20)
	got, err = io.ReadAll(r)
	r.Close()
	if err != nil || string(got) != "01234567890123456789" {
		t.Fatalf("range after the faults: %q, %v", got, err)
	}
}

func TestEveryOp(t *testing.T) {
	for _, op := range []Op{OpOpen, OpCreate, OpList, OpStat, OpRemove, OpPathCreate, OpSymlink, OpSync} {
		t.Run(string(op), func(t *testing.T) {
			s := New(posix.New(t.TempDir()), 1)
			if err := write(s, "d/f", []byte("x")); err != nil {
				t.Fatal(err)
			}
			s.Add(Fault{Op: op, Nth: 1})
			var err error
			switch op {
			case OpOpen:
				_, err = s.Open(ctx, "d/f")
			case OpCreate:
				_, err = s.Create(ctx, "d/g", storage.CreateOptions{})
			case OpList:
				_, err = s.List(ctx, "d")
			case OpStat:
				_, err = s.Stat(ctx, "d/f")
			case OpRemove:
				err = s.Remove(ctx, "d/f")
				if visible(t, s, "d/f") == false {
					t.Fatal("failed remove removed")
				}
			case OpPathCreate:
				err = s.PathCreate(ctx, "e")
			case OpSymlink:
				err = s.Symlink(ctx, "f", "d/l")
			case OpSync:
				err = storage.SyncAll(ctx, s)
			}
			if !errors.Is(err, ErrInjected) {
				t.Fatalf("%s: %v", op, err)
			}
			if len(s.Injected()) != 1 {
				t.Fatalf("injected %v", s.Injected())
			}
		})
	}
}

// The same seed injects the same faults; a path filter limits them.
func TestSeededProbability(t *testing.T) {
	run := func(seed int64) []Injection {
		s := New(posix.New(t.TempDir()), seed, Fault{Op: OpCommit, Prob: 0.3, Path: "archive/"})
		for i := 0; i < 40; i++ {
			write(s, "archive/"+string(rune('a'+i%26))+string(rune('a'+i/26)), []byte("x"))
			if err := write(s, "backup/"+string(rune('a'+i%26))+string(rune('a'+i/26)), []byte("x")); err != nil {
				t.Fatalf("fault outside its path: %v", err)
			}
		}
		return s.Injected()
	}
	a, b := run(42), run(42)
	if len(a) == 0 || len(a) == 40 || !reflect.DeepEqual(a, b) {
		t.Fatalf("seed 42: %d then %d injections", len(a), len(b))
	}
	if c := run(43); reflect.DeepEqual(a, c) {
		t.Fatal("another seed injected the same faults")
	}
}

func TestParse(t *testing.T) {
	f, seed, err := Parse("op=commit,nth=3,err=enospc; op=read,prob=0.25,err=drop,path=backup/,seed=9;op=list,nth=1,err=slow,delay=5ms")
	if err != nil {
		t.Fatal(err)
	}
	want := []Fault{{Op: OpCommit, Nth: 3, Kind: KindENOSPC}, {Op: OpRead, Prob: 0.25, Kind: KindDrop, Path: "backup/"},
		{Op: OpList, Nth: 1, Kind: KindSlow, Delay: 5 * time.Millisecond}}
	if seed != 9 || !reflect.DeepEqual(f, want) {
		t.Fatalf("parsed %+v seed %d", f, seed)
	}
	for _, bad := range []string{"op=nope,nth=1", "op=commit", "op=commit,nth=0", "op=commit,nth=1,err=boom", "nth=1", "op=commit,nth=1,x", "op=read,prob=2"} {
		if _, _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
