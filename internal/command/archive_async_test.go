package command

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The background archive process inherits no descriptor of its caller
// beyond stdin, stdout and stderr: a pipe passed down without
// close-on-exec is closed in what startAsync executes.
func TestInheritNoFiles(t *testing.T) {
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil { // no close-on-exec
		t.Fatal(err)
	}
	defer syscall.Close(p[0])
	defer syscall.Close(p[1])
	listFds := func() string {
		out, err := exec.Command("/bin/sh", "-c", "ls /proc/self/fd").Output()
		if err != nil {
			t.Fatal(err)
		}
		return " " + strings.Join(strings.Fields(string(out)), " ") + " "
	}
	w := " " + strconv.Itoa(p[1]) + " "
	if !strings.Contains(listFds(), w) {
		t.Fatalf("the pipe (fd %d) is not inherited before: the test proves nothing", p[1])
	}
	inheritNoFiles()
	if fds := listFds(); strings.Contains(fds, w) {
		t.Fatalf("fd %d inherited by a child after inheritNoFiles: %s", p[1], fds)
	}
}
