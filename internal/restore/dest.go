package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/errs"
	"github.com/pgbr-dev/pgbr/internal/repo"
	"github.com/pgbr-dev/pgbr/internal/storage/local"
)

// Restore writes only inside its destinations: PGDATA, each tablespace
// directory and each link destination restored as a link. Each is a
// local.Root, which refuses names leaving it and never follows a symbolic
// link out of it, so a manifest name that escaped the checks of
// repo.CheckNames still could not write or remove anything elsewhere.
// Where the destinations are comes from the options (tablespace-map,
// tablespace-map-all, link-map, link-all) or, where those leave it, from
// the manifest's targets; planDestinations checks them before anything is
// written.

// tsVersionDir is the tablespace subdirectory PostgreSQL uses.
func (rr *restoreRun) tsVersionDir() string {
	return fmt.Sprintf("PG_%s_%d", rr.m.DB.Version, rr.m.DB.CatalogVersion)
}

// isTablespaceLink reports whether the manifest link name is a tablespace link.
func isTablespaceLink(name string) bool {
	return strings.HasPrefix(name, "pg_data/pg_tblspc/")
}

// within reports whether p is dir or inside it (both clean and absolute).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir) && (strings.HasSuffix(dir, "/") || p[len(dir)] == '/')
}

// planDestinations decides where every tablespace and restored link goes
// and refuses destinations that are not absolute or that overlap PGDATA or
// each other. It touches nothing on disk.
func (rr *restoreRun) planDestinations() error {
	type dest struct{ what, dir string }
	dests := []dest{{"PGDATA", rr.pgData}}
	for _, t := range rr.m.Targets {
		if t.TablespaceID == "" {
			continue
		}
		loc := rr.targets[t.Name]
		if !filepath.IsAbs(loc) {
			return errs.New(errs.LinkDestination, "tablespace '%s' destination '%s' must be an absolute path\nHINT: use --tablespace-map to restore it elsewhere.", t.Name, loc)
		}
		loc = filepath.Clean(loc)
		rr.targets[t.Name] = loc
		dests = append(dests, dest{"tablespace '" + t.Name + "'", filepath.Join(loc, rr.tsVersionDir())})
	}

	maps := map[string]string{}
	for _, kv := range rr.opts.LinkMap {
		maps[kv[0]] = kv[1]
	}
	all := rr.opts.LinkAll
	rr.linkDest = map[string]string{}
	for _, l := range rr.m.Links {
		if isTablespaceLink(l.Name) {
			continue
		}
		rel := strings.TrimPrefix(l.Name, "pg_data/")
		mapped, isMapped := maps[rel]
		if !isMapped && !all {
			continue // restored as a plain directory or file
		}
		t, ok := rr.m.FindTarget(l.Name)
		if !ok {
			return errs.New(errs.Format, "link '%s' has no target in the manifest", rel)
		}
		if t.File != "" {
			continue // file links are restored as plain files
		}
		var d string
		if isMapped {
			if !filepath.IsAbs(mapped) {
				return errs.New(errs.LinkMap, "link '%s' destination '%s' must be absolute", rel, mapped)
			}
			d = filepath.Clean(mapped)
		} else {
			// The manifest's destination, relative ones from the link's
			// directory, as pgBackRest resolves them.
			d = t.Path
			if !filepath.IsAbs(d) {
				d = filepath.Join(filepath.Dir(filepath.Join(rr.pgData, filepath.FromSlash(rel))), d)
			}
			d = filepath.Clean(d)
		}
		rr.linkDest[l.Name] = d
		dests = append(dests, dest{"link '" + rel + "'", d})
	}
	for i := range dests {
		for j := range dests {
			if i != j && within(dests[i].dir, dests[j].dir) {
				return errs.New(errs.LinkDestination, "%s destination '%s' is inside %s destination '%s'\n"+
					"HINT: restore refuses destinations that overlap; remap with --tablespace-map or --link-map.",
					dests[i].what, dests[i].dir, dests[j].what, dests[j].dir)
			}
		}
	}
	return nil
}

// openRoots creates and opens every destination directory.
func (rr *restoreRun) openRoots() error {
	rr.roots = map[string]*local.Root{}
	// Modes and owners are set with the manifest's paths (createPaths).
	open := func(key, dir string, mode uint32, create bool) error {
		if create {
			if err := os.MkdirAll(dir, os.FileMode(mode)); err != nil {
				return errs.Wrap(errs.PathCreate, err, "unable to create path '%s'", dir)
			}
		}
		r, err := local.Open(dir)
		if err != nil {
			return errs.Wrap(errs.PathOpen, err, "unable to open path '%s'", dir)
		}
		rr.roots[key] = r
		return nil
	}
	if err := open(repo.TargetPgData, rr.pgData, 0o700, false); err != nil {
		return err
	}
	rr.pg = rr.roots[repo.TargetPgData]
	names := make([]string, 0, len(rr.targets))
	for name := range rr.targets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == repo.TargetPgData {
			continue
		}
		mode, _, _ := rr.pathAttrs(name)
		if err := open(name, rr.targets[name], mode, true); err != nil {
			return err
		}
	}
	links := make([]string, 0, len(rr.linkDest))
	for name := range rr.linkDest {
		links = append(links, name)
	}
	sort.Strings(links)
	for _, name := range links {
		mode, _, _ := rr.pathAttrs(name)
		if err := open(name, rr.linkDest[name], mode, true); err != nil {
			return err
		}
	}
	return nil
}

func (rr *restoreRun) closeRoots() {
	for _, r := range rr.roots {
		r.Close()
	}
}

// dest maps a manifest file or path name to its destination directory and
// the name inside it ("." for the directory itself). ok is false for names
// without a place on disk.
func (rr *restoreRun) dest(name string) (root *local.Root, rel string, ok bool) {
	target, rel, ok := repo.SplitName(name)
	if !ok {
		return nil, "", false
	}
	if target == repo.TargetPgData && len(rr.linkDest) > 0 {
		// The innermost restored link holding name.
		best := ""
		for link := range rr.linkDest {
			if (name == link || strings.HasPrefix(name, link) && name[len(link)] == '/') && len(link) > len(best) {
				best = link
			}
		}
		if best != "" {
			rel = "."
			if name != best {
				rel = name[len(best)+1:]
			}
			return rr.roots[best], rel, rr.roots[best] != nil
		}
	}
	root = rr.roots[target]
	return root, rel, root != nil
}

// isLinkRestored reports whether the manifest link is restored as a
// symbolic link (tablespaces always, others with link-all/link-map).
func (rr *restoreRun) isLinkRestored(name string) bool {
	if isTablespaceLink(name) {
		return true
	}
	_, ok := rr.linkDest[name]
	return ok
}

// Kinds of entries clean expects on disk.
const (
	kindDir = iota + 1
	kindFile
	kindLink
)

// clean removes what the manifest does not have (delta/force), and
// anything whose type differs from the manifest's: a symbolic link where
// the manifest has a directory or file is removed, never followed.
func (rr *restoreRun) clean() error {
	want := map[*local.Root]map[string]int{}
	add := func(name string, kind int) {
		root, rel, ok := rr.dest(name)
		if !ok || rel == "." {
			return
		}
		if want[root] == nil {
			want[root] = map[string]int{}
		}
		want[root][rel] = kind
	}
	for _, p := range rr.m.Paths {
		add(p.Name, kindDir)
	}
	for _, f := range rr.m.Files {
		add(f.Name, kindFile)
	}
	for _, l := range rr.m.Links {
		if rr.isLinkRestored(l.Name) {
			// The link itself lives in PGDATA.
			if want[rr.pg] == nil {
				want[rr.pg] = map[string]int{}
			}
			want[rr.pg][strings.TrimPrefix(l.Name, "pg_data/")] = kindLink
		}
	}
	var walk func(root *local.Root, dir string) error
	walk = func(root *local.Root, dir string) error {
		ents, err := root.ReadDir(dir)
		if err != nil {
			return nil
		}
		w := want[root]
		for _, de := range ents {
			rel := de.Name()
			if dir != "." {
				rel = dir + "/" + rel
			}
			if root == rr.pg && rel == repo.ManifestName {
				continue
			}
			kind, ok := w[rel]
			typ := de.Type()
			keep := false
			switch {
			case !ok:
			case kind == kindLink:
				keep = typ&fs.ModeSymlink != 0
			case kind == kindDir:
				keep = typ.IsDir()
			case kind == kindFile:
				keep = typ.IsRegular()
			}
			if keep {
				if kind == kindDir {
					if err := walk(root, rel); err != nil {
						return err
					}
				}
				continue
			}
			what := "file"
			switch {
			case typ&fs.ModeSymlink != 0:
				what = "link"
			case typ.IsDir():
				what = "path"
			}
			rr.log.Detailf("remove invalid %s '%s'", what, root.Full(rel))
			if err := root.RemoveAll(rel); err != nil {
				return errs.Wrap(errs.PathRemove, err, "unable to remove '%s'", root.Full(rel))
			}
		}
		return nil
	}
	if err := walk(rr.pg, "."); err != nil {
		return err
	}
	for _, t := range rr.m.Targets {
		if t.TablespaceID == "" {
			continue
		}
		root := rr.roots[t.Name]
		ver := rr.tsVersionDir()
		fi, err := root.Lstat(ver)
		if err != nil {
			continue
		}
		if !fi.IsDir() {
			rr.log.Detailf("remove invalid link '%s'", root.Full(ver))
			if err := root.RemoveAll(ver); err != nil {
				return errs.Wrap(errs.PathRemove, err, "unable to remove '%s'", root.Full(ver))
			}
			continue
		}
		if err := walk(root, ver); err != nil {
			return err
		}
	}
	return nil
}

// makeDir creates one directory of the manifest (or keeps the one there)
// and sets its mode and owner.
func (rr *restoreRun) makeDir(root *local.Root, rel string, mode uint32, uid, gid int) error {
	if rel != "." {
		err := root.Mkdir(rel, os.FileMode(mode))
		if errors.Is(err, fs.ErrNotExist) {
			err = root.MkdirAll(rel, os.FileMode(mode))
		}
		if errors.Is(err, fs.ErrExist) {
			fi, lerr := root.Lstat(rel)
			if lerr == nil && fi.IsDir() {
				err = nil
			} else if lerr == nil {
				err = fmt.Errorf("%s exists and is not a directory", root.Full(rel))
			}
		}
		if err != nil {
			return errs.Wrap(errs.PathCreate, err, "unable to create path '%s'", root.Full(rel))
		}
	}
	if err := root.Chmod(rel, os.FileMode(mode)); err != nil {
		return errs.Wrap(errs.FileMode, err, "unable to set mode of '%s'", root.Full(rel))
	}
	if rr.root {
		if err := root.Lchown(rel, uid, gid); err != nil {
			return errs.Wrap(errs.FileOwner, err, "unable to set ownership for '%s'", root.Full(rel))
		}
	}
	return nil
}

// makeLink makes the symbolic link name (inside PGDATA) point to dest,
// replacing whatever is there.
func (rr *restoreRun) makeLink(l *repo.ManifestLink, dest string) error {
	rel := strings.TrimPrefix(l.Name, "pg_data/")
	if cur, err := rr.pg.Readlink(rel); err == nil && cur == dest {
		return nil
	}
	if fi, err := rr.pg.Lstat(rel); err == nil {
		var rerr error
		if fi.IsDir() && (rr.delta || rr.force) {
			rerr = rr.pg.RemoveAll(rel)
		} else {
			rerr = rr.pg.Remove(rel)
		}
		if rerr != nil {
			return errs.Wrap(errs.FileRemove, rerr, "unable to replace '%s' with a link", rr.pg.Full(rel))
		}
	}
	if err := rr.pg.Symlink(dest, rel); err != nil {
		return errs.Wrap(errs.FileOpen, err, "unable to create symlink '%s' to '%s'", rr.pg.Full(rel), dest)
	}
	if rr.root {
		if err := rr.pg.Lchown(rel, rr.uid(l.User), rr.gid(l.Group)); err != nil {
			return errs.Wrap(errs.FileOwner, err, "unable to set ownership for '%s'", rr.pg.Full(rel))
		}
	}
	return nil
}
