// Package storage defines the repository storage contract. Drivers (posix,
// s3) implement Storage; internal/repo works only through it.
//
// Paths are slash-separated and relative to the repository root (repo1-path);
// a leading slash is ignored.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) when a file or path does not exist.
var ErrNotFound = errors.New("not found")

// ErrPermission is returned (wrapped) when access is denied.
var ErrPermission = errors.New("permission denied")

// Type is the kind of an entry.
type Type int

const (
	TypeFile Type = iota
	TypePath
	TypeLink
)

// Info describes one entry.
type Info struct {
	Name    string // base name for List, full relative path for Info
	Type    Type
	Size    int64
	ModTime time.Time
	Link    string // link destination for TypeLink
}

// Writer receives a file's bytes. Nothing is visible under the final name
// until Commit returns nil; Abort discards everything written.
type Writer interface {
	io.Writer
	Commit() error
	Abort() error
}

// CreateOptions tunes Create.
type CreateOptions struct {
	// NoSync skips fsync of the file and its directory (for files that are
	// synced later in a batch). Such a file is complete and durable once
	// SyncAll returns; before, a driver may still be writing it (S3 sends
	// small ones in the background).
	NoSync bool
	// InPlace writes under the final name instead of a temporary one (no
	// rename at commit; Abort removes the file). Only for files nothing
	// trusts until a later write vouches for them, as a backup's files are
	// trusted only through its manifest, saved after them (pgBackRest
	// writes them so too). Drivers whose commit is atomic anyway (S3)
	// ignore it.
	InPlace bool
}

// Storage is a repository backend.
type Storage interface {
	// Open opens a file for reading. Missing file: error wrapping ErrNotFound.
	Open(ctx context.Context, path string) (io.ReadCloser, error)
	// OpenRange reads length bytes from offset (length < 0: to the end).
	OpenRange(ctx context.Context, path string, offset, length int64) (io.ReadCloser, error)
	// Create starts writing a file atomically (temp name, sync, rename).
	// Parent paths are created as needed.
	Create(ctx context.Context, path string, opts CreateOptions) (Writer, error)
	// List returns the direct children of path, sorted by name. A missing
	// path yields an empty list and no error.
	List(ctx context.Context, path string) ([]Info, error)
	// Stat describes one entry (links are not followed). Missing: ErrNotFound.
	Stat(ctx context.Context, path string) (Info, error)
	// Remove deletes a file; a missing file is not an error.
	Remove(ctx context.Context, path string) error
	// RemoveAll deletes a path and everything under it; missing is not an error.
	RemoveAll(ctx context.Context, path string) error
	// PathCreate creates a path and its parents (no-op on object stores).
	PathCreate(ctx context.Context, path string) error
	// Exists reports whether a file exists.
	Exists(ctx context.Context, path string) (bool, error)
	// Symlink creates (replacing) a relative symlink at path pointing to
	// target; drivers without links return nil without doing anything.
	Symlink(ctx context.Context, target, path string) error
	// Root names the storage location for messages (a directory, or
	// s3://bucket/prefix).
	Root() string
	// Full returns the user-facing name of path, for messages.
	Full(path string) string
}

// Syncer is implemented by drivers that can make every file written with
// NoSync durable at once (posix: syncfs on the repository's filesystem).
type Syncer interface {
	SyncAll(ctx context.Context) error
}

// SyncAll makes NoSync writes durable when the driver needs it.
func SyncAll(ctx context.Context, s Storage) error {
	if sy, ok := s.(Syncer); ok {
		return sy.SyncAll(ctx)
	}
	return nil
}

// ReadAll reads a whole (small) file.
func ReadAll(ctx context.Context, s Storage, path string) ([]byte, error) {
	r, err := s.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// WriteAll writes a whole (small) file atomically.
func WriteAll(ctx context.Context, s Storage, path string, data []byte) error {
	w, err := s.Create(ctx, path, CreateOptions{})
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}
