package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func ring(t testing.TB, secret []byte) *Keyring {
	t.Helper()
	r, err := NewKeyring(secret)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sign(t testing.TB, r *Keyring, c Claims) string {
	t.Helper()
	tok, err := r.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	secret := NewSecret()
	a := ring(t, secret)
	link := Claims{Kind: Link, Subject: "item:0123456789abcdef", Expires: t0.Add(time.Hour),
		Client: "192.0.2.7", Rate: 4_000_000, ID: "x1"}
	tok := sign(t, a, link)
	if strings.ContainsAny(tok, "+/=%&?# ") {
		t.Errorf("token %q is not URL-safe", tok)
	}
	// Another node with the same secret accepts it.
	b := ring(t, append([]byte(nil), secret...))
	got, err := b.Verify(tok, Link, t0.Add(59*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(link, got); diff != "" {
		t.Errorf("claims (-signed +verified):\n%s", diff)
	}
	for _, tc := range []struct {
		name string
		tok  string
		kind Kind
		now  time.Time
		want error
	}{
		{"expired at the second", tok, Link, t0.Add(time.Hour), ErrExpired},
		{"used as a session", tok, Session, t0, ErrKind},
		{"other secret", sign(t, ring(t, NewSecret()), link), Link, t0, ErrBadMAC},
		{"empty", "", Link, t0, ErrMalformed},
		{"no MAC", tok[:strings.LastIndexByte(tok, '.')], Link, t0, ErrMalformed},
		{"short MAC", tok[:len(tok)-2], Link, t0, ErrMalformed},
		{"other version", "v2" + tok[2:], Link, t0, ErrMalformed},
		// One token, one spelling: base64 decoders skip newlines.
		{"newline in the MAC", tok[:len(tok)-5] + "\n" + tok[len(tok)-5:], Link, t0, ErrMalformed},
		{"space in the claims", strings.Replace(tok, ".", ". ", 2), Link, t0, ErrMalformed},
	} {
		if _, err := b.Verify(tc.tok, tc.kind, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestTampering changes the claims one at a time and re-encodes them, as
// an attacker holding a link would: every change breaks the signature.
func TestTampering(t *testing.T) {
	t.Parallel()
	r := ring(t, NewSecret())
	base := Claims{Kind: Link, Subject: "item:a", Expires: t0.Add(time.Hour), Client: "192.0.2.7", Rate: 1000}
	tok := sign(t, r, base)
	parts := strings.Split(tok, ".")
	for _, c := range []Claims{
		{Kind: Link, Subject: "item:b", Expires: base.Expires, Client: base.Client, Rate: base.Rate},
		{Kind: Link, Subject: "item:a", Expires: base.Expires.Add(time.Hour), Client: base.Client, Rate: base.Rate},
		{Kind: Link, Subject: "item:a", Expires: base.Expires, Rate: base.Rate},
		{Kind: Link, Subject: "item:a", Expires: base.Expires, Client: base.Client},
		{Kind: Session, Subject: "item:a", Expires: base.Expires, Client: base.Client, Rate: base.Rate},
	} {
		other := strings.Split(sign(t, ring(t, NewSecret()), c), ".")
		forged := parts[0] + "." + parts[1] + "." + other[2] + "." + parts[3]
		if _, err := r.Verify(forged, c.Kind, t0); !errors.Is(err, ErrBadMAC) {
			t.Errorf("claims changed to %+v: %v, want ErrBadMAC", c, err)
		}
	}
	// Every single-character change of the token fails.
	for i := range tok {
		b := []byte(tok)
		b[i] ^= 1
		if _, err := r.Verify(string(b), Link, t0); err == nil {
			t.Fatalf("token with byte %d changed (%q) verified", i, b)
		}
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	first, second, third := NewSecret(), NewSecret(), NewSecret()
	r := ring(t, first)
	c := Claims{Kind: Session, Subject: "user:1", Expires: t0.Add(48 * time.Hour)}
	old := sign(t, r, c)
	if err := r.Rotate(second, t0, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	fresh := sign(t, r, c)
	if strings.Split(fresh, ".")[1] == strings.Split(old, ".")[1] {
		t.Error("after Rotate, tokens are still signed by the old key")
	}
	if _, err := r.Verify(old, Session, t0.Add(9*time.Minute)); err != nil {
		t.Errorf("old token within the overlap: %v", err)
	}
	if _, err := r.Verify(old, Session, t0.Add(10*time.Minute)); !errors.Is(err, ErrBadMAC) {
		t.Errorf("old token after the overlap: %v, want ErrBadMAC", err)
	}
	// A node that has not rotated yet accepts the new key's tokens only
	// once it rotates too; rotating to the current key changes nothing.
	lagging := ring(t, first)
	if _, err := lagging.Verify(fresh, Session, t0); !errors.Is(err, ErrBadMAC) {
		t.Errorf("new token on a node without the key: %v", err)
	}
	if err := lagging.Rotate(second, t0.Add(time.Minute), 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := lagging.Rotate(second, t0.Add(2*time.Minute), 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{old, fresh} {
		if _, err := lagging.Verify(tok, Session, t0.Add(5*time.Minute)); err != nil {
			t.Errorf("after the lagging node rotated: %v", err)
		}
	}
	// Keys past their overlap are dropped at the next rotation.
	if err := r.Rotate(third, t0.Add(time.Hour), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := len(r.keys); n != 2 {
		t.Errorf("ring holds %d keys, want the current and the one just replaced", n)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	if _, err := NewKeyring(nil); err == nil {
		t.Error("NewKeyring(nil) made a ring: there must be no default key")
	}
	if _, err := NewKeyring(bytes.Repeat([]byte{1}, 16)); err == nil {
		t.Error("NewKeyring accepted a 16-byte secret")
	}
	r := ring(t, NewSecret())
	if _, err := r.Sign(Claims{Kind: Link, Subject: "x"}); err == nil {
		t.Error("Sign made a token that never expires")
	}
	if _, err := r.Sign(Claims{Kind: "admin", Subject: "x", Expires: t0}); err == nil {
		t.Error("Sign accepted an unknown kind")
	}
	if bytes.Equal(NewSecret(), NewSecret()) {
		t.Error("NewSecret returned the same secret twice")
	}
}

// FuzzVerify: Verify never panics, and accepts nothing it did not sign
// but what it signed.
func FuzzVerify(f *testing.F) {
	r := ring(f, bytes.Repeat([]byte{7}, SecretSize))
	valid := sign(f, r, Claims{Kind: Link, Subject: "item:a", Expires: t0.Add(time.Hour)})
	f.Add(valid)
	f.Add("v1..." + valid)
	f.Add("v1.00000000.e30.AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := r.Verify(tok, Link, t0)
		if err != nil {
			return
		}
		// Only a token with the valid one's signature verifies; its
		// claims are what was signed.
		if again := sign(t, r, c); tok != valid && again != tok {
			t.Fatalf("verified a token it did not sign: %q (claims %+v)", tok, c)
		}
	})
}
