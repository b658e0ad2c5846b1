package gid

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/ispgraph/ispgraph/internal/apperr"
)

func codec(t *testing.T, key byte, previous ...byte) *Codec {
	t.Helper()
	var prev [][]byte
	for _, p := range previous {
		prev = append(prev, bytes.Repeat([]byte{p}, 32))
	}
	c, err := New(bytes.Repeat([]byte{key}, 32), prev...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	c := codec(t, 1)
	for _, id := range []int{1, 2, 4294967297, 1 << 40} {
		s := c.Encode(id)
		if len(s) != encodedLen {
			t.Fatalf("Encode(%d) = %q, %d characters", id, s, len(s))
		}
		got, err := c.Decode(s)
		if err != nil || got != id {
			t.Fatalf("Decode(Encode(%d)) = %d, %v", id, got, err)
		}
		// The same key gives the same id: another instance, a restart.
		if again := codec(t, 1).Encode(id); again != s {
			t.Fatalf("Encode(%d) not stable: %q then %q", id, s, again)
		}
	}
	legacy := base64.RawURLEncoding.EncodeToString([]byte("ig1:4294967297"))
	for _, bad := range []string{"", "42", "aWcxOg", legacy, "!!!!!!!!!!!!!!!!!!!!!!", strings.Repeat("A", 22), c.Encode(7) + "A"} {
		_, err := c.Decode(bad)
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Code != apperr.NotFound || err != ErrUnknown {
			t.Errorf("Decode(%q) = %v, want ErrUnknown", bad, err)
		}
	}
}

// TestOpaque: neither the type (ent's id range, the high 32 bits) nor the
// counter shows. Consecutive ids share no prefix or suffix beyond chance, and
// the same integer under another key is another id.
func TestOpaque(t *testing.T) {
	c := codec(t, 1)
	a, b := c.Encode(4294967297), c.Encode(4294967298)
	if a[:4] == b[:4] || a[len(a)-4:] == b[len(b)-4:] {
		t.Fatalf("consecutive ids look alike: %q %q", a, b)
	}
	if typeA, typeB := c.Encode(1<<32+5), c.Encode(2<<32+5); typeA[:4] == typeB[:4] {
		t.Fatalf("ids of two types share a prefix: %q %q", typeA, typeB)
	}
	for _, s := range []string{a, b} {
		raw, _ := base64.RawURLEncoding.DecodeString(s)
		if bytes.Contains(raw, []byte(strconv.Itoa(4294967297))) || bytes.Contains(raw, []byte{0, 0, 0, 1, 0, 0, 0, 1}) {
			t.Fatalf("%q carries the integer", s)
		}
	}
	if other := codec(t, 2); other.Encode(4294967297) == a {
		t.Fatal("two keys give the same id")
	} else if _, err := other.Decode(a); err != ErrUnknown {
		t.Fatalf("an id of another key decoded: %v", err)
	}
}

// TestRotation: after a key rotation, ids issued under the previous key are
// still read; new ids are issued under the new key.
func TestRotation(t *testing.T) {
	old := codec(t, 1).Encode(99)
	rotated := codec(t, 2, 1)
	if id, err := rotated.Decode(old); err != nil || id != 99 {
		t.Fatalf("old id after rotation: %d %v", id, err)
	}
	if rotated.Encode(99) == old || rotated.Encode(99) != codec(t, 2).Encode(99) {
		t.Fatal("new ids not under the new key")
	}
}

func TestScalar(t *testing.T) {
	c := codec(t, 1)
	ctx := NewContext(context.Background(), c)
	var buf bytes.Buffer
	if err := MarshalID(42).MarshalGQLContext(ctx, &buf); err != nil || buf.String() != strconv.Quote(c.Encode(42)) {
		t.Fatalf("MarshalID: %q %v", buf.String(), err)
	}
	if id, err := UnmarshalID(ctx, c.Encode(42)); err != nil || id != 42 {
		t.Fatalf("UnmarshalID: %d %v", id, err)
	}
	if _, err := UnmarshalID(ctx, 42); err == nil {
		t.Error("UnmarshalID accepted a number")
	}
	if err := MarshalID(42).MarshalGQLContext(context.Background(), &buf); err == nil {
		t.Error("MarshalID without a codec wrote an id")
	}
	if _, err := New([]byte("short")); err == nil {
		t.Error("New accepted a 5-byte key")
	}
}

// TestAppendEncoded: appending after a prefix gives Encode's text, decodes
// back, and allocates nothing when dst has room (the fast path writes
// thousands of ids per page into one buffer).
func TestAppendEncoded(t *testing.T) {
	c := codec(t, 7)
	buf := make([]byte, 0, 256)
	for _, id := range []int{1, 42, 1 << 40} {
		got := c.AppendEncoded(append(buf[:0], `"x`...), id)
		if string(got) != `"x`+c.Encode(id) {
			t.Fatalf("AppendEncoded(%d) = %q, Encode = %q", id, got, c.Encode(id))
		}
		if back, err := c.Decode(string(got[2:])); err != nil || back != id {
			t.Fatalf("Decode = %d, %v; want %d", back, err, id)
		}
	}
	if n := testing.AllocsPerRun(100, func() { buf = c.AppendEncoded(buf[:0], 12345) }); n != 0 {
		t.Errorf("AppendEncoded allocates %v times", n)
	}
}
