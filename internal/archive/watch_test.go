package archive

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The spool watch wakes on a file written into the directory (a wait of
// an hour returns), ends when the directory is removed and watches it
// again once it is made again.
func TestDirWatch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	w := watchDir(dir)
	if w == nil {
		t.Fatal("inotify unavailable")
	}
	defer w.close()
	walFile(t, dir, seg1+".ok", nil)
	w.wait(time.Hour)
	if w.wd < 0 {
		t.Fatal("watch lost after a file was written")
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	w.wait(time.Hour)
	if w.wd >= 0 {
		t.Fatal("watch kept after the directory was removed")
	}
	w.wait(time.Hour) // no directory: a short sleep
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	w.wait(0)
	if w.wd < 0 {
		t.Fatal("directory made again is not watched")
	}
	walFile(t, dir, seg2+".ok", nil)
	w.wait(time.Hour)
}
