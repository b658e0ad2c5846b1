package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/ispgraph/ispgraph/internal/apperr"
)

// MaxPasswordLen bounds a password in bytes, so hashing cannot be made
// arbitrarily expensive.
const MaxPasswordLen = 1024

// Argon2Params are the argon2id cost parameters. They are written into every
// hash, so they can be raised later without invalidating existing hashes.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// hashSlots bounds how many argon2id computations run at once in this process.
// Each takes Argon2Params.Memory (64 MiB by default), so a burst of logins
// would otherwise multiply the server's memory; the slots are a property of
// the process's memory, hence process-wide.
var hashSlots = make(chan struct{}, 2)

// idKey is argon2.IDKey inside a hash slot.
func idKey(pw, salt []byte, p Argon2Params) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

// DefaultArgon2Params returns the parameters new hashes are made with:
// 64 MiB, one pass, two lanes, a 16-byte salt and a 32-byte key.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Memory: 64 * 1024, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32}
}

// Bounds on parameters read from a stored hash: a corrupt or hostile hash must
// not make one verification allocate gigabytes or run for minutes.
const (
	maxArgon2Memory = 1024 * 1024 // KiB (1 GiB)
	maxArgon2Time   = 32
	minArgon2Key    = 16
	maxArgon2Key    = 128
	minArgon2Salt   = 8
	maxArgon2Salt   = 64
)

// Errors of password hashing; they are BAD_USER_INPUT so a create-user or
// change-password mutation can return them as they are.
var (
	// ErrEmptyPassword is returned for an empty password.
	ErrEmptyPassword = apperr.E(apperr.BadUserInput, "password must not be empty")
	// ErrPasswordTooLong is returned for a password over MaxPasswordLen bytes.
	ErrPasswordTooLong = apperr.E(apperr.BadUserInput, "password must be at most %d bytes", MaxPasswordLen)
)

// errMalformedHash reports a stored hash this package cannot read. It is an
// internal error: the stored data, not the caller, is wrong.
var errMalformedHash = errors.New("auth: malformed password hash")

// b64 is the PHC string format's base64: standard alphabet, no padding.
var b64 = base64.RawStdEncoding

// HashPassword returns the argon2id hash of pw in PHC string format,
// $argon2id$v=19$m=65536,t=1,p=2$<salt>$<hash>, with a fresh random salt.
func HashPassword(pw string) (string, error) {
	return hashArgon2(pw, DefaultArgon2Params())
}

func hashArgon2(pw string, p Argon2Params) (string, error) {
	if err := checkPassword(pw); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: password salt: %w", err)
	}
	key := idKey([]byte(pw), salt, p)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches encoded, comparing in constant
// time. encoded is an argon2id PHC string or, for users imported from the
// original system, a bcrypt hash ($2a$, $2b$, $2y$). An error means encoded
// cannot be read or pw is empty or too long, not that pw is wrong.
func VerifyPassword(encoded, pw string) (bool, error) {
	if err := checkPassword(pw); err != nil {
		return false, err
	}
	if strings.HasPrefix(encoded, "$2") {
		switch err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(pw)); {
		case err == nil:
			return true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, nil
		default:
			return false, fmt.Errorf("%w: %v", errMalformedHash, err)
		}
	}
	p, salt, key, err := parseArgon2(encoded)
	if err != nil {
		return false, err
	}
	got := idKey([]byte(pw), salt, p)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether encoded was not made by HashPassword with the
// current parameters (a bcrypt hash, or older argon2id parameters), so a
// successful login should store a fresh hash.
func NeedsRehash(encoded string) bool {
	p, _, _, err := parseArgon2(encoded)
	if err != nil {
		return true
	}
	d := DefaultArgon2Params()
	return p.Memory != d.Memory || p.Time != d.Time || p.Threads != d.Threads ||
		p.SaltLen != d.SaltLen || p.KeyLen != d.KeyLen
}

// parseArgon2 reads $argon2id$v=19$m=..,t=..,p=..$salt$key.
func parseArgon2(encoded string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: not an argon2id PHC string", errMalformedHash)
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported argon2 version %q", errMalformedHash, parts[2])
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil || n != 3 ||
		fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, threads) != parts[3] {
		return p, nil, nil, fmt.Errorf("%w: bad parameters %q", errMalformedHash, parts[3])
	}
	if threads < 1 || threads > 255 || p.Time < 1 || p.Time > maxArgon2Time ||
		p.Memory < 8*threads || p.Memory > maxArgon2Memory {
		return p, nil, nil, fmt.Errorf("%w: parameters out of range %q", errMalformedHash, parts[3])
	}
	p.Threads = uint8(threads)
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < minArgon2Salt || len(salt) > maxArgon2Salt {
		return p, nil, nil, fmt.Errorf("%w: bad salt", errMalformedHash)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < minArgon2Key || len(key) > maxArgon2Key {
		return p, nil, nil, fmt.Errorf("%w: bad key", errMalformedHash)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

func checkPassword(pw string) error {
	switch {
	case pw == "":
		return ErrEmptyPassword
	case len(pw) > MaxPasswordLen:
		return ErrPasswordTooLong
	}
	return nil
}

// dummyHash is verified when a login names no user, so an unknown e-mail takes
// as long as a wrong password. It hashes a random, discarded password with
// DefaultArgon2Params (a test keeps the two in step).
const dummyHash = "$argon2id$v=19$m=65536,t=1,p=2$BMv3vZaGJn6UdQYpceuCqw$awve2g1a5rkzQ/4EWq2DBMaIw+0MhfHc5vgIwHYNa+8"
