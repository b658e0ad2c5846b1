package server

import (
	"testing"

	"github.com/ispgraph/ispgraph/graph"
)

// TestLagTolerantFieldsExist keeps the table of replica-readable root fields
// in step with the schema: a renamed list would silently read the primary.
func TestLagTolerantFieldsExist(t *testing.T) {
	q := graph.NewExecutableSchema(graph.Config{}).Schema().Query
	for name := range lagTolerant {
		if name != "__typename" && q.Fields.ForName(name) == nil {
			t.Errorf("lagTolerant names %q, which is not a Query field", name)
		}
	}
	for _, never := range []string{"node", "nodes", "viewer", "users", "roles", "apiKeys"} {
		if lagTolerant[never] {
			t.Errorf("%s must read the primary", never)
		}
	}
}
