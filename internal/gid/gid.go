// Package gid owns the opaque global ids the API shows for ent's integer ids.
//
// ent's global-id feature gives each type its own id range, so the integer
// names the type, and the ids of all tenants come from one counter per type:
// shown as they are, ids would tell a client the type of an object and, by
// subtraction, how many objects every other tenant created meanwhile. An id
// is therefore one AES block, the integer followed by eight zero bytes,
// encrypted under a key derived from the server's secret key, in base64url
// (22 characters). AES is a pseudo-random permutation: the id says nothing
// about the type or the counter, and a string that does not decrypt to eight
// zero bytes (a guess has a 2^-64 chance) is refused without touching the
// database. The same key gives the same ids on every instance and restart;
// after a key rotation ids issued under a previous key are still accepted.
//
// The codec travels in the request context (NewContext), put there by the
// server's middleware, because gqlgen's scalar functions have no other way to
// reach it.
package gid

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"slices"

	"github.com/99designs/gqlgen/graphql"

	"github.com/ispgraph/ispgraph/internal/apperr"
)

// label separates the id key from every other key derived from the secret key.
const label = "ispgraph global ids v1"

// encodedLen is the length of an encoded id: 16 bytes in unpadded base64.
const encodedLen = 22

// Codec turns ent ids into opaque ids and back.
type Codec struct {
	blocks []cipher.Block // the first encodes; all decode
}

// New returns a codec keyed by secretKey (the server's secret key); ids
// encoded under any of previous are still decoded.
func New(secretKey []byte, previous ...[]byte) (*Codec, error) {
	c := &Codec{}
	for _, k := range append([][]byte{secretKey}, previous...) {
		if len(k) < 16 {
			return nil, errors.New("gid: the secret key must be at least 16 bytes")
		}
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(label))
		b, err := aes.NewCipher(mac.Sum(nil))
		if err != nil {
			return nil, err
		}
		c.blocks = append(c.blocks, b)
	}
	return c, nil
}

// Encode returns the opaque form of id.
func (c *Codec) Encode(id int) string {
	var buf [encodedLen]byte
	return string(c.AppendEncoded(buf[:0], id))
}

// AppendEncoded appends Encode(id) to dst. The block is encrypted in dst's
// spare capacity, past the encoded text: a local array would escape through
// the cipher.Block interface and cost an allocation per id (thousands per
// page).
func (c *Codec) AppendEncoded(dst []byte, id int) []byte {
	n := len(dst)
	dst = slices.Grow(dst, encodedLen+aes.BlockSize)
	block := dst[n+encodedLen : n+encodedLen+aes.BlockSize]
	binary.BigEndian.PutUint64(block[:8], uint64(id))
	clear(block[8:])
	c.blocks[0].Encrypt(block, block)
	return base64.RawURLEncoding.AppendEncode(dst[:n], block)
}

// ErrUnknown is the answer to a string that is not an id this API issued. It
// reads like the answer to an id of another tenant's object (the presenter's
// NOT_FOUND), so neither tells a client anything.
var ErrUnknown = apperr.E(apperr.NotFound, "not found: no such object in your tenant (check the id)")

// Decode parses an opaque id produced by Encode under the current or a
// previous key.
func (c *Codec) Decode(s string) (int, error) {
	if len(s) != encodedLen {
		return 0, ErrUnknown
	}
	var in [aes.BlockSize]byte
	if n, err := base64.RawURLEncoding.Decode(in[:], []byte(s)); err != nil || n != aes.BlockSize {
		return 0, ErrUnknown
	}
	for _, b := range c.blocks {
		var out [aes.BlockSize]byte
		b.Decrypt(out[:], in[:])
		if binary.BigEndian.Uint64(out[8:]) != 0 {
			continue
		}
		id := binary.BigEndian.Uint64(out[:8])
		if id == 0 || id > 1<<62 {
			return 0, ErrUnknown
		}
		return int(id), nil
	}
	return 0, ErrUnknown
}

type ctxKey struct{}

// NewContext returns ctx carrying c.
func NewContext(ctx context.Context, c *Codec) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the codec in ctx, or nil.
func FromContext(ctx context.Context) *Codec {
	c, _ := ctx.Value(ctxKey{}).(*Codec)
	return c
}

// errNoCodec is an internal error: the server's middleware did not run.
var errNoCodec = errors.New("gid: no id codec in the context")

// MarshalID is gqlgen's marshaller for the ID scalar.
func MarshalID(id int) graphql.ContextMarshaler {
	return graphql.ContextWriterFunc(func(ctx context.Context, w io.Writer) error {
		c := FromContext(ctx)
		if c == nil {
			return errNoCodec
		}
		// The URL-safe base64 alphabet needs no escaping in a JSON string.
		var buf [encodedLen + 2 + aes.BlockSize]byte
		b := append(c.AppendEncoded(append(buf[:0], '"'), id), '"')
		_, err := w.Write(b)
		return err
	})
}

// UnmarshalID is gqlgen's unmarshaller for the ID scalar.
func UnmarshalID(ctx context.Context, v any) (int, error) {
	s, ok := v.(string)
	if !ok {
		return 0, apperr.E(apperr.BadUserInput, "an ID must be a string")
	}
	c := FromContext(ctx)
	if c == nil {
		return 0, errNoCodec
	}
	return c.Decode(s)
}
