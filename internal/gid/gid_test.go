package gid

import "testing"

func TestRoundTrip(t *testing.T) {
	for _, id := range []int{1, 4294967297, 1 << 40} {
		got, err := Decode(Encode(id))
		if err != nil || got != id {
			t.Fatalf("Decode(Encode(%d)) = %d, %v", id, got, err)
		}
	}
	for _, bad := range []string{"", "42", "aWcxOg", "aWcxOi0x", "!!"} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
	if _, err := UnmarshalID(42); err == nil {
		t.Error("UnmarshalID accepted a number")
	}
}
