package auth

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func addAPIKey(t testing.TB, s *Service, a Account, name string) (string, APIKey) {
	t.Helper()
	key, k, err := s.AddAPIKey(t.Context(), a.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	return key, k
}

var apiKeyForm = regexp.MustCompile(`^mk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$`)

func TestAPIKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s := newService(t, dir, testOptions)
	alice := addUser(t, s, "alice", User)
	bob := addUser(t, s, "bob", User)
	before := time.Now().Truncate(time.Second)
	key, k := addAPIKey(t, s, alice, " phone ")
	m := apiKeyForm.FindStringSubmatch(key)
	if m == nil {
		t.Fatalf("API key %q, want mk_<16 hex>_<43 base64url>", key)
	}
	secret := m[2]
	if k.ID != m[1] || k.UserID != alice.ID || k.Name != "phone" || k.Created.Before(before) || !k.Used.IsZero() {
		t.Errorf("AddAPIKey: %+v", k)
	}
	bobKey, _ := addAPIKey(t, s, bob, "script")
	if key == bobKey || secret == apiKeyForm.FindStringSubmatch(bobKey)[2] {
		t.Fatal("two keys alike")
	}

	if a, err := s.APIKey(ctx, key); err != nil || a.ID != alice.ID {
		t.Fatalf("APIKey: %q, %v; want alice", a.Name, err)
	}
	other := func(c byte) byte {
		if c == 'A' {
			return 'B'
		}
		return 'A'
	}
	changed := []byte(key)
	changed[len(changed)-1] = other(changed[len(changed)-1])
	changedID := []byte(key)
	if changedID[3] == '0' { // still hex: well formed, found by no lookup
		changedID[3] = '1'
	} else {
		changedID[3] = '0'
	}
	bobID := apiKeyForm.FindStringSubmatch(bobKey)[1]
	for _, tc := range []struct{ name, key string }{
		{"one character of the secret changed", string(changed)},
		{"one character of the ID changed", string(changedID)},
		{"truncated", key[:len(key)-1]},
		{"one character more", key + "A"},
		{"other prefix", "mx_" + key[3:]},
		{"no prefix", key[3:]},
		{"bob's ID with alice's secret", "mk_" + bobID + "_" + secret},
		{"the secret alone", secret},
		{"empty", ""},
	} {
		if a, err := s.APIKey(ctx, tc.key); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s (%q): %q, %v; want ErrBadKey", tc.name, tc.key, a.Name, err)
		}
	}

	for _, name := range []string{"", "   ", strings.Repeat("x", 65)} {
		if _, _, err := s.AddAPIKey(ctx, alice.ID, name); err == nil {
			t.Errorf("AddAPIKey named %q accepted", name)
		}
	}
	if _, _, err := s.AddAPIKey(ctx, "0123456789abcdef", "phone"); !errors.Is(err, ErrNoUser) {
		t.Errorf("AddAPIKey for no one: %v, want ErrNoUser", err)
	}

	// Another user cannot delete alice's key; alice can, and then it fails.
	if err := s.DeleteAPIKey(ctx, bob.ID, k.ID); err == nil {
		t.Error("bob deleted alice's key")
	}
	if _, err := s.APIKey(ctx, key); err != nil {
		t.Errorf("alice's key after bob's attempt to delete it: %v", err)
	}
	if err := s.DeleteAPIKey(ctx, alice.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.APIKey(ctx, key); !errors.Is(err, ErrBadKey) {
		t.Errorf("deleted key: %v, want ErrBadKey", err)
	}
	if err := s.DeleteAPIKey(ctx, alice.ID, k.ID); err == nil {
		t.Error("deleting a key twice succeeded")
	}
	// An admin ("") deletes anyone's.
	if err := s.DeleteAPIKey(ctx, "", bobID); err != nil {
		t.Errorf("admin deleting bob's key: %v", err)
	}
	if _, err := s.APIKey(ctx, bobKey); !errors.Is(err, ErrBadKey) {
		t.Errorf("bob's key deleted by an admin: %v, want ErrBadKey", err)
	}
}

// TestAPIKeySecretKept: the secret is shown once: neither the listing,
// nor its JSON, nor the database file holds it.
func TestAPIKeySecretKept(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s := newService(t, dir, testOptions)
	alice := addUser(t, s, "alice", User)
	bob := addUser(t, s, "bob", User)
	key, k := addAPIKey(t, s, alice, "phone")
	_, k2 := addAPIKey(t, s, alice, "laptop")
	_, kb := addAPIKey(t, s, bob, "script")
	secret := apiKeyForm.FindStringSubmatch(key)[2]

	keys, err := s.APIKeys(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	byID := func(a, b APIKey) int { return strings.Compare(a.ID, b.ID) }
	slices.SortFunc(keys, byID)
	want := []APIKey{k, k2}
	slices.SortFunc(want, byID)
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("APIKeys(alice) (-made +listed):\n%s", diff)
	}
	all, err := s.APIKeys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(all, byID)
	want = append(want, kb)
	slices.SortFunc(want, byID)
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("APIKeys(\"\") (-made +listed):\n%s", diff)
	}
	if none, err := s.APIKeys(ctx, "0123456789abcdef"); err != nil || none == nil || len(none) != 0 {
		t.Errorf("APIKeys of no one: %#v, %v; want an empty list (JSON [])", none, err)
	}

	b, err := json.Marshal(keys)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(secret)) {
		t.Errorf("the listing's JSON holds the secret: %s", b)
	}
	var fields []map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		got := slices.Sorted(maps.Keys(f))
		if !slices.Equal(got, []string{"created", "id", "name", "user"}) {
			t.Errorf("an API key's JSON has the fields %q, want created, id, name, user", got)
		}
	}

	s.store.Close() // everything on disk, in state.db or its WAL
	for _, name := range []string{"state.db", "state.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the secret", name)
		}
	}
}

// TestAPIKeyUsed: the use of a key is noted to the hour, with at most one
// write an hour (not one per request).
func TestAPIKeyUsed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		s := newService(t, dir, testOptions)
		alice := addUser(t, s, "alice", User)
		key, _ := addAPIKey(t, s, alice, "phone")
		hour := time.Now().UTC().Truncate(time.Hour) // synctest's clock starts on the hour
		used := func() time.Time {
			t.Helper()
			keys, err := s.APIKeys(ctx, alice.ID)
			if err != nil || len(keys) != 1 {
				t.Fatalf("APIKeys: %v, %v", keys, err)
			}
			return keys[0].Used
		}
		// The store has one connection: total_changes counts its writes.
		writes := func() int {
			t.Helper()
			var n int
			if err := s.store.db.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		use := func() {
			t.Helper()
			if _, err := s.APIKey(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		if u := used(); !u.IsZero() {
			t.Errorf("a new key was used at %v", u)
		}
		time.Sleep(10 * time.Minute)
		use()
		if u := used(); !u.Equal(hour) {
			t.Errorf("used at %v, want %v", u, hour)
		}
		w := writes()
		for range 3 {
			time.Sleep(15 * time.Minute)
			use()
		}
		if n := writes() - w; n != 0 {
			t.Errorf("%d writes for uses within the hour, want none", n)
		}
		time.Sleep(10 * time.Minute) // 01:05
		use()
		if u := used(); !u.Equal(hour.Add(time.Hour)) {
			t.Errorf("used in the next hour at %v, want %v", u, hour.Add(time.Hour))
		}
		if n := writes() - w; n != 1 {
			t.Errorf("%d writes for a use in the next hour, want 1", n)
		}
	})
}

// TestAPIKeysDeletedWithUser: a user's keys go with the user, in the
// store itself (the foreign key's cascade), not only because the Service
// no longer knows the user.
func TestAPIKeysDeletedWithUser(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	alice, err := st.AddUser(ctx, "alice", User, nil, "$h")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := st.AddUser(ctx, "bob", User, nil, "$h")
	if err != nil {
		t.Fatal(err)
	}
	aliceKey, _, err := st.AddAPIKey(ctx, alice.ID, "phone")
	if err != nil {
		t.Fatal(err)
	}
	bobKey, bk, err := st.AddAPIKey(ctx, bob.ID, "phone")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteUser(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CheckAPIKey(ctx, aliceKey); !errors.Is(err, ErrBadKey) {
		t.Errorf("key of a deleted user: %v, want ErrBadKey", err)
	}
	var n int
	if err := st.db.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE user_id = ?`, alice.ID).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d keys of the deleted user left in api_keys (%v)", n, err)
	}
	if keys, err := st.APIKeys(ctx, ""); err != nil || len(keys) != 1 || keys[0].ID != bk.ID {
		t.Errorf("keys left: %+v, %v; want bob's alone", keys, err)
	}
	if id, err := st.CheckAPIKey(ctx, bobKey); err != nil || id != bob.ID {
		t.Errorf("bob's key: %q, %v", id, err)
	}
}

// schema1 is storeSchema[0] as released: a store made then must open.
const schema1 = `
CREATE TABLE users (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	name_key   TEXT NOT NULL UNIQUE, -- folded: "Alice" and "alice" are one user
	role       TEXT NOT NULL,
	libraries  TEXT NOT NULL DEFAULT '[]',
	hash       TEXT NOT NULL,
	generation INTEGER NOT NULL DEFAULT 1,
	created    INTEGER NOT NULL
) WITHOUT ROWID;
`

// TestStoreMigration: a state.db of schema 1 (users only) is migrated to
// the current schema and keeps its users, who then get keys and
// revocations like any.
func TestStoreMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		schema1,
		`INSERT INTO users (id, name, name_key, role, libraries, hash, generation, created)
			VALUES ('00000000000000a1', 'Alice', 'alice', 'admin', '["Music"]', '$hash-a', 3, 1700000000)`,
		`PRAGMA user_version = 1`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	st := openStore(t, path)
	var v int
	if err := st.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil || v != len(storeSchema) {
		t.Errorf("schema after migration: %d, %v; want %d", v, err, len(storeSchema))
	}
	want := Account{ID: "00000000000000a1", Name: "Alice", Role: Admin, Libraries: []string{"Music"}, Generation: 3,
		Created: time.Unix(1700000000, 0).UTC()}
	got, hash, err := st.ByName(ctx, "alice")
	if err != nil || hash != "$hash-a" {
		t.Fatalf("the user of schema 1: %v, hash %q", err, hash)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the user of schema 1 (-stored +migrated):\n%s", diff)
	}
	key, _, err := st.AddAPIKey(ctx, want.ID, "phone")
	if err != nil {
		t.Fatalf("API key for a migrated user: %v", err)
	}
	if err := st.Revoke(ctx, "session1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Opening again migrates nothing and loses nothing.
	st.Close()
	st = openStore(t, path)
	if id, err := st.CheckAPIKey(ctx, key); err != nil || id != want.ID {
		t.Errorf("API key after reopening: %q, %v", id, err)
	}
	if r, err := st.Revoked(ctx); err != nil || len(r) != 1 {
		t.Errorf("revocations after reopening: %v, %v", r, err)
	}
	// The cascade works in a migrated file too.
	if err := st.DeleteUser(ctx, want.ID); err != nil {
		t.Fatal(err)
	}
	if keys, err := st.APIKeys(ctx, ""); err != nil || len(keys) != 0 {
		t.Errorf("keys after deleting their user: %+v, %v", keys, err)
	}
}
