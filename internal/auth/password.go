package auth

import (
	"context"
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

// DefaultArgon2Params returns the parameters new hashes are made with:
// OWASP's first recommended argon2id configuration (19 MiB, two passes, one
// lane), a 16-byte salt and a 32-byte key. docs/security.md says why.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// bcryptWeight is the share of a HashPool a bcrypt verification takes: it
// needs little memory but a core's worth of time, like an argon2id hash.
var bcryptWeight = int64(DefaultArgon2Params().Memory)

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
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>, with a fresh random salt,
// computed in DefaultHashing.
func HashPassword(pw string) (string, error) {
	return hashPassword(context.Background(), DefaultHashing, "", pw)
}

// hashPassword is HashPassword in pool, in turn's queue (a tenant).
func hashPassword(ctx context.Context, pool *HashPool, turn, pw string) (string, error) {
	if err := checkPassword(pw); err != nil {
		return "", err
	}
	p := DefaultArgon2Params()
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: password salt: %w", err)
	}
	release, err := pool.Acquire(ctx, turn, int64(p.Memory))
	if err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	pool.collect() // before the memory is handed on: see collect
	release()
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches encoded, comparing in constant
// time. encoded is an argon2id PHC string, verified with the parameters it
// carries, or, for users imported from the original system, a bcrypt hash
// ($2a$, $2b$, $2y$). An error means encoded cannot be read or pw is empty
// or too long, not that pw is wrong. It computes in DefaultHashing.
func VerifyPassword(encoded, pw string) (bool, error) {
	return verifyPassword(context.Background(), DefaultHashing, "", encoded, pw)
}

// verifyPassword is VerifyPassword in pool, in turn's queue (a tenant).
func verifyPassword(ctx context.Context, pool *HashPool, turn, encoded, pw string) (bool, error) {
	if err := checkPassword(pw); err != nil {
		return false, err
	}
	if strings.HasPrefix(encoded, "$2") {
		release, err := pool.Acquire(ctx, turn, bcryptWeight)
		if err != nil {
			return false, err
		}
		err = bcrypt.CompareHashAndPassword([]byte(encoded), []byte(pw))
		release()
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, nil
		default:
			return false, fmt.Errorf("%w: %v", errMalformedHash, err)
		}
	}
	p, salt, want, err := parseArgon2(encoded)
	if err != nil {
		return false, err
	}
	release, err := pool.Acquire(ctx, turn, int64(p.Memory))
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	pool.collect() // before the memory is handed on: see collect
	release()
	return subtle.ConstantTimeCompare(got, want) == 1, nil
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
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$S9M/u2m3SwGy3Dg/DpFl5Q$epcVzgfmJJIB/SARtoPXP42uAjcYjri7pswTv7wFZVY"
