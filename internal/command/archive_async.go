package command

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/pgbr-dev/pgbr/internal/archive"
	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/lock"
)

// Asynchronous archive-push and archive-get (archive-async=y): the
// foreground waits for the spool (archive.WaitPushed, archive.WaitGot), a
// background "<command>:async" process started by startAsync holds the
// archive lock and fills it (archive.PushAsync, archive.GetAsync).

// waitOptions is the foreground wait of the asynchronous command on spool
// directory dir; params are the background process's parameters.
func waitOptions(e *Env, stanza, dir string, params ...string) *archive.WaitOptions {
	return &archive.WaitOptions{
		Dir:     dir,
		Timeout: e.Cfg.Duration(config.ArchiveTimeout),
		Start:   func() error { return startAsync(e, params...) },
		LogFile: filepath.Join(e.Cfg.String(config.LogPath), stanza+"-"+e.Cfg.Command()+"-async.log"),
		Log:     e.Log,
	}
}

// archivePushQueued is the foreground side of archive-push.
func archivePushQueued(e *Env, stanza, walPath string) error {
	// The name is checked before any option is read.
	if err := archive.CheckSpoolName(filepath.Base(walPath)); err != nil {
		return err
	}
	dir := archive.SpoolOut(e.Cfg.String(config.SpoolPath), stanza)
	return archive.WaitPushed(e.Ctx, waitOptions(e, stanza, dir, walPath), walPath)
}

// archiveGetQueued is the foreground side of archive-get.
func archiveGetQueued(e *Env, stanza, name, dest string) error {
	if err := archive.CheckSpoolName(name); err != nil {
		return err
	}
	dir := archive.SpoolIn(e.Cfg.String(config.SpoolPath), stanza)
	return exitNotFound(archive.WaitGot(e.Ctx, waitOptions(e, stanza, dir, name, filepath.Join(dir, name)), name, dest))
}

// startAsync launches a background "<command>:async" process with the
// same command-line options (it exits at once when another one holds the
// archive lock). Secrets reach it through the config file or environment,
// as they reached this process.
func startAsync(e *Env, params ...string) error {
	if e.Self == "" {
		return errs.New(errs.Execute, "unable to find the pgbr executable to start the asynchronous %s process", e.Cfg.Command())
	}
	args := append(e.Cfg.CommandLineArgs(), e.Cfg.Command()+":async")
	c := exec.Command(e.Self, append(args, params...)...)
	c.Dir = e.Cwd
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	inheritNoFiles()
	if err := c.Start(); err != nil {
		return errs.Wrap(errs.Execute, err, "unable to start the asynchronous %s process", e.Cfg.Command())
	}
	go c.Wait() // reap it if it ends while we still wait
	return nil
}

// inheritNoFiles marks every descriptor above stderr close-on-exec before
// the background process is started: it gets /dev/null as stdin, stdout
// and stderr and nothing else of its caller. A descriptor the caller passed
// down without close-on-exec (the write end of a pipe the caller reads to
// its end, say) would otherwise stay open for as long as the background
// process runs, and the caller would wait for it instead of for this
// command. Descriptors Go opens are close-on-exec already.
func inheritNoFiles() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, en := range ents {
		if fd, err := strconv.Atoi(en.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// archivePushAsync is the background side: push every ready WAL file.
func archivePushAsync(e *Env, stanza, walPath string) error {
	dir := archive.SpoolOut(e.Cfg.String(config.SpoolPath), stanza)
	l, err := lockAsync(e, stanza, dir)
	if l == nil {
		return err
	}
	defer l.Release()
	out, err := archive.OpenSpool(dir)
	if err != nil {
		return err
	}
	defer out.Close()
	// A push that cannot be prepared fails every ready file (reported in
	// its status), as a failing push does.
	o, setupErr := pushOptions(e, stanza)
	return archive.PushAsync(e.Ctx, &archive.PushAsyncOptions{
		Push:     o,
		SetupErr: setupErr,
		Out:      out,
		WalDir:   filepath.Dir(walPath),
		Workers:  e.processMax(),
		Pool:     e.runPool,
		Log:      e.Log,
	})
}

// archiveGetAsync is the background side: fetch the requested segment and
// the next ones into the spool.
func archiveGetAsync(e *Env, stanza, name string) error {
	if err := archive.CheckSpoolName(name); err != nil {
		return err
	}
	dir := archive.SpoolIn(e.Cfg.String(config.SpoolPath), stanza)
	l, err := lockAsync(e, stanza, dir)
	if l == nil {
		return err
	}
	defer l.Release()
	in, err := archive.OpenSpool(dir)
	if err != nil {
		return err
	}
	defer in.Close()
	c, err := e.readCluster()
	if err != nil {
		if serr := archive.WriteError(in, name, err); serr != nil {
			e.Log.Errorf(int(errs.CodeOf(serr)), "%v", serr)
		}
		return err
	}
	o, setupErr := getOptions(e, stanza)
	return archive.GetAsync(e.Ctx, &archive.GetAsyncOptions{
		Get:         o,
		SetupErr:    setupErr,
		In:          in,
		Name:        name,
		SegmentSize: c.Control.WalSegmentSize,
		QueueMax:    e.Cfg.Size(config.ArchiveGetQueueMax),
		Workers:     e.processMax(),
		Pool:        e.runPool,
		Log:         e.Log,
	})
}

// lockAsync takes the archive lock for a background process and creates
// its spool directory. A nil lock means: do not run (another background
// process holds the lock, nil error; or the spool cannot be made).
func lockAsync(e *Env, stanza, spool string) (*lock.Lock, error) {
	l, err := lock.Acquire(e.Cfg.String(config.LockPath), stanza, lock.Archive, e.ExecID)
	if err != nil {
		e.Log.Debugf("asynchronous %s already running: %v", e.Cfg.Command(), err)
		return nil, nil
	}
	if err := archive.MakeSpool(spool); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}
