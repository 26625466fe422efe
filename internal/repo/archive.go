package repo

import (
	"context"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/lazyre"
	"github.com/pgbr-dev/pgbr/internal/storage"
)

// WAL archive names (format spec §1.6). The character classes are
// pgBackRest's own ([0-F] is the ASCII range '0'..'F').
var (
	segmentRegexp       = lazyre.New(`^[0-F]{24}(\.partial)?$`)
	partialRegexp       = lazyre.New(`^[0-F]{24}\.partial$`)
	historyRegexp       = lazyre.New(`^[0-F]{8}\.history$`)
	segmentPrefixRegexp = lazyre.New(`^[0-F]{24}`)
	// StoredSegmentRegexp matches a stored segment file name:
	// <24 hex>[.partial]-<sha1>[.<compress ext>].
	StoredSegmentRegexp = lazyre.New(`^[0-F]{24}(\.partial)?-[0-f]{40}(\.(gz|bz2|lz4|zst|xz))?$`)
)

// IsSegment reports whether name is a WAL segment name (including a
// .partial segment), i.e. a file stored with a checksum suffix and
// compression.
func IsSegment(name string) bool { return segmentRegexp.MatchString(name) }

// IsPartial reports whether name is a .partial WAL segment name.
func IsPartial(name string) bool { return partialRegexp.MatchString(name) }

// IsHistoryFile reports whether name is a timeline history file name.
func IsHistoryFile(name string) bool { return historyRegexp.MatchString(name) }

// ArchiveDir returns archive/<stanza>/<archiveID>.
func ArchiveDir(stanza, archiveID string) string { return Layout{stanza}.ArchiveIDDir(archiveID) }

// ArchiveSegmentDir returns the directory that holds an archive file: for
// names starting with 24 hex characters (segments, .partial, .backup)
// archive/<stanza>/<archiveID>/<first 16 chars>, for any other name
// (.history) archive/<stanza>/<archiveID>.
func ArchiveSegmentDir(stanza, archiveID, walName string) string {
	return Layout{stanza}.SegmentDir(archiveID, walName)
}

// StoredSegmentName returns the stored name of a segment:
// <walName>-<sha1><ext>, ext from the compress type ("gz" → ".gz").
func StoredSegmentName(walName, sha1, compressType string) string {
	return walName + "-" + sha1 + CompressExt(compressType)
}

// ArchiveFilePath returns the repository path of an archive file. Segments
// (IsSegment) need the stored name (see StoredSegmentName); other files are
// stored under their own name.
func ArchiveFilePath(stanza, archiveID, storedName string) string {
	return Layout{stanza}.ArchiveFile(archiveID, storedName)
}

// ParseStoredSegment splits a stored segment name into the WAL name (with
// .partial when present), the SHA-1 and the extension (".gz", "" for none).
func ParseStoredSegment(name string) (segment, sha1, ext string, ok bool) {
	if !StoredSegmentRegexp.MatchString(name) {
		return "", "", "", false
	}
	dash := strings.IndexByte(name, '-')
	segment = name[:dash]
	rest := name[dash+1:]
	sha1, ext = rest[:40], rest[40:]
	return segment, sha1, ext, true
}

// CompressTypeOfExt maps a file extension (".gz") to its compress type
// ("gz"); "" gives "none".
func CompressTypeOfExt(ext string) string {
	if ext == "" {
		return "none"
	}
	return strings.TrimPrefix(ext, ".")
}

// FindSegment lists the stored files of a WAL segment in one archive id
// (normally zero or one; more is an ArchiveDuplicate situation). walName
// may end in .partial; a plain name never matches a .partial file.
func FindSegment(ctx context.Context, st storage.Storage, stanza, archiveID, walName string) ([]string, error) {
	list, err := st.List(ctx, ArchiveSegmentDir(stanza, archiveID, walName))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range list {
		if seg, _, _, ok := ParseStoredSegment(e.Name); ok && seg == walName {
			out = append(out, e.Name)
		}
	}
	return out, nil
}
