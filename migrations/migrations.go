// Package migrations embeds the versioned Postgres migrations generated from
// ent/schema (`ispgraph migrate diff NAME`) so the binary can apply them.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"

	atlas "ariga.io/atlas/sql/migrate"
)

//go:embed *
var files embed.FS

// Dir returns the embedded migration directory.
func Dir() (atlas.Dir, error) {
	mem := &atlas.MemDir{}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	for _, e := range entries {
		if name := e.Name(); !strings.HasSuffix(name, ".sql") && name != atlas.HashFileName {
			continue
		}
		b, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		if err := mem.WriteFile(e.Name(), b); err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
	}
	return mem, nil
}
