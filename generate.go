// Package ispgraph is the root of the ispgraph module. It holds no code: the
// binary is cmd/ispgraph, and this file drives code generation (ent, then gqlgen, then
// schema.graphql for clients).
package ispgraph

//go:generate go run -mod=mod ./ent/entc.go
//go:generate go run -mod=mod github.com/99designs/gqlgen generate --config gqlgen.yml
//go:generate go run ./cmd/ispgraph schema -o schema.graphql
