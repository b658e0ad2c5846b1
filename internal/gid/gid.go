// Package gid owns the opaque global ids the API shows for ent's integer ids.
// ent's global-id feature gives each type its own id range, so the integer alone
// names the type; the encoding only keeps clients from treating ids as numbers.
package gid

import (
	"encoding/base64"
	"io"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"

	"github.com/ispgraph/ispgraph/internal/apperr"
)

const prefix = "ig1:"

// Encode returns the opaque form of id.
func Encode(id int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(prefix + strconv.Itoa(id)))
}

// Decode parses an opaque id produced by Encode.
func Decode(s string) (int, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || !strings.HasPrefix(string(raw), prefix) {
		return 0, apperr.E(apperr.BadUserInput, "%q is not an id issued by this API", s)
	}
	id, err := strconv.Atoi(strings.TrimPrefix(string(raw), prefix))
	if err != nil || id <= 0 {
		return 0, apperr.E(apperr.BadUserInput, "%q is not an id issued by this API", s)
	}
	return id, nil
}

// MarshalID is gqlgen's marshaller for the ID scalar.
func MarshalID(id int) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = io.WriteString(w, strconv.Quote(Encode(id)))
	})
}

// UnmarshalID is gqlgen's unmarshaller for the ID scalar.
func UnmarshalID(v any) (int, error) {
	s, ok := v.(string)
	if !ok {
		return 0, apperr.E(apperr.BadUserInput, "an ID must be a string")
	}
	return Decode(s)
}
