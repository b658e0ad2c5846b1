package dbmigrate

import (
	"fmt"
	"regexp"
	"strings"

	"ariga.io/atlas/sql/migrate"
)

// ContractDirective marks a migration file as the contract step of an
// expand/contract change: "-- ispgraph:contract <version>" names the earlier
// migration (the expand step) whose release stopped using what this file
// drops, renames or narrows. See docs/migrations.md.
const ContractDirective = "-- ispgraph:contract"

// LockingIndexDirective lets a file build an index on an existing table
// without CONCURRENTLY: "-- ispgraph:locking-index <reason>", for tables small
// enough that blocking their writes for the build does not matter.
const LockingIndexDirective = "-- ispgraph:locking-index"

// Finding is one statement of a migration file that the running release could
// not survive, with what to do instead.
type Finding struct {
	File      string
	Statement string
	Problem   string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s: %s\n\t%s", f.File, f.Problem, f.Statement)
}

// contractRules match statements that break the release still running while
// a migration applies (it reads and writes the old shape until every instance
// is replaced). They are allowed only in a contract file.
var contractRules = []struct {
	re      *regexp.Regexp
	problem string
}{
	{regexp.MustCompile(`(?is)^\s*DROP\s+(TABLE|VIEW|MATERIALIZED\s+VIEW|SCHEMA|TYPE|SEQUENCE|FUNCTION)\b`),
		"drops an object the running release may use: stop using it in one release, drop it in a later contract migration"},
	{regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\b.*\bDROP\s+COLUMN\b`),
		"drops a column the running release may read or write: stop using it in one release, drop it in a later contract migration"},
	{regexp.MustCompile(`(?is)^\s*ALTER\s+(TABLE|VIEW|SCHEMA|TYPE|SEQUENCE)\b.*\bRENAME\b`),
		"renames what the running release uses: add the new name (column, view or trigger-synced copy), move the code, drop the old name in a contract migration"},
	{regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\b.*\bALTER\s+(COLUMN\s+)?"?\w+"?\s+(SET\s+DATA\s+)?TYPE\b`),
		"changes a column's type in place (a narrowing breaks the running release's writes, and the rewrite locks the table): add a column of the new type, backfill, switch, drop the old one in a contract migration"},
	{regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\b.*\bALTER\s+(COLUMN\s+)?"?\w+"?\s+SET\s+NOT\s+NULL\b`),
		"makes a column NOT NULL while the running release may still insert rows without it: backfill and deploy code that always writes it, then set NOT NULL in a contract migration"},
	{regexp.MustCompile(`(?is)^\s*ALTER\s+TYPE\b.*\bDROP\s+VALUE\b`),
		"removes an enum value the running release may write"},
}

var (
	addColumnNotNull = regexp.MustCompile(`(?is)\bADD\s+(COLUMN\s+)?(IF\s+NOT\s+EXISTS\s+)?"?\w+"?\s+[^,;]*\bNOT\s+NULL\b[^,;]*`)
	hasDefault       = regexp.MustCompile(`(?is)\bDEFAULT\b|\bGENERATED\b`)
	createTable      = regexp.MustCompile(`(?is)^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?((?:"?\w+"?\.)?"?\w+"?)`)
	createIndex      = regexp.MustCompile(`(?is)^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?.*?\bON\s+(ONLY\s+)?((?:"?\w+"?\.)?"?\w+"?)`)
	lineComment      = regexp.MustCompile(`(?m)--[^\n]*$`)
)

// Lint checks every migration file of dir against the expand/contract rule
// (docs/migrations.md): while a migration applies, the previous release keeps
// running, so a file must not drop, rename or narrow what that release uses,
// nor add a NOT NULL column it does not write, nor lock an existing table's
// writes for an index build, unless it is marked as a contract step
// (ContractDirective) naming an earlier migration, or for a small table's
// index, LockingIndexDirective.
func Lint(dir migrate.Dir) ([]Finding, error) {
	files, err := dir.Files()
	if err != nil {
		return nil, fmt.Errorf("dbmigrate: lint: %w", err)
	}
	var out []Finding
	versions := map[string]bool{}
	for _, f := range files {
		found, err := lintFile(f, versions)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
		versions[f.Version()] = true
	}
	return out, nil
}

func lintFile(f migrate.File, earlier map[string]bool) ([]Finding, error) {
	var out []Finding
	add := func(stmt, problem string) {
		out = append(out, Finding{File: f.Name(), Statement: oneLine(stmt), Problem: problem})
	}
	contract, lockingIndex := "", false
	for _, line := range strings.Split(string(f.Bytes()), "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, ContractDirective); ok {
			contract = strings.TrimSpace(v)
			if contract == "" || !earlier[contract] {
				add(line, fmt.Sprintf("contract step names %q, which is not an earlier migration in this directory: name the expand migration whose release stopped using what this file removes", contract))
			}
		}
		if strings.HasPrefix(line, LockingIndexDirective) {
			if strings.TrimSpace(strings.TrimPrefix(line, LockingIndexDirective)) == "" {
				add(line, "locking-index needs a reason (why blocking writes during the build is acceptable)")
			}
			lockingIndex = true
		}
	}
	stmts, err := migrate.NewLocalFile(f.Name(), f.Bytes()).Stmts()
	if err != nil {
		return nil, fmt.Errorf("dbmigrate: lint %s: %w", f.Name(), err)
	}
	created := map[string]bool{}
	for _, raw := range stmts {
		stmt := strings.TrimSpace(lineComment.ReplaceAllString(raw, ""))
		if m := createTable.FindStringSubmatch(stmt); m != nil {
			created[unquote(m[2])] = true
		}
		if contract == "" {
			for _, r := range contractRules {
				if r.re.MatchString(stmt) {
					add(stmt, r.problem)
				}
			}
			if strings.HasPrefix(strings.ToUpper(stmt), "ALTER TABLE") {
				for _, m := range addColumnNotNull.FindAllString(stmt, -1) {
					if !hasDefault.MatchString(m) {
						add(stmt, "adds a NOT NULL column without a default: the running release's inserts would fail; add it with a default (or nullable), backfill, then tighten in a contract migration")
					}
				}
			}
		}
		if m := createIndex.FindStringSubmatch(stmt); m != nil && m[2] == "" && !lockingIndex && !created[unquote(m[4])] {
			add(stmt, "builds an index on an existing table without CONCURRENTLY, blocking its writes for the whole build: use CREATE INDEX CONCURRENTLY in a file marked \"-- atlas:txmode none\"")
		}
	}
	return out, nil
}

func unquote(name string) string {
	name = strings.ReplaceAll(name, `"`, "")
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return strings.ToLower(name)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
