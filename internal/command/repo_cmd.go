package command

import (
	"bufio"
	"context"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/config"
	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/filter"
	"github.com/pgbr-dev/pgbr/internal/jsonw"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// repo-ls and repo-get, with pgBackRest 2.45's options, output and exit
// codes (src/command/repo/ls.c, get.c): the listing walks the default
// repository like pgBackRest's storage iterator (per-directory sort,
// ascending paths before their content, descending after it, the filter
// applied to the name relative to the listed path); repo-get decrypts with
// the passphrase that protects the file (repository passphrase for info
// files, archive.info's for WAL, backup.info's for manifests and
// backup.history, the manifest's for data files) and, like pgBackRest, does
// not decompress; --raw copies the stored bytes.

// repoDefault is the repository repo-ls/repo-get work on: --repo or the
// lowest configured one.
func (e *Env) repoDefault() (*repoT, string, error) {
	rs, err := e.repos()
	if err != nil {
		return nil, "", err
	}
	if len(rs) == 0 {
		return nil, "", errs.New(errs.OptionRequired, "%s command requires a configured repository", e.Cfg.Command())
	}
	r := rs[0]
	p := e.Cfg.String(config.RepoPath.Index(r.Key))
	if p == "" {
		p = "/var/lib/pgbackrest"
	}
	return r, p, nil
}

// repoPathValid turns the path argument into a path relative to the
// repository (pgBackRest's repoPathIsValid). pgbr also refuses ".."
// components, which pgBackRest would follow out of the repository.
func repoPathValid(p, repoPath string) (string, error) {
	if strings.Contains(p, "//") {
		return "", errs.New(errs.ParamInvalid, "path '%s' cannot contain //", p)
	}
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	var rel string
	if strings.HasPrefix(p, "/") {
		switch {
		case p == repoPath:
			rel = ""
		case repoPath == "/":
			rel = p[1:]
		case strings.HasPrefix(p, repoPath+"/"):
			rel = p[len(repoPath)+1:]
		default:
			return "", errs.New(errs.ParamInvalid, "absolute path '%s' is not in base path '%s'", p, repoPath)
		}
	} else {
		rel = p
	}
	for _, c := range strings.Split(rel, "/") {
		if c == ".." {
			return "", errs.New(errs.ParamInvalid, "path '%s' is outside the repository (contains '..')", p)
		}
	}
	return rel, nil
}

func joinRel(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "/" + b
}

func repoLs(e *Env) error {
	params := e.Cfg.Params()
	if len(params) > 1 {
		return errs.New(errs.ParamInvalid, "only one path may be specified")
	}
	r, repoPath, err := e.repoDefault()
	if err != nil {
		return err
	}
	path := ""
	if len(params) == 1 {
		if path, err = repoPathValid(params[0], repoPath); err != nil {
			return err
		}
	}
	jsonOut := e.Cfg.String(config.Output) == "json"
	var re *regexp.Regexp
	if e.Cfg.IsSet(config.Filter) {
		if re, err = regexp.Compile(e.Cfg.String(config.Filter)); err != nil {
			return errs.New(errs.Format, "invalid regular expression '%s': %v", e.Cfg.String(config.Filter), err)
		}
	}
	order := e.Cfg.String(config.Sort)
	recurse := e.Cfg.Bool(config.Recurse)

	// Output goes through a buffer; write errors (a closed pipe) are
	// ignored as pgBackRest does.
	w := bufio.NewWriterSize(e.Stdout, 64*1024)
	defer w.Flush()
	first := true
	render := func(in storage.Info, name string) {
		if !jsonOut {
			w.WriteString(name)
			w.WriteByte('\n')
			return
		}
		if !first {
			w.WriteByte(',')
		}
		first = false
		w.Write(jsonw.AppendString(nil, name))
		switch in.Type {
		case storage.TypeFile:
			w.WriteString(`:{"type":"file","size":` + strconv.FormatInt(in.Size, 10) +
				`,"time":` + strconv.FormatInt(in.ModTime.Unix(), 10) + "}")
		case storage.TypeLink:
			w.WriteString(`:{"type":"link","destination":`)
			w.Write(jsonw.AppendString(nil, in.Link))
			w.WriteString("}")
		default:
			w.WriteString(`:{"type":"path"}`)
		}
	}
	if jsonOut {
		w.WriteByte('{')
	}
	ctx := e.Ctx
	in, err := r.St.Stat(ctx, path)
	switch {
	case err == nil && in.Type == storage.TypeFile && path != "":
		if re == nil || re.MatchString(r.St.Full(path)) {
			render(in, ".")
		}
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return errs.OrCode(errs.FileRead, err)
	default:
		if jsonOut && (re == nil || re.MatchString(".")) {
			render(storage.Info{Type: storage.TypePath}, ".")
		}
		if err := repoLsWalk(ctx, r.St, path, "", recurse, order, re, render); err != nil {
			return err
		}
	}
	if jsonOut {
		w.WriteString("}\n")
	}
	return nil
}

// repoLsWalk lists base/sub and, with recurse, its subpaths depth first.
func repoLsWalk(ctx context.Context, st storage.Storage, base, sub string, recurse bool, order string,
	re *regexp.Regexp, emit func(storage.Info, string)) error {
	list, err := st.List(ctx, joinRel(base, sub))
	if err != nil {
		return errs.OrCode(errs.PathOpen, err)
	}
	if order == "desc" {
		slices.Reverse(list)
	}
	for _, in := range list {
		name := joinRel(sub, in.Name)
		match := re == nil || re.MatchString(name)
		descend := recurse && in.Type == storage.TypePath
		if descend && order == "desc" {
			if err := repoLsWalk(ctx, st, base, name, recurse, order, re, emit); err != nil {
				return err
			}
			if match {
				emit(in, name)
			}
			continue
		}
		if match {
			emit(in, name)
		}
		if descend {
			if err := repoLsWalk(ctx, st, base, name, recurse, order, re, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

func repoGet(e *Env) error {
	params := e.Cfg.Params()
	if len(params) != 1 {
		return errs.New(errs.ParamRequired, "source file required")
	}
	r, repoPath, err := e.repoDefault()
	if err != nil {
		return err
	}
	file, err := repoPathValid(params[0], repoPath)
	if err != nil {
		return err
	}
	ctx := e.Ctx
	pass := ""
	if !e.Cfg.Bool(config.Raw) && r.CipherType != "none" {
		if pass, err = repoGetPass(e, r, file); err != nil {
			return err
		}
	}
	src, err := r.St.Open(ctx, file)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			if e.Cfg.Bool(config.IgnoreMissing) {
				return &ExitError{Code: 1}
			}
			return errs.New(errs.FileMissing, "unable to open missing file '%s' for read", r.St.Full(file))
		}
		return errs.OrCode(errs.FileOpen, err)
	}
	defer src.Close()
	var rd io.Reader = src
	if pass != "" {
		if rd, err = filter.NewDecryptor(src, pass); err != nil {
			return err
		}
	}
	// Write errors (a reader that went away) end the copy quietly, as in
	// pgBackRest; read and decryption errors are errors. Output goes out in
	// buffer-size pieces, and what is buffered when an error happens is
	// dropped (as pgBackRest: a small file that fails to decrypt prints
	// nothing).
	w := &stickyWriter{w: e.Stdout}
	bw := bufio.NewWriterSize(w, max(int(e.Cfg.Size(config.BufferSize)), 64*1024))
	if _, err := io.Copy(bw, rd); err != nil && w.err == nil {
		if errs.CodeOf(err) == errs.Unknown {
			return errs.Wrap(errs.FileRead, err, "unable to read '%s'", r.St.Full(file))
		}
		return err
	}
	bw.Flush()
	return nil
}

// stickyWriter swallows writes after the first write error.
type stickyWriter struct {
	w   io.Writer
	err error
}

func (s *stickyWriter) Write(b []byte) (int, error) {
	if s.err == nil {
		_, s.err = s.w.Write(b)
	}
	return len(b), nil
}

// repoGetPass finds the passphrase of a repository file the way
// pgBackRest's repo-get does (--cipher-pass wins).
func repoGetPass(e *Env, r *repoT, file string) (string, error) {
	if e.Cfg.IsSet(config.CipherPass) {
		return e.Cfg.String(config.CipherPass), nil
	}
	ctx := e.Ctx
	pass := ""
	found := false
	parts := strings.Split(file, "/")
	if len(parts) > 2 {
		stanza := parts[1]
		if s := e.Cfg.String(config.Stanza); s != "" && s != stanza {
			return "", errs.New(errs.OptionInvalidValue, "stanza name '%s' given in option doesn't match the given path", s)
		}
		switch parts[0] {
		case "archive":
			pass, found = r.CipherPass, true
			if !strings.HasSuffix(file, repo.ArchiveInfoName) && !strings.HasSuffix(file, repo.ArchiveInfoName+".copy") {
				ai, err := repo.LoadArchiveInfo(ctx, r.St, stanza, r.CipherPass)
				if err != nil {
					return "", err
				}
				pass = ai.CipherPass
			}
		case "backup":
			pass, found = r.CipherPass, true
			if !strings.HasSuffix(file, repo.BackupInfoName) && !strings.HasSuffix(file, repo.BackupInfoName+".copy") {
				bi, err := repo.LoadBackupInfo(ctx, r.St, stanza, r.CipherPass)
				if err != nil {
					return "", err
				}
				pass = bi.CipherPass
				if parts[2] != "backup.history" && !strings.HasSuffix(file, "backup.manifest") &&
					!strings.HasSuffix(file, "backup.manifest.copy") {
					m, err := repo.LoadManifest(ctx, r.St, stanza, parts[2], pass)
					if err != nil {
						return "", err
					}
					pass = m.CipherPass
				}
			}
		}
	}
	if !found || pass == "" {
		return "", errs.New(errs.OptionInvalidValue, "unable to determine cipher passphrase for '%s'", file)
	}
	return pass, nil
}
