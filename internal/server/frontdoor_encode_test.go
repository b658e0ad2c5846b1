package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// TestEncodeResponseMatchesEncodingJSON: the response writer copies the data
// as it is instead of re-compacting it, and must otherwise write what
// json.Marshal writes, in one write or (data over 1 KB) in three.
func TestEncodeResponseMatchesEncodingJSON(t *testing.T) {
	yes := true
	for _, resp := range []*graphql.Response{
		{},
		{Data: json.RawMessage(`{"a":[1,2,{"b":"data\":null"}]}`)},
		{Data: json.RawMessage(`null`), Errors: gqlerror.List{{Message: "x", Extensions: map[string]any{"code": "NOT_FOUND", "data": nil}}}},
		{Errors: gqlerror.List{{Message: "refused"}}},
		{Data: json.RawMessage(`{"n":1}`), Label: "l", Path: ast.Path{ast.PathName("a"), ast.PathIndex(2)}, HasNext: &yes,
			Extensions: map[string]any{"debug": map[string]any{"sqlStatements": 4}}},
		{Data: json.RawMessage(`{"big":"` + strings.Repeat("x", 5000) + `"}`), Errors: gqlerror.List{{Message: "partial"}},
			Extensions: map[string]any{"debug": map[string]any{"sqlStatements": 1}}},
	} {
		want, err := json.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeResponse(resp)
		if err != nil || string(got) != string(want) {
			t.Errorf("got %s (%v)\nwant %s", got, err, want)
		}
		var w bytes.Buffer
		writeResponse(&w, resp)
		if w.String() != string(want) {
			t.Errorf("written %s\nwant %s", w.String(), want)
		}
	}
}
