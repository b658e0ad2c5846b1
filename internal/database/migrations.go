package database

import (
	"context"
	"fmt"

	atlas "ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql/schema"

	"github.com/ispgraph/ispgraph/ent/migrate"
	"github.com/ispgraph/ispgraph/internal/dbmigrate"
	"github.com/ispgraph/ispgraph/migrations"
)

// Migrate applies the pending versioned migrations embedded in the binary.
func (d *DB) Migrate(ctx context.Context, logf func(string, ...any)) ([]string, error) {
	if d.Dialect != dialect.Postgres {
		return nil, fmt.Errorf("database: versioned migrations are for Postgres; %s uses CreateSchema", d.Dialect)
	}
	dir, err := migrations.Dir()
	if err != nil {
		return nil, err
	}
	return dbmigrate.Apply(ctx, d.SQL, dir, logf)
}

// MigrationStatus reports applied and pending migrations.
func (d *DB) MigrationStatus(ctx context.Context) (dbmigrate.Report, error) {
	dir, err := migrations.Dir()
	if err != nil {
		return dbmigrate.Report{}, err
	}
	return dbmigrate.Status(ctx, d.SQL, dir)
}

// Diff writes a new migration named name into dir for whatever ent/schema has
// that the migrations in dir do not. devURL is an empty scratch Postgres
// database Atlas replays the directory into. It reports whether a file was
// written.
func Diff(ctx context.Context, devURL string, dir atlas.Dir, name string) (bool, error) {
	registerPostgres()
	before, err := countFiles(dir)
	if err != nil {
		return false, err
	}
	err = migrate.NamedDiff(ctx, devURL, name,
		schema.WithDir(dir),
		schema.WithMigrationMode(schema.ModeReplay),
		schema.WithDialect(dialect.Postgres),
		schema.WithFormatter(atlas.DefaultFormatter),
		schema.WithDropColumn(true),
		schema.WithDropIndex(true),
		schema.WithForeignKeys(true),
	)
	if err != nil {
		return false, fmt.Errorf("database: diff migrations: %w", err)
	}
	after, err := countFiles(dir)
	if err != nil {
		return false, err
	}
	return after > before, nil
}

func countFiles(dir atlas.Dir) (int, error) {
	files, err := dir.Files()
	if err != nil {
		return 0, fmt.Errorf("database: read migrations: %w", err)
	}
	return len(files), nil
}

// MemDirFrom copies the migration files of src into an in-memory directory, so
// a diff can be computed without touching the files on disk.
func MemDirFrom(src atlas.Dir) (*atlas.MemDir, error) {
	files, err := src.Files()
	if err != nil {
		return nil, err
	}
	mem := &atlas.MemDir{}
	for _, f := range files {
		if err := mem.WriteFile(f.Name(), f.Bytes()); err != nil {
			return nil, err
		}
	}
	sum, err := src.Checksum()
	if err == nil {
		if err := atlas.WriteSumFile(mem, sum); err != nil {
			return nil, err
		}
	}
	return mem, nil
}
