package dbmigrate

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/schema"
)

// createRevisionsTable mirrors migrate.Revision (and the columns of the atlas
// CLI's own revisions table); execution_time is a time.Duration in ns.
const createRevisionsTable = `CREATE TABLE IF NOT EXISTS public.atlas_schema_revisions (
	version          varchar     NOT NULL PRIMARY KEY,
	description      varchar     NOT NULL,
	type             bigint      NOT NULL DEFAULT 2,
	applied          bigint      NOT NULL DEFAULT 0 CHECK (applied >= 0),
	total            bigint      NOT NULL DEFAULT 0 CHECK (total >= 0),
	executed_at      timestamptz NOT NULL,
	execution_time   bigint      NOT NULL,
	error            text,
	error_stmt       text,
	hash             varchar     NOT NULL,
	partial_hashes   jsonb,
	operator_version varchar     NOT NULL
)`

const revisionColumns = `version, description, type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version`

// revisions is the migrate.RevisionReadWriter over public.atlas_schema_revisions.
type revisions struct {
	q schema.ExecQuerier // *sql.DB, or the *sql.Tx a file runs in
	// absent: the table does not exist yet (Status on a fresh database).
	absent bool
	// inTx: q is the file's transaction. A revision carrying an error is
	// written after a statement failed, when Postgres has aborted the
	// transaction; that write is dropped and Apply records last after the
	// rollback instead.
	inTx bool
	last *migrate.Revision
}

var _ migrate.RevisionReadWriter = (*revisions)(nil)

// Ident implements migrate.RevisionReadWriter; atlas's clean-database check
// ignores this table.
func (*revisions) Ident() *migrate.TableIdent {
	return &migrate.TableIdent{Name: RevisionsTable, Schema: revisionsSchema}
}

// ReadRevisions implements migrate.RevisionReadWriter, ordered by version as atlas expects.
func (s *revisions) ReadRevisions(ctx context.Context) ([]*migrate.Revision, error) {
	if s.absent {
		return nil, nil
	}
	rows, err := s.q.QueryContext(ctx, `SELECT `+revisionColumns+` FROM public.atlas_schema_revisions ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("dbmigrate: read revisions: %w", err)
	}
	defer rows.Close()
	var revs []*migrate.Revision
	for rows.Next() {
		r, err := scanRevision(rows)
		if err != nil {
			return nil, err
		}
		revs = append(revs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dbmigrate: read revisions: %w", err)
	}
	return revs, nil
}

// ReadRevision implements migrate.RevisionReadWriter.
func (s *revisions) ReadRevision(ctx context.Context, version string) (*migrate.Revision, error) {
	if s.absent {
		return nil, migrate.ErrRevisionNotExist
	}
	rows, err := s.q.QueryContext(ctx, `SELECT `+revisionColumns+` FROM public.atlas_schema_revisions WHERE version = $1`, version)
	if err != nil {
		return nil, fmt.Errorf("dbmigrate: read revision %s: %w", version, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("dbmigrate: read revision %s: %w", version, err)
		}
		return nil, migrate.ErrRevisionNotExist
	}
	return scanRevision(rows)
}

// WriteRevision implements migrate.RevisionReadWriter as an upsert by version.
func (s *revisions) WriteRevision(ctx context.Context, r *migrate.Revision) error {
	if s.inTx {
		c := *r
		c.PartialHashes = append([]string(nil), r.PartialHashes...)
		s.last = &c
	}
	var partial []byte
	if r.PartialHashes != nil {
		var err error
		if partial, err = json.Marshal(r.PartialHashes); err != nil {
			return err
		}
	}
	_, err := s.q.ExecContext(ctx, `INSERT INTO public.atlas_schema_revisions (`+revisionColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (version) DO UPDATE SET
	description = EXCLUDED.description, type = EXCLUDED.type, applied = EXCLUDED.applied,
	total = EXCLUDED.total, executed_at = EXCLUDED.executed_at, execution_time = EXCLUDED.execution_time,
	error = EXCLUDED.error, error_stmt = EXCLUDED.error_stmt, hash = EXCLUDED.hash,
	partial_hashes = EXCLUDED.partial_hashes, operator_version = EXCLUDED.operator_version`,
		r.Version, r.Description, int64(r.Type), r.Applied, r.Total, r.ExecutedAt.UTC(), int64(r.ExecutionTime),
		nullString(r.Error), nullString(r.ErrorStmt), r.Hash, nullBytes(partial), r.OperatorVersion)
	if err != nil && s.inTx && r.Error != "" {
		return nil // the transaction is aborted; see revisions.inTx
	}
	if err != nil {
		return fmt.Errorf("dbmigrate: write revision %s: %w", r.Version, err)
	}
	return nil
}

// DeleteRevision implements migrate.RevisionReadWriter.
func (s *revisions) DeleteRevision(ctx context.Context, version string) error {
	if _, err := s.q.ExecContext(ctx, `DELETE FROM public.atlas_schema_revisions WHERE version = $1`, version); err != nil {
		return fmt.Errorf("dbmigrate: delete revision %s: %w", version, err)
	}
	return nil
}

func scanRevision(rows *sql.Rows) (*migrate.Revision, error) {
	var (
		r                migrate.Revision
		typ, execNanos   int64
		errText, errStmt sql.NullString
		partial          []byte
	)
	if err := rows.Scan(&r.Version, &r.Description, &typ, &r.Applied, &r.Total, &r.ExecutedAt, &execNanos,
		&errText, &errStmt, &r.Hash, &partial, &r.OperatorVersion); err != nil {
		return nil, fmt.Errorf("dbmigrate: scan revision: %w", err)
	}
	r.Type = migrate.RevisionType(typ)
	r.ExecutionTime = time.Duration(execNanos)
	r.Error, r.ErrorStmt = errText.String, errStmt.String
	if len(partial) > 0 {
		if err := json.Unmarshal(partial, &r.PartialHashes); err != nil {
			return nil, errors.Join(fmt.Errorf("dbmigrate: revision %s: partial_hashes", r.Version), err)
		}
	}
	return &r, nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}
