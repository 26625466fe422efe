package command

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pgbr-dev/pgbr/internal/repo"
)

func u64p(v uint64) *uint64 { return &v }

// infoTestStanzas covers what a real repository rarely shows at once: two
// repos with one in error, a backup lock with progress, a prior and a
// current cluster, an offline block incremental backup, and the --set
// detail (symlinks, tablespaces, error list, annotations).
func infoTestStanzas() []infoStanzaOut {
	full := infoBackupOut{
		archiveStart: "000000010000000000000002", archiveStop: "000000010000000000000003",
		backrestFormat: 5, backrestVer: "2.45", dbID: 1, repoKey: 1, errorKnown: true,
		size: 1024, delta: 1024, repoSize: u64p(512), repoDelta: 512, label: "20260101-000000F",
		lsnStart: "0/2000028", lsnStop: "0/3000100", tsStart: 1767225600, tsStop: 1767225661, typ: "full",
	}
	incr := infoBackupOut{
		backrestFormat: 5, backrestVer: "2.45", dbID: 2, repoKey: 1,
		size: 35 << 20, delta: 768 << 10, repoDelta: 100, repoSizeMap: u64p(7), repoDeltaMap: u64p(3),
		label: "20260101-000000F_20260102-000000I", prior: "20260101-000000F",
		reference: []string{"20260101-000000F"}, referenceSet: true, tsStart: 1767312000, tsStop: 1767312001, typ: "incr",
	}
	detail := infoBackupOut{
		annotation:   map[string]string{"z": "last", "a key": `x "y"`},
		archiveStart: "000000010000000000000005", archiveStop: "000000010000000000000005",
		backrestFormat: 5, backrestVer: "2.45", dbID: 1, repoKey: 2, set: true,
		databaseRef: []infoDBRef{{"db2", 16385}, {"postgres", 5}},
		errorKnown:  true, errorVal: true, errorList: []string{"base/5/16394", "pg_tblspc/16384/PG_15_202209061/5/16400"},
		size: 37550333, delta: 37550333, repoSize: u64p(6831516), repoDelta: 6831516,
		label:       "20260103-000000F",
		links:       []infoLinkOut{{"pg_wal", "/wal"}, {"postgresql.conf", "/etc/pg/postgresql.conf"}},
		tablespaces: []infoTablespaceOut{{"ts1", "/ts1", 16384}},
		tsStart:     1767398400, tsStop: 1767398410, typ: "full",
	}
	return []infoStanzaOut{
		{
			archive: []infoArchiveOut{
				{dbID: 1, repoKey: 1, id: "14-1", min: "000000010000000000000001", max: "00000001000000000000000A"},
				{dbID: 2, repoKey: 1, id: "15-2"},
			},
			backup:   []infoBackupOut{full, incr},
			cipher:   "mixed",
			db:       []infoDBOut{{1, 1, 7000000000000000001, "14"}, {2, 1, 18446744073709551615, "15"}},
			name:     "db1",
			repo:     []infoRepoOut{{1, "none", 0, "ok"}, {2, "aes-256-cbc", 99, "[CryptoError] unable to load\nHINT: is or was the repo encrypted?"}},
			code:     infoMixed,
			lockHeld: true, pctCplt: u64p(5),
			curVersion: "15", curSystemID: 18446744073709551615,
		},
		{
			archive:    []infoArchiveOut{{dbID: 1, repoKey: 2, id: "15-1", min: "000000010000000000000004", max: "000000010000000000000006"}},
			backup:     []infoBackupOut{detail},
			cipher:     "none",
			db:         []infoDBOut{{1, 2, 1, "15"}},
			name:       "db2",
			repo:       []infoRepoOut{{2, "none", 0, "ok"}},
			code:       infoOK,
			curVersion: "15", curSystemID: 1,
		},
		{
			archive: []infoArchiveOut{}, backup: []infoBackupOut{}, cipher: "none", db: []infoDBOut{}, name: "db3",
			repo: []infoRepoOut{{1, "none", 99, "[FormatError] bad\nsecond line"}}, code: infoOther, lockHeld: true,
		},
		{
			archive: []infoArchiveOut{}, backup: []infoBackupOut{}, cipher: "none", db: []infoDBOut{}, name: "db4",
			repo: []infoRepoOut{{1, "none", 1, "missing stanza path"}}, code: infoMissingStanzaPath,
		},
		{
			archive: []infoArchiveOut{}, backup: []infoBackupOut{}, cipher: "none", db: []infoDBOut{}, name: "db5",
			repo: []infoRepoOut{{1, "none", 6, "requested backup not found"}}, code: infoBackupMissing, lockHeld: true, pctCplt: u64p(9999),
		},
	}
}

// The expected text follows pgBackRest 2.45's formatText* in
// src/command/info/info.c line by line.
const infoTestText = `stanza: db1
    status: mixed (backup/expire running - 0.05% complete)
        repo1: ok
        repo2: error (other)
               [CryptoError] unable to load
               HINT: is or was the repo encrypted?
    cipher: mixed
        repo1: none
        repo2: aes-256-cbc

    db (prior)
        wal archive min/max (14): 000000010000000000000001/00000001000000000000000A

        full backup: 20260101-000000F
            timestamp start/stop: 2026-01-01 00:00:00 / 2026-01-01 00:01:01
            wal start/stop: 000000010000000000000002 / 000000010000000000000003
            lsn start/stop: 0/2000028 / 0/3000100
            database size: 1KB, database backup size: 1KB
            repo1: backup set size: 512B, backup size: 512B

    db (current)
        wal archive min/max (15): none present

        incr backup: 20260101-000000F_20260102-000000I
            timestamp start/stop: 2026-01-02 00:00:00 / 2026-01-02 00:00:01
            wal start/stop: n/a
            database size: 35MB, database backup size: 768KB
            repo1: backup size: 100B
            backup reference list: 20260101-000000F

stanza: db2
    status: ok
    cipher: none

    db (current)
        wal archive min/max (15): 000000010000000000000004/000000010000000000000006

        full backup: 20260103-000000F
            timestamp start/stop: 2026-01-03 00:00:00 / 2026-01-03 00:00:10
            wal start/stop: 000000010000000000000005 / 000000010000000000000005
            database size: 35.8MB, database backup size: 35.8MB
            repo2: backup set size: 6.5MB, backup size: 6.5MB
            database list: db2 (16385), postgres (5)
            symlinks:
                pg_wal => /wal
                postgresql.conf => /etc/pg/postgresql.conf
            tablespaces:
                ts1 (16384) => /ts1
            error list: base/5/16394, pg_tblspc/16384/PG_15_202209061/5/16400
            annotation(s)
                a key: x "y"
                z: last

stanza: db3
    status: error (other) (backup/expire running)
            [FormatError] bad
            second line
    cipher: none

stanza: db4
    status: error (missing stanza path)

stanza: db5
    status: error (requested backup not found, backup/expire running - 99.99% complete)
    cipher: none
`

func TestInfoText(t *testing.T) {
	saved := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = saved })
	got := infoText(infoTestStanzas(), "")
	if got != infoTestText {
		t.Fatalf("text output:\n%s\nwant:\n%s\nfirst difference at %d", got, infoTestText, infoFirstDiff(got, infoTestText))
	}
	if got := infoText(nil, ""); got != "No stanzas exist in the repository.\n" {
		t.Fatalf("no stanzas: %q", got)
	}
}

func infoFirstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestInfoTextErrorWithoutList(t *testing.T) {
	s := infoTestStanzas()[1]
	s.backup[0].errorList = nil
	s.backup[0].set = false
	s.backup[0].annotation = nil
	s.backup[0].links, s.backup[0].tablespaces = nil, nil
	got := infoText([]infoStanzaOut{s}, "")
	if !strings.Contains(got, "backup size: 6.5MB\n            error(s) detected during backup\n") || strings.Contains(got, "database list") {
		t.Fatalf("error without list:\n%s", got)
	}
	s.backup[0].set = true
	s.backup[0].databaseRef = []infoDBRef{}
	if got := infoText([]infoStanzaOut{s}, s.backup[0].label); !strings.Contains(got, "            database list: none\n") {
		t.Fatalf("empty database list:\n%s", got)
	}
}

// The expected JSON was written from pgBackRest's key names and its rule
// that every object is written with keys in ascending order.
const infoTestJSON = `[` +
	`{"archive":[{"database":{"id":1,"repo-key":1},"id":"14-1","max":"00000001000000000000000A","min":"000000010000000000000001"},` +
	`{"database":{"id":2,"repo-key":1},"id":"15-2","max":null,"min":null}],` +
	`"backup":[{"archive":{"start":"000000010000000000000002","stop":"000000010000000000000003"},"backrest":{"format":5,"version":"2.45"},` +
	`"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":1024,"repository":{"delta":512,"size":512},"size":1024},` +
	`"label":"20260101-000000F","lsn":{"start":"0/2000028","stop":"0/3000100"},"prior":null,"reference":null,` +
	`"timestamp":{"start":1767225600,"stop":1767225661},"type":"full"},` +
	`{"archive":{"start":null,"stop":null},"backrest":{"format":5,"version":"2.45"},"database":{"id":2,"repo-key":1},` +
	`"info":{"delta":786432,"repository":{"delta":100,"delta-map":3,"size-map":7},"size":36700160},` +
	`"label":"20260101-000000F_20260102-000000I","prior":"20260101-000000F","reference":["20260101-000000F"],` +
	`"timestamp":{"start":1767312000,"stop":1767312001},"type":"incr"}],` +
	`"cipher":"mixed","db":[{"id":1,"repo-key":1,"system-id":7000000000000000001,"version":"14"},` +
	`{"id":2,"repo-key":1,"system-id":18446744073709551615,"version":"15"}],"name":"db1",` +
	`"repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}},` +
	`{"cipher":"aes-256-cbc","key":2,"status":{"code":99,"message":"[CryptoError] unable to load\nHINT: is or was the repo encrypted?"}}],` +
	`"status":{"code":4,"lock":{"backup":{"held":true}},"message":"different across repos"}},` +
	`{"archive":[{"database":{"id":1,"repo-key":2},"id":"15-1","max":"000000010000000000000006","min":"000000010000000000000004"}],` +
	`"backup":[{"annotation":{"a key":"x \"y\"","z":"last"},"archive":{"start":"000000010000000000000005","stop":"000000010000000000000005"},` +
	`"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":2},` +
	`"database-ref":[{"name":"db2","oid":16385},{"name":"postgres","oid":5}],"error":true,` +
	`"error-list":["base/5/16394","pg_tblspc/16384/PG_15_202209061/5/16400"],` +
	`"info":{"delta":37550333,"repository":{"delta":6831516,"size":6831516},"size":37550333},"label":"20260103-000000F",` +
	`"link":[{"destination":"/wal","name":"pg_wal"},{"destination":"/etc/pg/postgresql.conf","name":"postgresql.conf"}],` +
	`"prior":null,"reference":null,"tablespace":[{"destination":"/ts1","name":"ts1","oid":16384}],` +
	`"timestamp":{"start":1767398400,"stop":1767398410},"type":"full"}],` +
	`"cipher":"none","db":[{"id":1,"repo-key":2,"system-id":1,"version":"15"}],"name":"db2",` +
	`"repo":[{"cipher":"none","key":2,"status":{"code":0,"message":"ok"}}],` +
	`"status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}},` +
	`{"archive":[],"backup":[],"cipher":"none","db":[],"name":"db3",` +
	`"repo":[{"cipher":"none","key":1,"status":{"code":99,"message":"[FormatError] bad\nsecond line"}}],` +
	`"status":{"code":99,"lock":{"backup":{"held":true}},"message":"other"}},` +
	`{"archive":[],"backup":[],"cipher":"none","db":[],"name":"db4",` +
	`"repo":[{"cipher":"none","key":1,"status":{"code":1,"message":"missing stanza path"}}],` +
	`"status":{"code":1,"lock":{"backup":{"held":false}},"message":"missing stanza path"}},` +
	`{"archive":[],"backup":[],"cipher":"none","db":[],"name":"db5",` +
	`"repo":[{"cipher":"none","key":1,"status":{"code":6,"message":"requested backup not found"}}],` +
	`"status":{"code":6,"lock":{"backup":{"held":true}},"message":"requested backup not found"}}]`

func TestInfoJSON(t *testing.T) {
	stanzas := infoTestStanzas()
	// JSON never shows the progress (pgBackRest adds it for text only).
	for i := range stanzas {
		stanzas[i].pctCplt = nil
	}
	got := string(infoJSON(stanzas))
	if got != infoTestJSON {
		t.Fatalf("json output:\n%s\nwant:\n%s\nfirst difference at %d", got, infoTestJSON, infoFirstDiff(got, infoTestJSON))
	}
	checkSortedKeys(t, got)
	if got := string(infoJSON(nil)); got != "[]" {
		t.Fatalf("no stanzas: %q", got)
	}
}

// checkSortedKeys fails unless every object of doc has its keys in
// ascending byte order and no key twice.
func checkSortedKeys(t *testing.T, doc string) {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(doc))
	d.UseNumber()
	type frame struct {
		obj     bool
		lastKey string
		keys    int
		wantKey bool
	}
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].wantKey = true
		}
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("invalid JSON: %v", err)
		}
		if delim, ok := tok.(json.Delim); ok {
			switch delim {
			case '{', '[':
				stack = append(stack, &frame{obj: delim == '{', wantKey: delim == '{'})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			f := stack[n-1]
			k := tok.(string)
			if f.keys > 0 && f.lastKey >= k {
				t.Fatalf("key %q after %q", k, f.lastKey)
			}
			f.lastKey, f.keys, f.wantKey = k, f.keys+1, false
			continue
		}
		valueDone()
	}
}

func TestInfoArchiveID(t *testing.T) {
	a := &repo.ArchiveInfo{History: []repo.ArchiveHistory{{ID: 1, SystemID: 10, Version: "14"}, {ID: 2, SystemID: 20, Version: "15"},
		{ID: 3, SystemID: 10, Version: "14"}}}
	for _, c := range []struct {
		h    repo.BackupHistory
		want string
	}{
		{repo.BackupHistory{ID: 1, SystemID: 10, Version: "14"}, "14-1"}, // exact match
		{repo.BackupHistory{ID: 5, SystemID: 10, Version: "14"}, "14-3"}, // newest with the same cluster
		{repo.BackupHistory{ID: 2, SystemID: 20, Version: "15"}, "15-2"},
	} {
		if got, err := infoArchiveID(a, c.h); err != nil || got != c.want {
			t.Errorf("%+v: got %q, %v; want %q", c.h, got, err, c.want)
		}
	}
	_, err := infoArchiveID(a, repo.BackupHistory{ID: 1, SystemID: 99, Version: "15"})
	if err == nil || err.Error() != "unable to retrieve the archive id for database version '15' and system-id '99'" {
		t.Fatalf("no match: %v", err)
	}
}

func TestInfoPathPg(t *testing.T) {
	for in, want := range map[string]string{
		"pg_data/base/1/2":           "base/1/2",
		"pg_tblspc/16384/PG_15/5/16": "pg_tblspc/16384/PG_15/5/16",
	} {
		if got := infoPathPg(in); got != want {
			t.Errorf("infoPathPg(%q) = %q, want %q", in, got, want)
		}
	}
}
