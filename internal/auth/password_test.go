package auth_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
)

func TestHashAndVerify(t *testing.T) {
	h, err := auth.HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not a PHC argon2id string with the default parameters", h)
	}
	if h2, _ := auth.HashPassword("correct horse battery staple"); h2 == h {
		t.Error("two hashes of one password are equal: salt not random")
	}
	for pw, want := range map[string]bool{
		"correct horse battery staple":  true,
		"correct horse battery staple ": false,
		"Correct horse battery staple":  false,
		"x":                             false,
	} {
		ok, err := auth.VerifyPassword(h, pw)
		if err != nil || ok != want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	if auth.NeedsRehash(h) {
		t.Error("NeedsRehash of a fresh hash = true")
	}
}

func TestPasswordLimits(t *testing.T) {
	if _, err := auth.HashPassword(""); !errors.Is(err, auth.ErrEmptyPassword) || apperr.CodeOf(err) != apperr.BadUserInput {
		t.Errorf("empty password: %v", err)
	}
	long := strings.Repeat("a", auth.MaxPasswordLen+1)
	if _, err := auth.HashPassword(long); !errors.Is(err, auth.ErrPasswordTooLong) {
		t.Errorf("long password: %v", err)
	}
	if _, err := auth.HashPassword(long[:auth.MaxPasswordLen]); err != nil {
		t.Errorf("password of exactly MaxPasswordLen bytes: %v", err)
	}
	if ok, err := auth.VerifyPassword(auth.DummyHash, ""); ok || err == nil {
		t.Errorf("VerifyPassword with empty password = %v, %v", ok, err)
	}
	if ok, err := auth.VerifyPassword(auth.DummyHash, long); ok || err == nil {
		t.Errorf("VerifyPassword with long password = %v, %v", ok, err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	good, _ := auth.HashPassword("pw")
	parts := strings.Split(good, "$")
	for name, enc := range map[string]string{
		"empty":        "",
		"plain":        "pw",
		"argon2i":      strings.Replace(good, "$argon2id$", "$argon2i$", 1),
		"version":      strings.Replace(good, "v=19", "v=16", 1),
		"huge memory":  strings.Replace(good, "m=19456", "m=99999999", 1),
		"zero threads": strings.Replace(good, "p=1", "p=0", 1),
		"junk params":  strings.Replace(good, "t=2", "t=2x", 1),
		"bad salt":     strings.Join([]string{"", parts[1], parts[2], parts[3], "!!", parts[5]}, "$"),
		"short key":    strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "AAAA"}, "$"),
		"extra field":  good + "$x",
		"bad bcrypt":   "$2y$10$short",
	} {
		if enc == good {
			t.Fatalf("%s: the case does not alter the hash", name)
		}
		if ok, err := auth.VerifyPassword(enc, "pw"); ok || err == nil {
			t.Errorf("%s: VerifyPassword(%q) = %v, %v; want an error", name, enc, ok, err)
		}
		if !auth.NeedsRehash(enc) {
			t.Errorf("%s: NeedsRehash = false", name)
		}
	}
}

// Hashes made with earlier parameters (the first release's 64 MiB, one pass,
// two lanes) keep verifying with the parameters they carry, and are due for a
// rehash.
func TestEarlierParametersStillVerify(t *testing.T) {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("old password"), salt, 1, 64*1024, 2, 32)
	enc := fmt.Sprintf("$argon2id$v=19$m=65536,t=1,p=2$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
	if ok, err := auth.VerifyPassword(enc, "old password"); !ok || err != nil {
		t.Fatalf("earlier hash: %v, %v", ok, err)
	}
	if ok, err := auth.VerifyPassword(enc, "other"); ok || err != nil {
		t.Fatalf("earlier hash, wrong password: %v, %v", ok, err)
	}
	if !auth.NeedsRehash(enc) {
		t.Fatal("an earlier hash does not need a rehash")
	}
}

func TestVerifyBcrypt(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte("legacy"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	laravel := "$2y$" + string(b[4:]) // Laravel writes $2y$
	for _, h := range []string{string(b), laravel} {
		if ok, err := auth.VerifyPassword(h, "legacy"); !ok || err != nil {
			t.Errorf("bcrypt %q: %v, %v", h[:4], ok, err)
		}
		if ok, err := auth.VerifyPassword(h, "wrong"); ok || err != nil {
			t.Errorf("bcrypt %q wrong password: %v, %v", h[:4], ok, err)
		}
		if !auth.NeedsRehash(h) {
			t.Error("bcrypt hash does not need a rehash")
		}
	}
}

// The dummy hash must cost what a real one does, or a missing user is
// detectable by timing.
func TestDummyHashMatchesDefaults(t *testing.T) {
	if auth.NeedsRehash(auth.DummyHash) {
		t.Fatal("dummyHash does not use DefaultArgon2Params: regenerate it with HashPassword")
	}
	if ok, err := auth.VerifyPassword(auth.DummyHash, "anything"); ok || err != nil {
		t.Errorf("dummy hash: %v, %v", ok, err)
	}
}

func TestNewToken(t *testing.T) {
	tok, hash, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, auth.TokenPrefix) || len(tok) != len(auth.TokenPrefix)+43 {
		t.Errorf("token %q: want %s + 43 base64url characters", tok, auth.TokenPrefix)
	}
	if string(hash) != string(auth.HashToken(tok)) || len(hash) != 32 {
		t.Error("hash is not SHA-256 of the token")
	}
	tok2, _, _ := auth.NewToken()
	if tok == tok2 {
		t.Error("two tokens are equal")
	}
}
