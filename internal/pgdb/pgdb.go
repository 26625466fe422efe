// Package pgdb talks to a running PostgreSQL server over pgx: the queries
// backup, check and stanza commands need, with pgBackRest's error codes.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgbr-dev/pgbr/internal/errs"
)

// Options says how to reach the server (pg1-* options).
type Options struct {
	Host     string // pg1-host is remote; unsupported, so only socket/host for local
	Socket   string // pg1-socket-path
	Port     int
	User     string
	Database string
	Timeout  time.Duration // db-timeout
}

// DB is one connection.
type DB struct {
	conn *pgx.Conn
	opts Options
	// versionNum is the server's server_version_num (e.g. 130023): the
	// backup functions are named and called differently before 15.
	versionNum int
}

// Settings are the server facts commands check.
type Settings struct {
	VersionNum     int
	DataDirectory  string
	ArchiveMode    string
	ArchiveCommand string
	InRecovery     bool
	CheckpointSecs int
}

// Connect opens a connection with application_name 'pgBackRest [<cmd>]'.
func Connect(ctx context.Context, o Options, command string) (*DB, error) {
	var parts []string
	if o.Socket != "" {
		parts = append(parts, "host="+quote(o.Socket))
	} else if o.Host != "" {
		parts = append(parts, "host="+quote(o.Host))
	}
	if o.Port != 0 {
		parts = append(parts, fmt.Sprintf("port=%d", o.Port))
	}
	if o.User != "" {
		parts = append(parts, "user="+quote(o.User))
	}
	db := o.Database
	if db == "" {
		db = "postgres"
	}
	parts = append(parts, "dbname="+quote(db), "connect_timeout=30")
	cfg, err := pgx.ParseConfig(strings.Join(parts, " "))
	if err != nil {
		return nil, errs.Wrap(errs.DbConnect, err, "unable to connect to '%s'", strings.Join(parts, " "))
	}
	cfg.RuntimeParams["application_name"] = "pgBackRest [" + command + "]"
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, errs.New(errs.DbConnect, "unable to connect to '%s': %s", strings.Join(parts, " "), connMsg(err))
	}
	d := &DB{conn: conn, opts: o}
	if _, err := conn.Exec(ctx, "set max_parallel_workers_per_gather = 0"); err != nil {
		conn.Close(ctx)
		return nil, errs.Wrap(errs.DbQuery, err, "unable to set session options")
	}
	const vsql = "select pg_catalog.current_setting('server_version_num')::int"
	if err := conn.QueryRow(ctx, vsql).Scan(&d.versionNum); err != nil {
		conn.Close(ctx)
		return nil, qerr(err, vsql)
	}
	return d, nil
}

func connMsg(err error) string {
	var pe *pgconn.ConnectError
	if errors.As(err, &pe) {
		return pe.Error()
	}
	return err.Error()
}

func quote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `\'`) + "'"
}

// Close closes the connection.
func (d *DB) Close() {
	if d != nil && d.conn != nil {
		d.conn.Close(context.Background())
	}
}

func (d *DB) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	t := d.opts.Timeout
	if t <= 0 {
		t = 30 * time.Minute
	}
	return context.WithTimeout(ctx, t)
}

func qerr(err error, sql string) error {
	return errs.New(errs.DbQuery, "unable to execute query '%s': %s", sql, err)
}

// Settings reads version, data directory, archive settings, recovery state.
func (d *DB) Settings(ctx context.Context) (Settings, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	var s Settings
	const sql = "select (select setting from pg_catalog.pg_settings where name = 'server_version_num')::int," +
		" (select setting from pg_catalog.pg_settings where name = 'data_directory')::text," +
		" (select setting from pg_catalog.pg_settings where name = 'archive_mode')::text," +
		" (select setting from pg_catalog.pg_settings where name = 'archive_command')::text," +
		" (select setting from pg_catalog.pg_settings where name = 'checkpoint_timeout')::int," +
		" pg_catalog.pg_is_in_recovery()"
	err := d.conn.QueryRow(ctx, sql).Scan(&s.VersionNum, &s.DataDirectory, &s.ArchiveMode, &s.ArchiveCommand, &s.CheckpointSecs, &s.InRecovery)
	if err != nil {
		return s, qerr(err, sql)
	}
	return s, nil
}

// ClockMillis returns the server clock in milliseconds since the epoch.
func (d *DB) ClockMillis(ctx context.Context) (int64, error) {
	const sql = "select (extract(epoch from clock_timestamp()) * 1000)::bigint"
	var ms int64
	if err := d.conn.QueryRow(ctx, sql).Scan(&ms); err != nil {
		return 0, qerr(err, sql)
	}
	return ms, nil
}

// AdvisoryLock takes pgBackRest's advisory lock so two backups (from pgbr or
// pgBackRest) of one cluster never run at once.
func (d *DB) AdvisoryLock(ctx context.Context) error {
	const sql = "select pg_catalog.pg_try_advisory_lock(12340078987004321)::bool"
	var ok bool
	if err := d.conn.QueryRow(ctx, sql).Scan(&ok); err != nil {
		return qerr(err, sql)
	}
	if !ok {
		return errs.New(errs.LockAcquire, "unable to acquire pgBackRest advisory lock\nHINT: is another pgBackRest backup already running on this cluster?")
	}
	return nil
}

// CurrentWalFile returns the segment holding the current insert LSN.
func (d *DB) CurrentWalFile(ctx context.Context) (string, error) {
	const sql = "select pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_insert_lsn())::text"
	var s string
	if err := d.conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		return "", qerr(err, sql)
	}
	return s, nil
}

// VersionNum is the server's server_version_num.
func (d *DB) VersionNum() int { return d.versionNum }

// backupStartSQL is the non-exclusive backup start query: from 15 on
// pg_backup_start(label, fast); before, pg_start_backup(label, fast, false)
// where the third argument asks for a non-exclusive backup.
func backupStartSQL(versionNum int, fast bool) string {
	call := "pg_catalog.pg_backup_start($1::text, " + strconv.FormatBool(fast) + ")"
	if versionNum < 150000 {
		call = "pg_catalog.pg_start_backup($1::text, " + strconv.FormatBool(fast) + ", false)"
	}
	return "select lsn::text as lsn, pg_catalog.pg_walfile_name(lsn)::text as wal_segment_name from " + call + " as lsn"
}

// backupStopSQL is the non-exclusive backup stop query. Waiting for the
// archive is off: the backup checks the repository itself. From 15 on
// pg_backup_stop(wait_for_archive); before, pg_stop_backup(exclusive,
// wait_for_archive), both returning lsn, labelfile and spcmapfile.
func backupStopSQL(versionNum int) string {
	call := "pg_catalog.pg_backup_stop(false)"
	if versionNum < 150000 {
		call = "pg_catalog.pg_stop_backup(false, false)"
	}
	return "select lsn::text as lsn, pg_catalog.pg_walfile_name(lsn)::text as wal_segment_name," +
		" labelfile::text as backuplabel_file, spcmapfile::text as tablespacemap_file from " + call
}

// BackupStart starts a non-exclusive backup and returns the start LSN and
// its segment name.
func (d *DB) BackupStart(ctx context.Context, label string, fast bool) (lsn, segment string, err error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	sql := backupStartSQL(d.versionNum, fast)
	if err := d.conn.QueryRow(ctx, sql, label).Scan(&lsn, &segment); err != nil {
		return "", "", qerr(err, sql)
	}
	return lsn, segment, nil
}

// StopResult is what pg_backup_stop returns.
type StopResult struct {
	LSN           string
	Segment       string
	BackupLabel   string
	TablespaceMap string
}

// BackupStop stops the non-exclusive backup started on this connection.
func (d *DB) BackupStop(ctx context.Context) (StopResult, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	sql := backupStopSQL(d.versionNum)
	var r StopResult
	var spc *string
	if err := d.conn.QueryRow(ctx, sql).Scan(&r.LSN, &r.Segment, &r.BackupLabel, &spc); err != nil {
		return r, qerr(err, sql)
	}
	if spc != nil && strings.TrimSpace(*spc) != "" {
		r.TablespaceMap = *spc
	}
	return r, nil
}

// SwitchWal creates a restore point and switches WAL, returning the name
// of the segment that was switched out (the one to wait for in the archive).
func (d *DB) SwitchWal(ctx context.Context) (string, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	const rp = "select pg_catalog.pg_create_restore_point('pgBackRest Archive Check')::text"
	if _, err := d.conn.Exec(ctx, rp); err != nil {
		return "", qerr(err, rp)
	}
	const sql = "select pg_catalog.pg_walfile_name(pg_catalog.pg_switch_wal())::text"
	var s string
	if err := d.conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		return "", qerr(err, sql)
	}
	return s, nil
}

// Database is one row of pg_database.
type Database struct {
	Name         string
	OID          uint32
	LastSystemID uint32
}

// Databases lists databases as pgBackRest records them in the manifest.
func (d *DB) Databases(ctx context.Context) ([]Database, error) {
	const sql = "select oid::oid, datname::text, (select oid::oid from pg_catalog.pg_database where datname = 'template0')" +
		" as datlastsysoid from pg_catalog.pg_database"
	rows, err := d.conn.Query(ctx, sql)
	if err != nil {
		return nil, qerr(err, sql)
	}
	defer rows.Close()
	var out []Database
	for rows.Next() {
		var db Database
		if err := rows.Scan(&db.OID, &db.Name, &db.LastSystemID); err != nil {
			return nil, qerr(err, sql)
		}
		out = append(out, db)
	}
	if err := rows.Err(); err != nil {
		return nil, qerr(err, sql)
	}
	return out, nil
}

// Tablespaces maps tablespace oid to name.
func (d *DB) Tablespaces(ctx context.Context) (map[uint32]string, error) {
	const sql = "select oid::oid, spcname::text from pg_catalog.pg_tablespace"
	rows, err := d.conn.Query(ctx, sql)
	if err != nil {
		return nil, qerr(err, sql)
	}
	defer rows.Close()
	out := map[uint32]string{}
	for rows.Next() {
		var oid uint32
		var name string
		if err := rows.Scan(&oid, &name); err != nil {
			return nil, qerr(err, sql)
		}
		out[oid] = name
	}
	return out, rows.Err()
}

// ReplayLSN returns pg_last_wal_replay_lsn() on a standby; ok is false when
// the server is not in recovery (the function returns null).
func (d *DB) ReplayLSN(ctx context.Context) (lsn string, ok bool, err error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	const sql = "select pg_catalog.pg_last_wal_replay_lsn()::text"
	var s *string
	if err := d.conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		return "", false, qerr(err, sql)
	}
	if s == nil {
		return "", false, nil
	}
	return *s, true, nil
}

// Checkpoint runs CHECKPOINT (a restartpoint on a standby).
func (d *DB) Checkpoint(ctx context.Context) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	if _, err := d.conn.Exec(ctx, "checkpoint"); err != nil {
		return qerr(err, "checkpoint")
	}
	return nil
}

// CheckpointLSN returns pg_control_checkpoint()'s checkpoint_lsn and
// timeline_id.
func (d *DB) CheckpointLSN(ctx context.Context) (lsn string, timeline uint32, err error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	const sql = "select checkpoint_lsn::text, timeline_id::int8 from pg_catalog.pg_control_checkpoint()"
	var tli int64
	if err := d.conn.QueryRow(ctx, sql).Scan(&lsn, &tli); err != nil {
		return "", 0, qerr(err, sql)
	}
	return lsn, uint32(tli), nil
}
