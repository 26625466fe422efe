// Package progress counts the files and bytes a command has done and, on a
// terminal, shows them as one live line (files, bytes, rate, time left)
// that is redrawn in place and removed at the end.
//
// Engines update a Counter from their workers (atomic adds; a nil *Counter
// ignores every call, so hooks cost nothing when progress is off). A
// Renderer samples the Counter and draws the line with
// github.com/schollz/progressbar; log writes go through Renderer.Around so
// that the line is cleared before a log line and redrawn after it.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Counter is the done/total count of files and bytes of one command. Safe
// for concurrent use; every method accepts a nil receiver.
type Counter struct {
	files, bytes           atomic.Int64
	totalFiles, totalBytes atomic.Int64
}

// Snapshot is a consistent-enough copy of a Counter.
type Snapshot struct {
	Files, TotalFiles int64
	Bytes, TotalBytes int64
}

// SetTotal sets the work to do (files and bytes).
func (c *Counter) SetTotal(files int, bytes int64) {
	if c == nil {
		return
	}
	c.totalFiles.Store(int64(files))
	c.totalBytes.Store(bytes)
}

// AddTotal adds work discovered on the way (verify learns it per backup).
func (c *Counter) AddTotal(files int, bytes int64) {
	if c == nil {
		return
	}
	c.totalFiles.Add(int64(files))
	c.totalBytes.Add(bytes)
}

// Add records files and bytes done.
func (c *Counter) Add(files int, bytes int64) {
	if c == nil {
		return
	}
	c.files.Add(int64(files))
	c.bytes.Add(bytes)
}

// Snapshot returns the current counts (zero for nil).
func (c *Counter) Snapshot() Snapshot {
	if c == nil {
		return Snapshot{}
	}
	return Snapshot{Files: c.files.Load(), TotalFiles: c.totalFiles.Load(), Bytes: c.bytes.Load(), TotalBytes: c.totalBytes.Load()}
}

// Enabled decides whether to show progress: mode "y" or "n" (--progress)
// forces it; otherwise it is on only when every given file is a terminal.
func Enabled(mode string, files ...*os.File) bool {
	switch mode {
	case "y":
		return true
	case "n":
		return false
	}
	if len(files) == 0 {
		return false
	}
	for _, f := range files {
		if f == nil || !term.IsTerminal(int(f.Fd())) {
			return false
		}
	}
	return true
}

// Renderer draws a Counter on w until Stop.
type Renderer struct {
	label string
	c     *Counter
	w     io.Writer

	mu      sync.Mutex // serializes every write to w by the bar and Around
	bar     *progressbar.ProgressBar
	max     int64
	shown   int64 // bytes last given to the bar
	stopped bool

	stop chan struct{}
	done chan struct{}
}

// Start begins drawing c on w every interval, with label ("backup") before
// the file count. Nothing is drawn until the counter has a total.
func Start(w io.Writer, label string, c *Counter, interval time.Duration) *Renderer {
	r := &Renderer{label: label, c: c, w: w, stop: make(chan struct{}), done: make(chan struct{})}
	go r.loop(interval)
	return r
}

func (r *Renderer) loop(interval time.Duration) {
	defer close(r.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.mu.Lock()
			r.update()
			r.mu.Unlock()
		}
	}
}

func (r *Renderer) describe(s Snapshot) string {
	return fmt.Sprintf("%s %d/%d files", r.label, s.Files, s.TotalFiles)
}

// update brings the bar to the counter's state and draws it. r.mu is held.
func (r *Renderer) update() {
	if r.stopped {
		return
	}
	s := r.c.Snapshot()
	if s.TotalFiles == 0 && s.TotalBytes == 0 {
		return
	}
	max := max(s.TotalBytes, 1)
	if r.bar == nil {
		r.max = max
		r.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(r.w),
			progressbar.OptionSetDescription(r.describe(s)),
			progressbar.OptionShowBytes(true),
			progressbar.OptionUseIECUnits(true),
			progressbar.OptionShowCount(),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(20),
			progressbar.OptionUseANSICodes(true),
			progressbar.OptionClearOnFinish(),
		)
	}
	if max != r.max {
		r.max = max
		r.bar.ChangeMax64(max)
	}
	if s.Bytes >= max {
		// The bar finishes itself (and stops drawing) at its maximum; stay
		// just below while files remain.
		s.Bytes = max - 1
	}
	if s.Bytes != r.shown {
		// Only real changes: the bar's rate is bytes over the time since
		// its last sample, which then spans the time a large file took.
		r.shown = s.Bytes
		r.bar.Set64(s.Bytes)
	}
	r.bar.Describe(r.describe(s)) // draws
}

// Around runs write (a log write to the same terminal) with the line
// cleared before and redrawn after, so log lines are never garbled.
func (r *Renderer) Around(write func()) {
	if r == nil {
		write()
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	drawn := r.bar != nil && !r.stopped
	if drawn {
		r.bar.Clear()
	}
	write()
	if drawn {
		r.bar.RenderBlank()
	}
}

// Stop stops drawing and removes the line.
func (r *Renderer) Stop() {
	if r == nil {
		return
	}
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil && !r.stopped {
		r.bar.Clear()
	}
	r.stopped = true
}
