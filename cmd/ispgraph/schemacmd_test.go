package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestSchemaFileIsCurrent fails when schema.graphql differs from the schema
// the server runs: run go generate ./... and commit it.
func TestSchemaFileIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../../schema.graphql")
	if err != nil {
		t.Fatal(err)
	}
	want := clientSchema()
	if !bytes.Equal(got, want) {
		t.Fatal("schema.graphql is stale: run go generate ./... and commit it")
	}
	for _, d := range []string{"@goField", "@perm", "@authenticated", "@public", "@platform"} {
		if strings.Contains(string(want), d) {
			t.Errorf("the client schema carries %s", d)
		}
	}
	if !strings.Contains(string(want), "type Query") || !strings.Contains(string(want), "createTenant(") {
		t.Error("the client schema lacks Query or createTenant")
	}
}
