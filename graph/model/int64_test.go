package model

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestInt64Scalar(t *testing.T) {
	var buf bytes.Buffer
	MarshalInt64(5 << 30).MarshalGQL(&buf)
	if buf.String() != `"5368709120"` {
		t.Fatalf("marshal: %s", buf.String())
	}
	for _, in := range []any{"5368709120", json.Number("5368709120"), int64(5368709120), int(5368709120)} {
		if n, err := UnmarshalInt64(in); err != nil || n != 5<<30 {
			t.Errorf("unmarshal %#v: %d %v", in, n, err)
		}
	}
	for _, in := range []any{"5.5", "", "9223372036854775808", 1.5, true} {
		if _, err := UnmarshalInt64(in); err == nil {
			t.Errorf("unmarshal %#v: no error", in)
		}
	}
}
