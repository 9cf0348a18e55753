// Package auth is MuStServ's authentication: signed tokens for sessions
// and for stream links that players without a login can use.
//
// So far it holds the token format, the key ring and password hashing
// (argon2id); issue 6 adds users, sessions and roles. A token carries its
// claims in the clear and an HMAC-SHA256 by one of the ring's keys, so
// every node that shares the ring accepts what any of them signed, and
// rotating the key revokes every token once the previous key's overlap
// has passed. It does not store sessions, read configuration or speak
// HTTP.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Kind says what a token is for; a token of one kind is never accepted as
// another.
type Kind string

const (
	// Session is a logged-in browser's cookie.
	Session Kind = "s"
	// Link is a stream or playlist link for a player that cannot log in.
	Link Kind = "l"
	// Node is what one node of a cluster shows another to read its
	// /metrics: nodes share the signing key, not accounts' secrets.
	Node Kind = "n"
)

// Claims are what a token says. They are readable by whoever holds the
// token: put no secret in them.
type Claims struct {
	Kind Kind `json:"k"`
	// Subject is who (a user's ID, for a session) or what (an item's or a
	// playlist's scope, for a link) the token is for.
	Subject string `json:"sub"`
	// Expires is when the token stops being valid (whole seconds).
	Expires time.Time `json:"-"`
	// Client, if set, is the only client address the token is good from.
	Client string `json:"ip,omitempty"`
	// Rate, if not 0, caps a link's streams (bit/s).
	Rate int64 `json:"r,omitempty"`
	// ID names this token, so that one can be revoked alone (a session
	// after logout) without rotating the key.
	ID string `json:"id,omitempty"`
	// User is the ID of the user a link was made for: the link works
	// while that user exists and may see what it points to.
	User string `json:"u,omitempty"`
	// Generation is the user's password generation when a session was
	// made: a new password ends older sessions.
	Generation int `json:"g,omitempty"`
}

// wire is the claims as encoded: the expiry as Unix seconds.
type wire struct {
	Claims
	Exp int64 `json:"exp"`
}

// Errors of Verify. A client is told only that a token is not valid: which
// of these it was goes to the log at most.
var (
	ErrMalformed = errors.New("token: malformed")
	ErrBadMAC    = errors.New("token: signature does not match") // or an unknown key
	ErrExpired   = errors.New("token: expired")
	ErrKind      = errors.New("token: of another kind")
)

// version prefixes every token; another format gets another prefix.
const version = "v1"

// macLen is how much of the HMAC a token carries: 128 bits.
const macLen = 16

// key is one signing key of a ring.
type key struct {
	id     string // public: says which key signed a token
	secret []byte
	// until is when a replaced key stops verifying; zero for the current
	// key.
	until time.Time
}

// Keyring signs with its current key and verifies with it and with the
// keys it replaced for as long as their overlap lasts, so that nodes that
// rotate a few minutes apart, and players holding links, keep working.
// It is safe for concurrent use.
type Keyring struct {
	mu   sync.RWMutex
	keys []key // the current first
}

// SecretSize is the size of a signing secret.
const SecretSize = 32

// NewSecret returns a random signing secret.
func NewSecret() []byte {
	b := make([]byte, SecretSize)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return b
}

// NewKeyring returns a ring whose current key is secret (SecretSize
// bytes). There is no default key: a server that cannot load or make one
// must not start.
func NewKeyring(secret []byte) (*Keyring, error) {
	k, err := newKey(secret)
	if err != nil {
		return nil, err
	}
	return &Keyring{keys: []key{k}}, nil
}

func newKey(secret []byte) (key, error) {
	if len(secret) != SecretSize {
		return key{}, fmt.Errorf("auth: a signing secret is %d bytes, got %d", SecretSize, len(secret))
	}
	// The key's ID is derived from the secret: every node that loads the
	// same secret names it the same.
	sum := sha256.Sum256(append([]byte("mustserv key id\x00"), secret...))
	return key{id: hex.EncodeToString(sum[:4]), secret: append([]byte(nil), secret...)}, nil
}

// Rotate makes secret the current key. The replaced key still verifies
// until now+overlap; keys whose overlap has passed are dropped.
func (r *Keyring) Rotate(secret []byte, now time.Time, overlap time.Duration) error {
	k, err := newKey(secret)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys[0].id == k.id {
		return nil // already current: rotating twice to one key changes nothing
	}
	old := r.keys[0]
	old.until = now.Add(overlap)
	keys := []key{k, old}
	for _, o := range r.keys[1:] {
		if o.until.After(now) && o.id != k.id {
			keys = append(keys, o)
		}
	}
	r.keys = keys
	return nil
}

// Sign returns a token for c: "v1.<key id>.<claims>.<mac>", all
// URL-safe, so that it fits a cookie and a query parameter unescaped.
func (r *Keyring) Sign(c Claims) (string, error) {
	if c.Kind != Session && c.Kind != Link && c.Kind != Node {
		return "", fmt.Errorf("auth: unknown token kind %q", c.Kind)
	}
	if c.Expires.IsZero() {
		return "", errors.New("auth: a token must expire")
	}
	body, err := json.Marshal(wire{Claims: c, Exp: c.Expires.Unix()})
	if err != nil {
		return "", err
	}
	r.mu.RLock()
	k := r.keys[0]
	r.mu.RUnlock()
	signed := version + "." + k.id + "." + base64.RawURLEncoding.EncodeToString(body)
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac(k.secret, signed)), nil
}

// Verify checks a token of kind want at time now and returns its claims.
// The signature is checked before anything in the claims is believed.
func (r *Keyring) Verify(tok string, want Kind, now time.Time) (Claims, error) {
	// Only the characters Sign writes: base64 decoders skip newlines even
	// in strict mode, and a token must have one spelling (FuzzVerify
	// found "…\n…" verifying).
	if len(tok) > 4096 || strings.IndexFunc(tok, notTokenChar) >= 0 {
		return Claims{}, ErrMalformed
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 4 || parts[0] != version {
		return Claims{}, ErrMalformed
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(parts[3])
	if err != nil || len(got) != macLen {
		return Claims{}, ErrMalformed
	}
	k, ok := r.lookup(parts[1], now)
	if !ok {
		return Claims{}, ErrBadMAC
	}
	if !hmac.Equal(got, mac(k.secret, tok[:len(tok)-len(parts[3])-1])) {
		return Claims{}, ErrBadMAC
	}
	body, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var w wire
	if err := json.Unmarshal(body, &w); err != nil {
		return Claims{}, ErrMalformed
	}
	c := w.Claims
	c.Expires = time.Unix(w.Exp, 0)
	if c.Kind != want {
		return Claims{}, ErrKind
	}
	if !now.Before(c.Expires) {
		return Claims{}, ErrExpired
	}
	return c, nil
}

// lookup returns the key with this ID if it may still verify at now.
func (r *Keyring) lookup(id string, now time.Time) (key, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for i, k := range r.keys {
		if k.id == id && (i == 0 || now.Before(k.until)) {
			return k, true
		}
	}
	return key{}, false
}

// notTokenChar reports a character Sign never writes: tokens are the
// URL-safe base64 alphabet and dots.
func notTokenChar(r rune) bool {
	return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
}

func mac(secret []byte, signed string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(signed))
	return h.Sum(nil)[:macLen]
}
