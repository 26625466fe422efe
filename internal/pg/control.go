package pg

import (
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// PageSize is the only PostgreSQL block size pgBackRest 2.45 supports.
const PageSize = 8192

// ControlFileSize is how many bytes of global/pg_control are read.
const ControlFileSize = 8192

// WalSegmentSizeDefault is the default (and, before PostgreSQL 11, only) WAL
// segment size.
const WalSegmentSizeDefault = 16 * 1024 * 1024

// Control holds the pg_control fields pgbr uses.
type Control struct {
	SystemID            uint64
	ControlVersion      uint32
	CatalogVersion      uint32
	Checkpoint          uint64 // LSN of the latest checkpoint
	Timeline            uint32 // checkPointCopy.ThisTimeLineID
	PageSize            uint32
	WalSegmentSize      uint32
	DataChecksumVersion uint32 // 0 = data checksums off
	Version             Version
}

// controlOffsets are the byte offsets of the version-dependent fields.
type controlOffsets struct{ timeline, blcksz, walSegSize, checksum int }

func offsetsFor(v Version) controlOffsets {
	switch {
	case v.Num < 90400: // 9.3
		return controlOffsets{56, 192, 204, 224}
	case v.Num < 90500: // 9.4
		return controlOffsets{56, 200, 212, 236}
	case v.Num < 110000: // 9.5 … 10
		return controlOffsets{56, 216, 228, 252}
	case v.Num < 120000: // 11
		return controlOffsets{48, 208, 220, 244}
	default: // 12 … 18
		return controlOffsets{48, 216, 228, 252}
	}
}

// ParseControl parses the content of global/pg_control (normally 8192 bytes;
// at least enough to hold the fields read is required).
func ParseControl(b []byte) (Control, error) {
	if len(b) < 16 {
		return Control{}, errs.New(errs.Format,
			"pg_control is too short: %d byte(s), expected %d", len(b), ControlFileSize)
	}
	le := binary.LittleEndian
	c := Control{
		SystemID:       le.Uint64(b[0:]),
		ControlVersion: le.Uint32(b[8:]),
		CatalogVersion: le.Uint32(b[12:]),
	}
	v, err := VersionByControl(c.ControlVersion, c.CatalogVersion)
	if err != nil {
		return Control{}, err
	}
	c.Version = v
	o := offsetsFor(v)
	if len(b) < o.checksum+4 {
		return Control{}, errs.New(errs.Format,
			"pg_control is too short: %d byte(s), expected %d", len(b), ControlFileSize)
	}
	c.Checkpoint = le.Uint64(b[32:])
	c.Timeline = le.Uint32(b[o.timeline:])
	c.PageSize = le.Uint32(b[o.blcksz:])
	c.WalSegmentSize = le.Uint32(b[o.walSegSize:])
	c.DataChecksumVersion = le.Uint32(b[o.checksum:])
	if c.PageSize != PageSize {
		return Control{}, errs.New(errs.Format, "page size is %d but must be %d", c.PageSize, PageSize)
	}
	if err := checkWalSegmentSize(v, c.WalSegmentSize); err != nil {
		return Control{}, err
	}
	return c, nil
}

func checkWalSegmentSize(v Version, size uint32) error {
	if v.Num < 110000 && size != WalSegmentSizeDefault {
		return errs.New(errs.Format, "wal segment size is %d but must be %d for PostgreSQL <= 10",
			size, WalSegmentSizeDefault)
	}
	if !validSegSize(size) {
		return errs.New(errs.Format, "wal segment size is %d but must be a power of 2 between 1MiB and 1GiB", size)
	}
	return nil
}

// ReadControl reads and parses <pgPath>/global/pg_control.
func ReadControl(pgPath string) (Control, error) {
	path := filepath.Join(pgPath, "global", "pg_control")
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Control{}, &errs.Error{Code: errs.FileMissing,
				Msg: "unable to open missing file '" + path + "' for read", Err: err}
		}
		return Control{}, errs.Wrap(errs.FileOpen, err, "unable to open file '%s' for read", path)
	}
	defer f.Close()
	buf := make([]byte, ControlFileSize)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return Control{}, errs.Wrap(errs.FileRead, err, "unable to read '%s'", path)
	}
	c, err := ParseControl(buf[:n])
	if err != nil && errs.CodeOf(err) == errs.VersionNotSupported {
		return c, unknownVersion(pgPath, buf[:n])
	}
	return c, err
}

// unknownVersion explains a pg_control pgbr does not know: the version the
// data directory says it is (PG_VERSION), the raw control and catalog
// versions, and the versions pgbr supports.
func unknownVersion(pgPath string, b []byte) error {
	le := binary.LittleEndian
	control, catalog := le.Uint32(b[8:]), le.Uint32(b[12:])
	what := "an unknown PostgreSQL version"
	if raw, err := os.ReadFile(filepath.Join(pgPath, "PG_VERSION")); err == nil {
		pv := strings.TrimSpace(string(raw))
		if len(pv) > 0 && len(pv) <= 8 {
			what = "PostgreSQL " + strconv.Quote(pv)[1:len(strconv.Quote(pv))-1] + " (PG_VERSION)"
		}
	}
	return errs.New(errs.VersionNotSupported,
		"'%s' holds %s with pg_control version %d and catalog version %d, which pgbr does not support\nHINT: pgbr supports PostgreSQL %s.",
		pgPath, what, control, catalog, SupportedList())
}
