package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// cheap keeps the tests fast; the format and logic are the same at any cost.
var cheap = PasswordOptions{MemoryKiB: 64, Time: 1, Threads: 1}

func TestPasswords(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	p := NewPasswords(cheap)
	h, err := p.Hash(ctx, "correct horse ✓")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(h, "correct") {
		t.Errorf("stored form %q", h)
	}
	if h2, _ := p.Hash(ctx, "correct horse ✓"); h2 == h {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		password string
		want     bool
	}{
		{"correct horse ✓", true},
		{"correct horse", false},
		{"", false},
		{"Correct horse ✓", false},
	} {
		ok, rehash, err := p.Check(ctx, h, tc.password)
		if err != nil || ok != tc.want || rehash {
			t.Errorf("Check(%q) = %v, %v, %v; want %v", tc.password, ok, rehash, err, tc.want)
		}
	}
	// Raised costs: the old hash still checks, and asks to be made again.
	stronger := NewPasswords(PasswordOptions{MemoryKiB: 128, Time: 1, Threads: 1})
	if ok, rehash, err := stronger.Check(ctx, h, "correct horse ✓"); !ok || !rehash || err != nil {
		t.Errorf("with raised costs: %v, %v, %v; want ok and rehash", ok, rehash, err)
	}
	if err := p.CheckUnknown(ctx, "anything"); err != nil {
		t.Errorf("CheckUnknown: %v", err)
	}
}

func TestBadHashes(t *testing.T) {
	t.Parallel()
	p := NewPasswords(cheap)
	good, _ := p.Hash(t.Context(), "pw")
	f := strings.Split(good, "$")
	for _, bad := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$" + f[4] + "$" + f[5],
		"$argon2id$v=16$m=64,t=1,p=1$" + f[4] + "$" + f[5],
		"$argon2id$v=19$m=4194304,t=1,p=1$" + f[4] + "$" + f[5], // 4 GiB
		"$argon2id$v=19$m=64,t=1000,p=1$" + f[4] + "$" + f[5],
		"$argon2id$v=19$m=64,t=1,p=255$" + f[4] + "$" + f[5],
		"$argon2id$v=19$m=64,t=0,p=1$" + f[4] + "$" + f[5],
		"$argon2id$v=19$m=64,t=1$" + f[4] + "$" + f[5],
		"$argon2id$v=19$m=64,t=1,p=1,x=2$" + f[4] + "$" + f[5],
		"$argon2id$v=19$m=64,t=1,p=1$!!$" + f[5],
		"$argon2id$v=19$m=64,t=1,p=1$" + f[4] + "$",
		good + "$",
	} {
		if ok, _, err := p.Check(t.Context(), bad, "pw"); ok || !errors.Is(err, ErrBadHash) {
			t.Errorf("Check(%q) = %v, %v; want ErrBadHash", bad, ok, err)
		}
	}
}

// TestPasswordsBoundConcurrency: with MaxConcurrent hashes running, the
// next waits (argon2id's memory is the point: a login flood must not
// multiply it) and gives up with its context.
func TestPasswordsBoundConcurrency(t *testing.T) {
	t.Parallel()
	p := NewPasswords(PasswordOptions{MemoryKiB: 64, Time: 1, Threads: 1, MaxConcurrent: 1})
	// Hold the only slot, as a running hash would.
	if err := p.acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.Hash(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash with the slot taken and ctx done: %v", err)
	}
	p.release()
	if _, err := p.Hash(t.Context(), "x"); err != nil {
		t.Errorf("Hash with the slot free again: %v", err)
	}
}

// BenchmarkHash measures the default costs (go test -bench Hash
// ./internal/auth/).
func BenchmarkHash(b *testing.B) {
	p := NewPasswords(PasswordOptions{})
	for b.Loop() {
		p.Hash(context.Background(), "correct horse battery staple")
	}
}

func FuzzParsePHC(f *testing.F) {
	p := NewPasswords(cheap)
	good, _ := p.Hash(context.Background(), "pw")
	f.Add(good)
	f.Add("$argon2id$v=19$m=1,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parsePHC(s)
		if err != nil {
			return
		}
		if h.memory > maxMemoryKiB || h.time > maxTime || h.threads > maxThreads || h.threads == 0 {
			t.Fatalf("%q parsed to costs over the limits: %+v", s, h)
		}
	})
}
