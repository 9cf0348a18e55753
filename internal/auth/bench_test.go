package auth

import (
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSession is the per-request cost of a session cookie: Verify,
// the account, the revocation list and the reload checks, from many
// goroutines at once as requests come.
//
//	go test -run '^$' -bench Session -cpu 1,2 ./internal/auth/
func BenchmarkSession(b *testing.B) {
	dir := b.TempDir()
	store, err := OpenStore(b.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	keys, err := OpenKeyFile(filepath.Join(dir, "keys"))
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewService(b.Context(), store, keys, ServiceOptions{SessionTTL: time.Hour, LinkTTL: time.Hour, Passwords: PasswordOptions{MemoryKiB: 64, Time: 1}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a := addUser(b, s, "ann", User)
	tok, _, err := s.Login(b.Context(), "ann", "ann password", "x")
	if err != nil {
		b.Fatal(err)
	}
	_ = a
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, _, err := s.Session(tok, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
