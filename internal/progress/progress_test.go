package progress

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/log"
)

func TestCounterConcurrentAdds(t *testing.T) {
	var c Counter
	c.SetTotal(1000, 1000*4096)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 125; i++ {
				c.Add(1, 4096)
			}
		}()
	}
	wg.Wait()
	s := c.Snapshot()
	if s != (Snapshot{Files: 1000, TotalFiles: 1000, Bytes: 1000 * 4096, TotalBytes: 1000 * 4096}) {
		t.Fatalf("snapshot %+v", s)
	}
	var nilC *Counter
	nilC.Add(1, 1)
	nilC.SetTotal(1, 1)
	nilC.AddTotal(1, 1)
	if nilC.Snapshot() != (Snapshot{}) {
		t.Fatal("nil counter not empty")
	}
}

func TestEnabledModes(t *testing.T) {
	if !Enabled("y") || Enabled("n") || Enabled("") {
		t.Fatal("modes")
	}
	// A pipe is not a terminal.
	if Enabled("", nil) {
		t.Fatal("nil file counted as terminal")
	}
}

func TestRendererDrawsAndClearsAroundWrites(t *testing.T) {
	var buf log.Capture
	var c Counter
	r := Start(&buf, "backup", &c, 5*time.Millisecond)
	c.SetTotal(4, 4<<20)
	c.Add(1, 1<<20)
	for !strings.Contains(buf.String(), "backup 1/4 files") {
		time.Sleep(5 * time.Millisecond)
	}
	r.Around(func() { buf.Write([]byte("LOGLINE\n")) })
	out := buf.String()
	i := strings.LastIndex(out, "LOGLINE\n")
	before, after := out[:i], out[i+len("LOGLINE\n"):]
	if !strings.HasSuffix(before, "\033[2K\r") {
		t.Fatalf("line not cleared before the log write: %q", before[max(0, len(before)-40):])
	}
	if !strings.Contains(after, "backup 1/4 files") || !strings.Contains(after, "MiB") {
		t.Fatalf("line not redrawn after the log write: %q", after)
	}
	c.Add(3, 3<<20)
	r.Stop()
	out = buf.String()
	if !strings.HasSuffix(out, "\033[2K\r") {
		t.Fatalf("line not removed at the end: %q", out[max(0, len(out)-60):])
	}
	n := len(out)
	r.Around(func() { buf.Write([]byte("AFTER\n")) })
	if got := buf.String()[n:]; got != "AFTER\n" {
		t.Fatalf("after Stop, Around wrote %q", got)
	}
}

func TestRendererSilentWithoutTotal(t *testing.T) {
	var buf log.Capture
	var c Counter
	r := Start(&buf, "verify", &c, time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	r.Around(func() {})
	r.Stop()
	if buf.String() != "" {
		t.Fatalf("drew without a total: %q", buf.String())
	}
}
