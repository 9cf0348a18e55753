package auth

import (
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func openStore(t *testing.T, path string) *Store {
	t.Helper()
	s, err := OpenStore(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	s := openStore(t, path)
	if n, err := s.Count(ctx); n != 0 || err != nil {
		t.Fatalf("new store: %d users, %v", n, err)
	}
	alice, err := s.AddUser(ctx, "Alice", Admin, nil, "$hash-a")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.AddUser(ctx, "bob", Guest, []string{"Music", "Films", "Music"}, "$hash-b")
	if err != nil {
		t.Fatal(err)
	}
	if len(alice.ID) != 16 || alice.ID == bob.ID {
		t.Errorf("IDs %q and %q", alice.ID, bob.ID)
	}
	for _, tc := range []struct {
		name string
		role Role
		want error
	}{
		{"ALICE", User, ErrUserExists},
		{"", User, ErrBadName},
		{" carol", User, ErrBadName},
		{"car\x00ol", User, ErrBadName},
		{"bad \xff", User, ErrBadName},
		{"carol", "root", ErrBadRole},
	} {
		if _, err := s.AddUser(ctx, tc.name, tc.role, nil, "$h"); !errors.Is(err, tc.want) {
			t.Errorf("AddUser(%q, %q): %v, want %v", tc.name, tc.role, err, tc.want)
		}
	}
	got, hash, err := s.ByName(ctx, "ALICE")
	if err != nil || hash != "$hash-a" {
		t.Fatalf("ByName: %v, %q", err, hash)
	}
	if diff := cmp.Diff(alice, got); diff != "" {
		t.Errorf("ByName (-added +got):\n%s", diff)
	}
	if err := s.SetPassword(ctx, bob.ID, "$hash-b2"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAccess(ctx, bob.ID, User, []string{"Films"}); err != nil {
		t.Fatal(err)
	}
	// A new process sees what the last one stored.
	s.Close()
	s = openStore(t, path)
	got, hash, err = s.ByID(ctx, bob.ID)
	if err != nil || hash != "$hash-b2" || got.Generation != 2 || got.Role != User || !cmp.Equal(got.Libraries, []string{"Films"}) {
		t.Errorf("bob after the changes: %+v, %q, %v", got, hash, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state.db mode %v, %v; want 0600 (it holds password hashes)", fi.Mode(), err)
	}
	users, err := s.Users(ctx)
	if err != nil || len(users) != 2 || users[0].Name != "Alice" || users[1].Name != "bob" {
		t.Errorf("Users: %+v, %v", users, err)
	}
	if err := s.DeleteUser(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		s.DeleteUser(ctx, alice.ID), s.SetPassword(ctx, "nobody", "$h"), s.SetAccess(ctx, "nobody", User, nil),
	} {
		if !errors.Is(err, ErrNoUser) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("change of a missing user: %v, want ErrNoUser", err)
		}
	}
	if _, _, err := s.ByName(ctx, "alice"); !errors.Is(err, ErrNoUser) {
		t.Errorf("deleted user: %v", err)
	}
}

// TestStoreNewerSchema: a store written by a newer MuStServ is refused, not
// changed.
func TestStoreNewerSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := OpenStore(t.Context(), path); err == nil {
		s.Close()
		t.Fatal("opened a store of schema 99")
	}
}
