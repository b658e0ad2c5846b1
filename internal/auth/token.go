package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// TokenPrefix starts every bearer token issued by login and customerLogin, so
// a token is recognisable in a leaked log or a secret scanner.
const TokenPrefix = "isg_"

// tokenBytes is the entropy of a bearer token.
const tokenBytes = 32

// tokenLen is the length of a token: the prefix and 32 bytes in unpadded base64url.
var tokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(tokenBytes)

// NewToken returns a fresh opaque bearer token and the hash to store for it.
// The token itself is shown to its holder once and never stored.
func NewToken() (token string, hash []byte, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("auth: token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken returns the SHA-256 of token, as stored in AuthToken.token_hash.
// A plain hash suffices: the token has 256 bits of entropy, so there is nothing
// to guess, and lookups by hash stay a single index probe.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// wellFormedToken reports whether s looks like a token NewToken made, so
// garbage is refused without a database round trip.
func wellFormedToken(s string) bool {
	if len(s) != tokenLen || !strings.HasPrefix(s, TokenPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s[len(TokenPrefix):])
	return err == nil
}
