package auth

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite"
)

// Store keeps the server's accounts in their own SQLite file (state.db in
// the data folder). Unlike the library index, which is a cache the next
// scan rebuilds, what is here exists nowhere else: it is never dropped,
// and a change of schema is a migration.
type Store struct {
	db *sql.DB
}

// Role is what a user may do.
type Role string

const (
	Admin Role = "admin" // everything, administration included
	User  Role = "user"  // browse and play the libraries given, also with API keys (apps)
	Guest Role = "guest" // browse and play the libraries given, in the browser only
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == Admin || r == User || r == Guest }

// Account is a user as stored, without the password hash.
type Account struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Libraries are the libraries the user may see; admins see all.
	Libraries []string `json:"libraries"`
	// Generation changes when the password does: sessions carry the
	// generation they were made in, so a new password ends them all.
	Generation int       `json:"-"`
	Created    time.Time `json:"created"`
}

// Errors of the Store.
var (
	ErrNoUser     = fmt.Errorf("auth: no such user: %w", fs.ErrNotExist)
	ErrUserExists = errors.New("auth: a user of that name exists")
	ErrBadName    = errors.New("auth: a user name is 1 to 64 printable characters, without spaces at its ends")
	ErrBadRole    = errors.New("auth: the role is admin, user or guest")
)

// errNewerSchema is a store, or a replica's snapshot of one, written by a
// newer MuStServ: it is refused, not changed.
var errNewerSchema = errors.New("the file is of a newer MuStServ")

// storeSchema are the migrations, in order: storeSchema[i] takes the
// database from user_version i to i+1.
var storeSchema = []string{`
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
`, `
-- Sessions ended before their expiry (logout): kept until they expire.
CREATE TABLE revoked (
	id    TEXT PRIMARY KEY,
	until INTEGER NOT NULL -- Unix seconds
) WITHOUT ROWID;

-- API keys (app passwords): only a hash of the secret part is kept.
CREATE TABLE api_keys (
	id      TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name    TEXT NOT NULL,
	hash    BLOB NOT NULL, -- SHA-256 of the secret
	created INTEGER NOT NULL,
	used    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX api_keys_user ON api_keys (user_id);
`}

// OpenStore opens (creating or migrating) the store at path.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	return OpenStoreDriver(ctx, "sqlite", path)
}

// OpenStoreDriver is OpenStore through the database/sql driver registered
// as driver, modernc.org/sqlite's or a wrapper of it (tests see the SQL).
func OpenStoreDriver(ctx context.Context, driver, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db, err := sql.Open(driver, "file:"+(&url.URL{Path: path}).EscapedPath()+
		"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// Accounts change rarely and are read once per login: one connection.
	db.SetMaxOpenConns(1)
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// The file holds password hashes: readable by the server alone.
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v > len(storeSchema) {
		return fmt.Errorf("%w (schema %d, this one knows %d)", errNewerSchema, v, len(storeSchema))
	}
	for ; v < len(storeSchema); v++ {
		if _, err := tx.ExecContext(ctx, storeSchema[v]); err != nil {
			return fmt.Errorf("migrate to schema %d: %w", v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v)); err != nil {
		return err
	}
	return tx.Commit()
}

// dataVersion changes when another connection (another process) commits
// a change to the file. The store has one connection, so it is always
// asked of the same one, as SQLite requires.
func (s *Store) dataVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.db.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("auth: data version: %w", err)
	}
	return v, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// nameKey is the form names are compared in.
func nameKey(name string) string { return strings.ToLower(name) }

// checkName accepts a user name.
func checkName(name string) error {
	if name == "" || len(name) > 64 || strings.TrimSpace(name) != name {
		return ErrBadName
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return ErrBadName
		}
	}
	return nil
}

// AddUser stores a new user with an already hashed password (Passwords).
func (s *Store) AddUser(ctx context.Context, name string, role Role, libraries []string, hash string) (Account, error) {
	if err := checkName(name); err != nil {
		return Account{}, err
	}
	if !role.Valid() {
		return Account{}, ErrBadRole
	}
	a := Account{ID: hex.EncodeToString(NewSecret()[:8]), Name: name, Role: role,
		Libraries: sortedCopy(libraries), Generation: 1, Created: time.Now().UTC().Truncate(time.Second)}
	libs, _ := json.Marshal(a.Libraries)
	_, err := s.db.ExecContext(ctx, `INSERT INTO users (id, name, name_key, role, libraries, hash, generation, created)
		VALUES (?, ?, ?, ?, ?, ?, 1, ?)`, a.ID, name, nameKey(name), string(role), string(libs), hash, a.Created.Unix())
	if isUnique(err) {
		return Account{}, ErrUserExists
	}
	if err != nil {
		return Account{}, fmt.Errorf("auth: add user: %w", err)
	}
	return a, nil
}

// ByName returns a user and the password hash, for a login.
func (s *Store) ByName(ctx context.Context, name string) (Account, string, error) {
	return s.one(ctx, `name_key = ?`, nameKey(name))
}

// ByID returns a user and the password hash.
func (s *Store) ByID(ctx context.Context, id string) (Account, string, error) {
	return s.one(ctx, `id = ?`, id)
}

func (s *Store) one(ctx context.Context, where string, arg any) (Account, string, error) {
	rows, err := s.db.QueryContext(ctx, userSelect+` WHERE `+where, arg)
	if err != nil {
		return Account{}, "", fmt.Errorf("auth: user: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Account{}, "", fmt.Errorf("auth: user: %w", err)
		}
		return Account{}, "", ErrNoUser
	}
	return scanUser(rows)
}

const userSelect = `SELECT id, name, role, libraries, generation, created, hash FROM users`

func scanUser(rows *sql.Rows) (Account, string, error) {
	var a Account
	var role, libs, hash string
	var created int64
	if err := rows.Scan(&a.ID, &a.Name, &role, &libs, &a.Generation, &created, &hash); err != nil {
		return Account{}, "", fmt.Errorf("auth: user: %w", err)
	}
	a.Role = Role(role)
	a.Created = time.Unix(created, 0).UTC()
	if err := json.Unmarshal([]byte(libs), &a.Libraries); err != nil {
		return Account{}, "", fmt.Errorf("auth: user %s: libraries: %w", a.ID, err)
	}
	return a, hash, nil
}

// Users lists every user, by name.
func (s *Store) Users(ctx context.Context) ([]Account, error) {
	rows, err := s.db.QueryContext(ctx, userSelect+` ORDER BY name_key, id`)
	if err != nil {
		return nil, fmt.Errorf("auth: users: %w", err)
	}
	defer rows.Close()
	var all []Account
	for rows.Next() {
		a, _, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		all = append(all, a)
	}
	return all, rows.Err()
}

// Count returns how many users there are (none: the server is in its
// first-run setup).
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("auth: users: %w", err)
	}
	return n, nil
}

// SetPassword replaces a user's password hash and ends all its sessions
// (the generation changes).
func (s *Store) SetPassword(ctx context.Context, id, hash string) error {
	return s.update(ctx, `UPDATE users SET hash = ?, generation = generation + 1 WHERE id = ?`, hash, id)
}

// SetAccess changes a user's role and libraries.
func (s *Store) SetAccess(ctx context.Context, id string, role Role, libraries []string) error {
	if !role.Valid() {
		return ErrBadRole
	}
	libs, _ := json.Marshal(sortedCopy(libraries))
	return s.update(ctx, `UPDATE users SET role = ?, libraries = ? WHERE id = ?`, string(role), string(libs), id)
}

// DeleteUser removes a user.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.update(ctx, `DELETE FROM users WHERE id = ?`, id)
}

func (s *Store) update(ctx context.Context, q string, args ...any) error {
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("auth: update user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNoUser
	}
	return nil
}

func sortedCopy(s []string) []string {
	c := append([]string{}, s...)
	slices.Sort(c)
	return slices.Compact(c)
}

// isUnique reports a UNIQUE constraint failure.
func isUnique(err error) bool {
	var se *sqlite.Error
	// SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
	return errors.As(err, &se) && (se.Code() == 2067 || se.Code() == 1555)
}
