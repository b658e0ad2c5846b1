package model

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
)

// MarshalInt64 writes the Int64 scalar: a 64-bit integer as a decimal
// string, so JavaScript clients read it without losing precision.
func MarshalInt64(v int64) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		io.WriteString(w, strconv.Quote(strconv.FormatInt(v, 10)))
	})
}

// UnmarshalInt64 reads the Int64 scalar from a decimal string or a JSON
// integer.
func UnmarshalInt64(v any) (int64, error) {
	switch x := v.(type) {
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("Int64 must be a decimal integer string such as \"5368709120\" (got %q)", x)
		}
		return n, nil
	case json.Number:
		return UnmarshalInt64(string(x))
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	}
	return 0, fmt.Errorf("Int64 must be a decimal integer string such as \"5368709120\" (got %T)", v)
}
