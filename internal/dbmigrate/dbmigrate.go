// Package dbmigrate owns applying the versioned Postgres migrations (an
// atlas-format directory: <version>_<name>.sql files plus atlas.sum, generated
// from ent/schema elsewhere) and reporting their status. It owns the revision
// history table public.atlas_schema_revisions and the advisory lock that keeps
// two starting processes from migrating at the same time (a transaction-level
// lock, so migrations also run through a transaction-pooling PgBouncer).
//
// Execution uses atlas's Go API (migrate.Executor with the postgres driver);
// the atlas CLI is not involved. The Go API runs statements one by one and
// leaves transactions to the caller, so this package wraps every file in its
// own transaction (what the CLI calls txmode "file"): a failing statement
// rolls back the whole file, the revision is recorded as failed (applied 0 of
// N, with the error and the statement), and the next Apply retries that file
// from its first statement. A file starting with the directive
// "-- atlas:txmode none" (needed for CREATE INDEX CONCURRENTLY) runs outside a
// transaction: progress is recorded per statement and a rerun resumes at the
// failed statement, after atlas checks the statements already applied did not
// change.
package dbmigrate

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
)

// RevisionsTable is the table in the public schema that holds one row per
// migration file applied (or attempted) on the database.
const RevisionsTable = "atlas_schema_revisions"

const (
	revisionsSchema = "public"
	// lockKey is the pg_advisory_xact_lock key held while migrating ("ispgmigr").
	lockKey int64 = 0x6973_7067_6d69_6772
	// failureWriteTimeout bounds recording a failed revision after the
	// caller's context may already be done.
	failureWriteTimeout = 10 * time.Second
)

// lockStatement returns one row when it took the lock.
var lockStatement = fmt.Sprintf(`SELECT 1 WHERE pg_try_advisory_xact_lock(%d)`, lockKey)

// Apply validates dir against its atlas.sum, takes the migration advisory
// lock (waiting while another process holds it) and executes the pending
// files in version order, each in its own transaction unless the file says
// "-- atlas:txmode none". It returns the versions it applied; an up-to-date
// database yields none and no error. logf may be nil.
func Apply(ctx context.Context, db *sql.DB, dir migrate.Dir, logf func(format string, args ...any)) (applied []string, err error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := validate(dir); err != nil {
		return nil, err
	}
	unlock, err := lock(ctx, db, logf)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, unlock()) }()

	if _, err := db.ExecContext(ctx, createRevisionsTable); err != nil {
		return nil, fmt.Errorf("dbmigrate: create %s: %w", RevisionsTable, err)
	}
	store := &revisions{q: db}
	pending, err := pendingFiles(ctx, db, dir, store)
	if err != nil {
		return nil, err
	}
	if len(pending) == 0 {
		if cur, err := current(ctx, store); err == nil && cur != "" {
			logf("migrations: database is up to date (version %s)", cur)
		} else if err == nil {
			logf("migrations: no migration files")
		}
		return nil, nil
	}
	logf("migrations: %d pending, from %s to %s", len(pending), pending[0].Version(), pending[len(pending)-1].Version())
	for _, f := range pending {
		start := time.Now()
		if err := applyFile(ctx, db, dir, f); err != nil {
			logf("migrations: %s failed after %s: %v", f.Name(), time.Since(start).Round(time.Millisecond), err)
			return applied, err
		}
		logf("migrations: applied %s in %s", f.Name(), time.Since(start).Round(time.Millisecond))
		applied = append(applied, f.Version())
	}
	return applied, nil
}

// Report is the migration status of a database against a directory.
type Report struct {
	// Applied lists the versions fully applied, in order.
	Applied []string
	// AppliedNames lists the applied files as version_name, in order (a
	// version no longer in the directory is listed by its version alone).
	AppliedNames []string
	// Pending lists the versions Apply would execute, in order.
	Pending []string
	// PendingNames lists the pending files as version_name (file name without .sql).
	PendingNames []string
	// Current is the last fully applied version, empty on a fresh database.
	Current string
	// Failed is the version whose last attempt failed, if any; it is also pending.
	Failed string
	// Error is the error recorded for Failed.
	Error string
}

// String renders the report for CLI output, e.g.
// "applied 3, pending 1: 20261126070000_add_x".
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "applied %d, pending %d", len(r.Applied), len(r.Pending))
	if len(r.PendingNames) > 0 {
		b.WriteString(": " + strings.Join(r.PendingNames, ", "))
	} else if r.Current != "" {
		b.WriteString(" (current " + r.Current + ")")
	}
	if r.Failed != "" {
		fmt.Fprintf(&b, "; %s failed: %s", r.Failed, r.Error)
	}
	return b.String()
}

// Status reports which versions of dir are applied to db and which are
// pending. It validates dir like Apply, takes no lock and writes nothing (the
// revision table need not exist yet); it fails where Apply would refuse to
// start (checksum mismatch, out-of-order files, a non-empty database without
// history).
func Status(ctx context.Context, db *sql.DB, dir migrate.Dir) (Report, error) {
	var rep Report
	if err := validate(dir); err != nil {
		return rep, err
	}
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, revisionsSchema+"."+RevisionsTable).Scan(&exists); err != nil {
		return rep, fmt.Errorf("dbmigrate: look up %s: %w", RevisionsTable, err)
	}
	store := &revisions{q: db, absent: !exists}
	revs, err := store.ReadRevisions(ctx)
	if err != nil {
		return rep, err
	}
	names := map[string]string{}
	if files, err := dir.Files(); err == nil {
		for _, f := range files {
			names[f.Version()] = strings.TrimSuffix(f.Name(), ".sql")
		}
	}
	for _, r := range revs {
		switch {
		case r.Applied == r.Total:
			rep.Applied = append(rep.Applied, r.Version)
			name := names[r.Version]
			if name == "" {
				name = r.Version
			}
			rep.AppliedNames = append(rep.AppliedNames, name)
			rep.Current = r.Version
		case r.Error != "":
			rep.Failed, rep.Error = r.Version, r.Error
		}
	}
	pending, err := pendingFiles(ctx, db, dir, store)
	if err != nil {
		return rep, err
	}
	for _, f := range pending {
		rep.Pending = append(rep.Pending, f.Version())
		rep.PendingNames = append(rep.PendingNames, strings.TrimSuffix(f.Name(), ".sql"))
	}
	return rep, nil
}

// validate checks the files against atlas.sum with an error that says what
// to do about it.
func validate(dir migrate.Dir) error {
	sum := migrate.HashFileName
	if p, ok := dir.(interface{ Path() string }); ok && p.Path() != "" {
		sum = path.Join(p.Path(), migrate.HashFileName)
	} else {
		sum = path.Join("migrations", sum)
	}
	err := migrate.Validate(dir)
	var cerr *migrate.ChecksumError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &cerr):
		return fmt.Errorf("dbmigrate: %s does not match the files (%s %s): regenerate the migration directory from ent/schema instead of editing files by hand, and never change a file that is already applied: %w",
			sum, cerr.File, cerr.Reason, err)
	case errors.Is(err, migrate.ErrChecksumNotFound):
		return fmt.Errorf("dbmigrate: %s is missing: regenerate the migration directory from ent/schema: %w", sum, err)
	default:
		return fmt.Errorf("dbmigrate: validate %s: %w", sum, err)
	}
}

// pendingFiles asks atlas which files are pending; no pending files is not an error.
func pendingFiles(ctx context.Context, db *sql.DB, dir migrate.Dir, store *revisions) ([]migrate.File, error) {
	ex, err := newExecutor(db, dir, store)
	if err != nil {
		return nil, err
	}
	pending, err := ex.Pending(ctx)
	var nerr *migrate.NotCleanError
	switch {
	case errors.Is(err, migrate.ErrNoPendingFiles):
		return nil, nil
	case errors.As(err, &nerr):
		return nil, fmt.Errorf("dbmigrate: refusing to migrate a database that has objects but no %s history (%s); start from an empty database: %w",
			RevisionsTable, notCleanReason(nerr), err)
	case err != nil:
		return nil, fmt.Errorf("dbmigrate: pending migrations: %w", err)
	}
	return pending, nil
}

func newExecutor(q schema.ExecQuerier, dir migrate.Dir, store *revisions) (*migrate.Executor, error) {
	drv, err := postgres.Open(q)
	if err != nil {
		return nil, fmt.Errorf("dbmigrate: open atlas postgres driver: %w", err)
	}
	ex, err := migrate.NewExecutor(drv, dir, store, migrate.WithOperatorVersion(operatorVersion()))
	if err != nil {
		return nil, fmt.Errorf("dbmigrate: %w", err)
	}
	return ex, nil
}

// applyFile executes one pending file in its own transaction, or statement
// by statement for "-- atlas:txmode none" files.
func applyFile(ctx context.Context, db *sql.DB, dir migrate.Dir, f migrate.File) error {
	mode, err := txMode(f)
	if err != nil {
		return err
	}
	if err := resetAttempt(ctx, db, f); err != nil {
		return err
	}
	if mode == "none" {
		ex, err := newExecutor(db, dir, &revisions{q: db})
		if err != nil {
			return err
		}
		if err := ex.Execute(ctx, f); err != nil {
			return fmt.Errorf("dbmigrate: %s (txmode none) failed; the statements before the failing one stay applied and the next Apply resumes at it: %w", f.Name(), err)
		}
		return nil
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("dbmigrate: begin transaction for %s: %w", f.Name(), err)
	}
	store := &revisions{q: tx, inTx: true}
	ex, err := newExecutor(tx, dir, store)
	if err == nil {
		err = ex.Execute(ctx, f)
	}
	if err == nil {
		if err = tx.Commit(); err == nil {
			return nil
		}
		err = fmt.Errorf("commit: %w", err)
	} else {
		err = errors.Join(err, ignoreDone(tx.Rollback()))
	}
	err = fmt.Errorf("dbmigrate: %s failed and was rolled back; the next Apply retries it from its first statement: %w", f.Name(), err)
	if store.last != nil {
		// Everything the executor wrote inside the transaction is gone:
		// record the attempt outside it, with nothing applied.
		r := *store.last
		r.Applied, r.PartialHashes = 0, nil
		if r.Error == "" {
			r.Error = err.Error()
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failureWriteTimeout)
		defer cancel()
		if werr := (&revisions{q: db}).WriteRevision(wctx, &r); werr != nil {
			err = errors.Join(err, fmt.Errorf("dbmigrate: record failed revision %s: %w", r.Version, werr))
		}
	}
	return err
}

// resetAttempt prepares the revision left by an earlier failed attempt of f.
// atlas resumes a partial revision but never updates its Total or Hash, so a
// file fixed (and re-summed) after a failure would stay "partial" forever.
// A failed attempt with nothing applied is deleted; one with statements
// applied (txmode none) gets the current Total and Hash, and atlas then checks
// the applied statements did not change.
func resetAttempt(ctx context.Context, db *sql.DB, f migrate.File) error {
	store := &revisions{q: db}
	r, err := store.ReadRevision(ctx, f.Version())
	switch {
	case errors.Is(err, migrate.ErrRevisionNotExist):
		return nil
	case err != nil:
		return err
	case r.Applied == 0:
		return store.DeleteRevision(ctx, r.Version)
	}
	drv, err := postgres.Open(db)
	if err != nil {
		return fmt.Errorf("dbmigrate: open atlas postgres driver: %w", err)
	}
	stmts, err := migrate.FileStmts(drv, f)
	if err != nil {
		return fmt.Errorf("dbmigrate: scan %s: %w", f.Name(), err)
	}
	if len(stmts) < r.Applied {
		return fmt.Errorf("dbmigrate: %s has %d statements but %d were already applied by an earlier attempt: restore the file or fix the database and %s by hand",
			f.Name(), len(stmts), r.Applied, RevisionsTable)
	}
	if r.Total == len(stmts) {
		return nil
	}
	r.Total = len(stmts)
	return store.WriteRevision(ctx, r)
}

// txMode reads the file's "-- atlas:txmode" directive: "file" (default) or "none".
func txMode(f migrate.File) (string, error) {
	d, ok := f.(interface{ Directive(string) []string })
	if !ok {
		return "file", nil
	}
	switch ds := d.Directive("txmode"); {
	case len(ds) == 0:
		return "file", nil
	case len(ds) == 1 && (ds[0] == "file" || ds[0] == "none"):
		return ds[0], nil
	default:
		return "", fmt.Errorf("dbmigrate: %s: unsupported atlas:txmode %q (want file or none)", f.Name(), strings.Join(ds, " "))
	}
}

// lock takes the transaction-level advisory lock inside a transaction held
// open on a dedicated connection, polling with pg_try_advisory_xact_lock
// until ctx is done; unlock commits that transaction, which releases it.
//
// A transaction-level lock works through a pooler in transaction mode
// (PgBouncer): the open transaction pins one server connection, and the lock
// ends with it, so a lock can never stay behind on a pooled connection, as a
// session-level pg_advisory_lock taken on one server connection and "released"
// on another would. Between polls the waiter holds no snapshot and the holder,
// idle in its READ COMMITTED transaction, none either (backend_xmin is null),
// so CREATE INDEX
// CONCURRENTLY in the files (run on other connections) waits for neither; a
// blocking pg_advisory_xact_lock would hold a snapshot while waiting.
func lock(ctx context.Context, db *sql.DB, logf func(string, ...any)) (unlock func() error, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("dbmigrate: lock: %w", err)
	}
	discard := func() { _ = conn.Raw(func(any) error { return driver.ErrBadConn }); _ = conn.Close() }
	wait, logged := 25*time.Millisecond, false
	var tx *sql.Tx
	for {
		// The lock transaction outlives ctx only through unlock, which
		// commits it; a cancelled ctx must not roll it back mid-migration.
		tx, err = conn.BeginTx(context.WithoutCancel(ctx), nil)
		if err != nil {
			discard()
			return nil, fmt.Errorf("dbmigrate: lock: %w", err)
		}
		// No parameters, so pgx uses the simple protocol: a completed
		// extended-protocol portal would keep its snapshot (and the
		// backend's xmin) until the next statement, and CREATE INDEX
		// CONCURRENTLY waits for every older snapshot.
		res, err := tx.ExecContext(ctx, lockStatement)
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil {
			_ = tx.Rollback()
			discard()
			return nil, fmt.Errorf("dbmigrate: lock: %w", err)
		}
		if n == 1 {
			break
		}
		if err := tx.Rollback(); err != nil {
			discard()
			return nil, fmt.Errorf("dbmigrate: lock: %w", err)
		}
		if !logged {
			logf("migrations: waiting for another process to finish migrating")
			logged = true
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			discard()
			return nil, fmt.Errorf("dbmigrate: waiting for the migration lock: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
	return func() error {
		// A commit that fails means the connection (and so the lock) was
		// lost while migrating: say so rather than pretend it was held.
		if err := tx.Commit(); err != nil {
			discard()
			return fmt.Errorf("dbmigrate: the migration lock's transaction ended before the migration did (connection lost or idle_in_transaction_session_timeout): %w", err)
		}
		return conn.Close()
	}, nil
}

// notCleanReason names what makes the database unclean; atlas's own reason
// counts our revisions table ("found 2 tables") without naming anything.
func notCleanReason(e *migrate.NotCleanError) string {
	if e.State == nil {
		return e.Reason
	}
	var found []string
	for _, s := range e.State.Schemas {
		if s.Name != revisionsSchema && len(s.Tables) == 0 {
			found = append(found, "schema "+s.Name)
		}
		for _, t := range s.Tables {
			if s.Name != revisionsSchema || t.Name != RevisionsTable {
				found = append(found, s.Name+"."+t.Name)
			}
		}
	}
	if len(found) == 0 {
		return e.Reason
	}
	if len(found) > 5 {
		found = append(found[:5], fmt.Sprintf("and %d more", len(found)-5))
	}
	return "found " + strings.Join(found, ", ")
}

// current returns the last fully applied version.
func current(ctx context.Context, store *revisions) (string, error) {
	revs, err := store.ReadRevisions(ctx)
	if err != nil {
		return "", err
	}
	for i := len(revs) - 1; i >= 0; i-- {
		if revs[i].Applied == revs[i].Total {
			return revs[i].Version, nil
		}
	}
	return "", nil
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// operatorVersion is stored with every revision, like the atlas CLI stores its own version.
func operatorVersion() string {
	v := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "ariga.io/atlas" {
				v = d.Version
			}
		}
	}
	return "ispgraph dbmigrate (atlas " + v + ")"
}
