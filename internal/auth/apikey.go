package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// APIKey is an app password: a secret a program (a Subsonic client, a
// script, Prometheus) presents instead of a user's login password, made and
// revoked one by one.
type APIKey struct {
	ID      string    `json:"id"`
	UserID  string    `json:"user"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// Used is when the key was last accepted (to the hour); zero if never.
	Used time.Time `json:"used,omitzero"`
}

// apiKeyPrefix starts every API key, so that one is recognised in a
// config file or a leak scanner's rules.
const apiKeyPrefix = "mk_"

// ErrBadKey is any API key that is not valid: malformed, unknown, or
// with the wrong secret. Which of these is not told.
var ErrBadKey = errors.New("auth: API key not valid")

// newAPIKey returns a key "mk_<id>_<secret>" with its ID and the hash to
// keep. The secret has 256 bits: a plain SHA-256 of it cannot be
// reversed, unlike a password's, so it needs no slow hash.
func newAPIKey() (key, id string, hash []byte) {
	idb := make([]byte, 8)
	rand.Read(idb)
	secret := make([]byte, 32)
	rand.Read(secret)
	id = hex.EncodeToString(idb)
	s := base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(s))
	return apiKeyPrefix + id + "_" + s, id, sum[:]
}

// splitAPIKey returns the ID and secret of key, or false.
func splitAPIKey(key string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(key, apiKeyPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 16 || len(secret) != 43 {
		return "", "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", "", false
	}
	return id, secret, true
}

// AddAPIKey makes a key for user id named name; the key is shown once
// and never stored.
func (s *Store) AddAPIKey(ctx context.Context, userID, name string) (key string, k APIKey, err error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 {
		return "", APIKey{}, errors.New("auth: an API key's name is 1 to 64 characters")
	}
	key, id, hash := newAPIKey()
	k = APIKey{ID: id, UserID: userID, Name: name, Created: time.Now().UTC().Truncate(time.Second)}
	_, err = s.db.ExecContext(ctx, `INSERT INTO api_keys (id, user_id, name, hash, created) VALUES (?, ?, ?, ?, ?)`,
		k.ID, k.UserID, k.Name, hash, k.Created.Unix())
	if err != nil {
		if strings.Contains(err.Error(), "FOREIGN KEY") {
			return "", APIKey{}, ErrNoUser
		}
		return "", APIKey{}, fmt.Errorf("auth: add API key: %w", err)
	}
	return key, k, nil
}

// CheckAPIKey returns the ID of the user whose key this is. It notes the
// use at most once an hour (a write per request would be a write per
// stream).
func (s *Store) CheckAPIKey(ctx context.Context, key string) (string, error) {
	id, secret, ok := splitAPIKey(key)
	if !ok {
		return "", ErrBadKey
	}
	var user string
	var hash []byte
	var used int64
	err := s.db.QueryRowContext(ctx, `SELECT user_id, hash, used FROM api_keys WHERE id = ?`, id).Scan(&user, &hash, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrBadKey
	}
	if err != nil {
		return "", fmt.Errorf("auth: API key: %w", err)
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], hash) != 1 {
		return "", ErrBadKey
	}
	if now := time.Now().Truncate(time.Hour).Unix(); now != used {
		s.db.ExecContext(ctx, `UPDATE api_keys SET used = ? WHERE id = ?`, now, id) // best effort
	}
	return user, nil
}

// APIKeys lists a user's keys ("" lists everyone's), newest first.
func (s *Store) APIKeys(ctx context.Context, userID string) ([]APIKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, user_id, name, created, used FROM api_keys
		WHERE ?1 = '' OR user_id = ?1 ORDER BY created DESC, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("auth: API keys: %w", err)
	}
	defer rows.Close()
	keys := []APIKey{}
	for rows.Next() {
		var k APIKey
		var created, used int64
		if err := rows.Scan(&k.ID, &k.UserID, &k.Name, &created, &used); err != nil {
			return nil, fmt.Errorf("auth: API keys: %w", err)
		}
		k.Created = time.Unix(created, 0).UTC()
		if used != 0 {
			k.Used = time.Unix(used, 0).UTC()
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// DeleteAPIKey revokes key id of user userID ("" for any user: an admin).
func (s *Store) DeleteAPIKey(ctx context.Context, userID, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM api_keys WHERE id = ? AND (?2 = '' OR user_id = ?2)`, id, userID)
	if err != nil {
		return fmt.Errorf("auth: delete API key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("auth: API key %s: %w", id, ErrNoUser)
	}
	return nil
}

// Revoke records that the token id is not valid before until (Unix
// time), and forgets revocations that have expired.
func (s *Store) Revoke(ctx context.Context, id string, until time.Time) error {
	if _, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO revoked (id, until) VALUES (?, ?)`, id, until.Unix()); err != nil {
		return fmt.Errorf("auth: revoke: %w", err)
	}
	s.db.ExecContext(ctx, `DELETE FROM revoked WHERE until < ?`, time.Now().Unix()) // best effort
	return nil
}

// Revoked returns the revoked token IDs that have not expired.
func (s *Store) Revoked(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, until FROM revoked WHERE until >= ?`, time.Now().Unix())
	if err != nil {
		return nil, fmt.Errorf("auth: revoked: %w", err)
	}
	defer rows.Close()
	m := map[string]time.Time{}
	for rows.Next() {
		var id string
		var until int64
		if err := rows.Scan(&id, &until); err != nil {
			return nil, fmt.Errorf("auth: revoked: %w", err)
		}
		m[id] = time.Unix(until, 0)
	}
	return m, rows.Err()
}
