// Package pg holds PostgreSQL facts pgbr needs: the version table, pg_control
// and WAL header parsing, LSN and WAL segment arithmetic, and the page
// checksum. Everything here is pure (no I/O) except ReadControl.
package pg

import (
	"strconv"
	"strings"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// Version identifies a PostgreSQL major version.
type Version struct {
	Num            int    // numeric form: 90600, 150000
	Str            string // version string as stored in info files: "9.6", "15"
	ControlVersion uint32 // pg_control_version
	CatalogVersion uint32 // catalog_version_no
	WalMagic       uint16 // xlp_magic of WAL pages
}

// Supported reports whether pgBackRest 2.45 supports the version (9.3 … 15).
func (v Version) Supported() bool { return v.Num >= 90300 && v.Num < 160000 }

// versions is the identification table (format spec §7.2), oldest first.
var versions = []Version{
	{90300, "9.3", 937, 201306121, 0xD075},
	{90400, "9.4", 942, 201409291, 0xD07E},
	{90500, "9.5", 942, 201510051, 0xD087},
	{90600, "9.6", 960, 201608131, 0xD093},
	{100000, "10", 1002, 201707211, 0xD097},
	{110000, "11", 1100, 201809051, 0xD098},
	{120000, "12", 1201, 201909212, 0xD101},
	{130000, "13", 1300, 202007201, 0xD106},
	{140000, "14", 1300, 202107181, 0xD10D},
	{150000, "15", 1300, 202209061, 0xD110},
	{160000, "16", 1300, 202307071, 0xD113},
	{170000, "17", 1700, 202406281, 0xD116},
	{180000, "18", 1800, 202506291, 0xD118},
}

// Versions returns the known versions, oldest first (a copy).
func Versions() []Version { return append([]Version(nil), versions...) }

// VersionByControl finds the version whose control and catalog versions both
// match exactly.
func VersionByControl(control, catalog uint32) (Version, error) {
	for _, v := range versions {
		if v.ControlVersion == control && v.CatalogVersion == catalog {
			return v, nil
		}
	}
	return Version{}, errs.New(errs.VersionNotSupported,
		"unexpected control version = %d and catalog version = %d\nHINT: is this version of PostgreSQL supported? pgbr supports PostgreSQL %s.",
		control, catalog, SupportedList())
}

// SupportedList names the known versions for error messages:
// "9.3, 9.4, …, 17, 18".
func SupportedList() string {
	var b strings.Builder
	for i, v := range versions {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v.Str)
	}
	return b.String()
}

// VersionByString finds a version by its string form ("9.6", "15").
func VersionByString(s string) (Version, bool) {
	for _, v := range versions {
		if v.Str == s {
			return v, true
		}
	}
	return Version{}, false
}

// VersionByWalMagic finds a version by its WAL page magic.
func VersionByWalMagic(m uint16) (Version, bool) {
	for _, v := range versions {
		if v.WalMagic == m {
			return v, true
		}
	}
	return Version{}, false
}

// VersionByNum finds the major version of a numeric version such as
// server_version_num: 150004 → 15, 90624 → 9.6, 150000 → 15.
func VersionByNum(num int) (Version, bool) {
	var major int
	if num >= 100000 {
		major = num / 10000 * 10000
	} else {
		major = num / 100 * 100
	}
	for _, v := range versions {
		if v.Num == major {
			return v, true
		}
	}
	return Version{}, false
}

// VersionNumFromString converts a version string to its numeric form without
// checking the version table: "9.6" → 90600, "15" → 150000.
func VersionNumFromString(s string) (int, bool) {
	major, minor := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			major, minor = s[:i], s[i+1:]
			break
		}
	}
	ma, err := strconv.Atoi(major)
	if err != nil || ma < 0 || ma > 1000 || major[0] == '+' {
		return 0, false
	}
	if minor == "" {
		if len(major) != len(s) {
			return 0, false
		}
		return ma * 10000, true
	}
	mi, err := strconv.Atoi(minor)
	if err != nil || mi < 0 || mi > 99 || minor[0] == '+' {
		return 0, false
	}
	return ma*10000 + mi*100, true
}
