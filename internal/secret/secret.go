// Package secret owns secrets at rest: the AES-256-GCM box that seals router
// passwords, subscribers' and hotspot users' service passwords and payment
// gateway configuration under ISPGRAPH_SECRET_KEY, and the masked summaries the
// API shows instead of them. Plain text leaves this package only where a peer
// needs it (a router call, a gateway call).
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// version1 prefixes every sealed value: the format (AES-256-GCM, 12-byte
// nonce, base64url) and leaves room for a key id when keys rotate.
const version1 = "v1:"

// KeySize is the size of the key in bytes (AES-256).
const KeySize = 32

// ErrCorrupt reports a sealed value that cannot be opened with this key: it was
// sealed under another key, or it was altered.
var ErrCorrupt = errors.New("secret: cannot open sealed value (wrong key or altered)")

// Box seals and opens secrets with one key. Previous keys, when set, are tried
// by Open after the current one, so values sealed before a rotation stay
// readable until they are resealed (see docs/security.md).
type Box struct {
	aead     cipher.AEAD
	previous []cipher.AEAD
}

// New returns a Box for key (32 bytes) and optional previous keys.
func New(key []byte, previous ...[]byte) (*Box, error) {
	a, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	b := &Box{aead: a}
	for _, k := range previous {
		p, err := newAEAD(k)
		if err != nil {
			return nil, fmt.Errorf("previous key: %w", err)
		}
		b.previous = append(b.previous, p)
	}
	return b, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plain with a fresh random nonce. The empty string stays empty:
// it means "no secret set".
func (b *Box) Seal(plain string) (string, error) {
	if plain == "" {
		return "", nil
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secret: nonce: %w", err)
	}
	ct := b.aead.Seal(nonce, nonce, []byte(plain), []byte(version1))
	return version1 + base64.RawURLEncoding.EncodeToString(ct), nil
}

// SealBytes is Seal for binary values (gateway configuration).
func (b *Box) SealBytes(plain []byte) ([]byte, error) {
	s, err := b.Seal(string(plain))
	return []byte(s), err
}

// Open decrypts a value Seal produced, trying the current key, then previous ones.
func (b *Box) Open(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	rest, ok := strings.CutPrefix(sealed, version1)
	if !ok {
		return "", ErrCorrupt
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return "", ErrCorrupt
	}
	for _, a := range append([]cipher.AEAD{b.aead}, b.previous...) {
		if len(raw) < a.NonceSize() {
			return "", ErrCorrupt
		}
		pt, err := a.Open(nil, raw[:a.NonceSize()], raw[a.NonceSize():], []byte(version1))
		if err == nil {
			return string(pt), nil
		}
	}
	return "", ErrCorrupt
}

// OpenBytes is Open for binary values.
func (b *Box) OpenBytes(sealed []byte) ([]byte, error) {
	s, err := b.Open(string(sealed))
	return []byte(s), err
}

// Reseal opens sealed with any known key and seals it again under the current
// key; key rotation runs it over every stored secret.
func (b *Box) Reseal(sealed string) (string, error) {
	pt, err := b.Open(sealed)
	if err != nil {
		return "", err
	}
	return b.Seal(pt)
}

// Mask returns what the API may show of a secret: its last two characters
// after bullets when it is long enough to keep the rest hidden, else bullets
// only. "" stays "" (no secret set).
func Mask(plain string) string {
	switch {
	case plain == "":
		return ""
	case len(plain) < 8:
		return "••••"
	default:
		return "••••" + plain[len(plain)-2:]
	}
}
