package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Service is accounts at work: logins, sessions, signed links, API keys
// and the first-run setup, over a Store, a KeyFile and the login limits.
// It keeps the accounts and the revoked sessions in memory (a request
// checks its session without a database read) and reloads them on every
// change made through it. With a Replica it also keeps the accounts in
// step with other machines' nodes (replica.go). It is safe for concurrent
// use.
type Service struct {
	store *Store
	keys  *KeyFile
	pw    *Passwords
	opts  ServiceOptions

	perClient, perAccount *Limiter

	mu       sync.RWMutex
	accounts map[string]Account // by ID
	revoked  map[string]time.Time
	setup    string // the setup token while there are no users
	// pending are revocations (logouts) the Replica's object has not
	// taken (it was out of reach): kept in revoked by every reload until
	// a push carries them (replica.go), oldest first.
	pending []revocation

	setupMu  sync.Mutex // one Setup at a time: the token makes one admin
	reloadMu sync.Mutex // one reload at a time: an older read never replaces a newer

	// Changes made by another process (`mustserv user` while the server
	// runs) are noticed through the store's data version, looked at no
	// more than once per reloadEvery.
	check       throttle
	dataVersion atomic.Int64

	// replica, if not nil, is the object shared with other machines'
	// nodes: every account change goes through write.
	replica *replica
}

// ServiceOptions are the lifetimes of what a Service signs, and the
// replication of its accounts.
type ServiceOptions struct {
	SessionTTL time.Duration
	LinkTTL    time.Duration
	KeyOverlap time.Duration
	// Passwords sets the hashing costs (tests lower them).
	Passwords PasswordOptions

	// Replica, if set, is the object nodes on several machines share
	// the accounts through (replica.go); nil keeps them in the store
	// alone. ReplicaConflict is then the error its Put's refusals wrap
	// (s3.ErrPrecondition), and ReplicaPoll how often it is looked at
	// for other nodes' changes (0 means every second), until Close,
	// which also closes Replica if it is an io.Closer.
	Replica         Remote
	ReplicaConflict error
	ReplicaPoll     time.Duration
	// ReplicaStrict is for a command run once (`mustserv user`) rather
	// than a server: NewService fails (ErrUnsynced) when it cannot bring
	// the store up to Replica, instead of going on with a copy that may
	// be stale, and the object is created (seeded with the store's
	// accounts) only by a change, never by reading.
	ReplicaStrict bool
	// Logger receives what the replication does on its own (nil: none).
	Logger *slog.Logger
}

// Errors of a Service. ErrBadLogin is the same for an unknown user and a
// wrong password.
var (
	ErrBadLogin  = errors.New("wrong user name or password")
	ErrBadToken  = errors.New("auth: not a valid session or link")
	ErrBadSetup  = errors.New("auth: the setup link is not valid (already used, or the server restarted)")
	ErrShortPass = errors.New("auth: a password has at least 8 characters")
)

// LimitedError is a login refused because of too many attempts.
type LimitedError struct{ RetryAfter time.Duration }

func (e *LimitedError) Error() string {
	return fmt.Sprintf("too many login attempts: try again in %s", e.RetryAfter.Round(time.Second))
}

// Login limits: a client may try loginBurst times at once and then once
// per loginEvery; an account (whoever tries it) accountBurst times, then
// once per accountEvery.
const (
	loginBurst   = 10
	loginEvery   = 6 * time.Second
	accountBurst = 5
	accountEvery = 12 * time.Second
	limiterKeys  = 10_000
)

// NewService builds the Service of store and keys. On an error the
// caller still owns (and closes) store and opts.Replica.
func NewService(ctx context.Context, store *Store, keys *KeyFile, opts ServiceOptions) (*Service, error) {
	s := &Service{
		store: store, keys: keys, pw: NewPasswords(opts.Passwords), opts: opts,
		perClient:  NewLimiter(loginBurst, loginEvery, limiterKeys),
		perAccount: NewLimiter(accountBurst, accountEvery, limiterKeys),
	}
	if err := s.reload(ctx); err != nil {
		return nil, err
	}
	if opts.Replica != nil {
		if err := s.startReplica(ctx, opts); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// reload reads the accounts and revocations again; a setup token is made
// while there are no users.
func (s *Service) reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	v, err := s.store.dataVersion(ctx)
	if err != nil {
		return err
	}
	users, err := s.store.Users(ctx)
	if err != nil {
		return err
	}
	revoked, err := s.store.Revoked(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]Account, len(users))
	for _, u := range users {
		m[u.ID] = u
	}
	s.dataVersion.Store(v)
	s.check.done(time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, p := range s.pending {
		if !p.until.Before(now) {
			revoked[p.id] = p.until
		}
	}
	s.accounts, s.revoked = m, revoked
	switch {
	case len(m) > 0:
		s.setup = ""
	case s.setup == "":
		s.setup = randomID(16)
	}
	return nil
}

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// refresh reloads the accounts if another process changed the store,
// looking no more often than every: reloadEvery on every request, less
// on a miss (a user just added by `mustserv user` signing in).
func (s *Service) refresh(every time.Duration) {
	if !s.check.due(time.Now(), every) {
		return
	}
	ctx := context.Background()
	if v, err := s.store.dataVersion(ctx); err == nil && v != s.dataVersion.Load() {
		s.reload(ctx) // on error the accounts in memory stay
	}
}

// missEvery bounds the store reads that unknown accounts cause.
const missEvery = 50 * time.Millisecond

// lookup returns the account with this ID, reading the store again if
// it is not known or not of this generation (gen < 0: any).
func (s *Service) lookup(id string, gen int) (Account, bool) {
	for try := 0; ; try++ {
		s.refresh(reloadEvery)
		s.mu.RLock()
		a, ok := s.accounts[id]
		s.mu.RUnlock()
		if (ok && (gen < 0 || a.Generation == gen)) || try == 1 {
			return a, ok
		}
		s.refresh(missEvery)
	}
}

// SetupToken is the one-time token of the first-run setup link, or ""
// once a user exists.
func (s *Service) SetupToken() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.setup
}

// Setup creates the first admin if token is the setup token and there
// are still no users.
func (s *Service) Setup(ctx context.Context, token, name, password string) (Account, error) {
	s.setupMu.Lock()
	defer s.setupMu.Unlock()
	s.refresh(reloadEvery)
	s.mu.RLock()
	want := s.setup
	s.mu.RUnlock()
	if want == "" || subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
		return Account{}, ErrBadSetup
	}
	if n, err := s.store.Count(ctx); err != nil || n > 0 {
		return Account{}, ErrBadSetup
	}
	return s.addUser(ctx, name, password, Admin, nil, true)
}

// Count is how many users there are.
func (s *Service) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.accounts)
}

// Account returns the account with this ID.
func (s *Service) Account(id string) (Account, bool) { return s.lookup(id, -1) }

// Users lists the accounts by name.
func (s *Service) Users(ctx context.Context) ([]Account, error) { return s.store.Users(ctx) }

// AddUser creates a user.
func (s *Service) AddUser(ctx context.Context, name, password string, role Role, libraries []string) (Account, error) {
	return s.addUser(ctx, name, password, role, libraries, false)
}

// addUser is AddUser; first (Setup) makes the user only if there are
// none, checked in the write: with a Replica, another node's setup may
// have made the first admin since this node's copy was read.
func (s *Service) addUser(ctx context.Context, name, password string, role Role, libraries []string, first bool) (Account, error) {
	if len(password) < 8 {
		return Account{}, ErrShortPass
	}
	hash, err := s.pw.Hash(ctx, password)
	if err != nil {
		return Account{}, err
	}
	var a Account
	err = s.write(ctx, func(ctx context.Context) (err error) {
		if first {
			if n, err := s.store.Count(ctx); err != nil || n > 0 {
				return ErrBadSetup
			}
		}
		a, err = s.store.AddUser(ctx, name, role, libraries, hash)
		return err
	})
	if err != nil {
		return Account{}, err
	}
	return a, s.reload(ctx)
}

// SetPassword changes a user's password, which ends the user's sessions.
func (s *Service) SetPassword(ctx context.Context, id, password string) error {
	if len(password) < 8 {
		return ErrShortPass
	}
	hash, err := s.pw.Hash(ctx, password)
	if err != nil {
		return err
	}
	if err := s.write(ctx, func(ctx context.Context) error { return s.store.SetPassword(ctx, id, hash) }); err != nil {
		return err
	}
	return s.reload(ctx)
}

// SetAccess changes a user's role and libraries.
func (s *Service) SetAccess(ctx context.Context, id string, role Role, libraries []string) error {
	if err := s.write(ctx, func(ctx context.Context) error { return s.store.SetAccess(ctx, id, role, libraries) }); err != nil {
		return err
	}
	return s.reload(ctx)
}

// DeleteUser deletes a user, with the user's API keys; the user's
// sessions and links stop working at once. With a Replica the last user
// is not deleted (ErrLastUser): the other nodes refuse an object without
// users, which is how an empty or truncated upload shows.
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	err := s.write(ctx, func(ctx context.Context) error {
		if s.replica != nil {
			if n, err := s.store.Count(ctx); err != nil {
				return err
			} else if n == 1 {
				if _, _, err := s.store.ByID(ctx, id); err != nil {
					return err
				}
				return ErrLastUser
			}
		}
		return s.store.DeleteUser(ctx, id)
	})
	if err != nil {
		return err
	}
	return s.reload(ctx)
}

// RevokeSessions ends every session of a user (an admin's "sign out
// everywhere"): the generation moves on as with a new password.
func (s *Service) RevokeSessions(ctx context.Context, id string) error {
	err := s.write(ctx, func(ctx context.Context) error {
		return s.store.update(ctx, `UPDATE users SET generation = generation + 1 WHERE id = ?`, id)
	})
	if err != nil {
		return err
	}
	return s.reload(ctx)
}

// Login checks a user's password and returns a session token. client is
// the client's address, for the per-client limit. Unknown users and wrong
// passwords get the same error after the same work.
func (s *Service) Login(ctx context.Context, name, password, client string) (string, Account, error) {
	if ok, wait := s.perClient.Allow(client); !ok {
		return "", Account{}, &LimitedError{wait}
	}
	if ok, wait := s.perAccount.Allow(nameKey(name)); !ok {
		return "", Account{}, &LimitedError{wait}
	}
	a, hash, err := s.store.ByName(ctx, name)
	if errors.Is(err, ErrNoUser) || errors.Is(err, ErrBadName) {
		if err := s.pw.CheckUnknown(ctx, password); err != nil {
			return "", Account{}, err
		}
		return "", Account{}, ErrBadLogin
	}
	if err != nil {
		return "", Account{}, err
	}
	ok, rehash, err := s.pw.Check(ctx, hash, password)
	if err != nil {
		return "", Account{}, err
	}
	if !ok {
		return "", Account{}, ErrBadLogin
	}
	if rehash {
		if h, err := s.pw.Hash(ctx, password); err == nil {
			s.write(ctx, func(ctx context.Context) error { // best effort; same generation: sessions stay
				return s.store.update(ctx, `UPDATE users SET hash = ? WHERE id = ?`, h, a.ID)
			})
		}
	}
	tok, err := s.session(a, "", time.Now())
	return tok, a, err
}

// session signs a new session of a.
// A renewed session keeps its ID (id != ""), so that logging out ends
// the session, not one of its tokens.
func (s *Service) session(a Account, id string, now time.Time) (string, error) {
	if id == "" {
		id = randomID(8)
	}
	return s.keys.Ring().Sign(Claims{Kind: Session, Subject: a.ID, Generation: a.Generation,
		ID: id, Expires: now.Add(s.opts.SessionTTL)})
}

// Session checks a session token and returns its account. renew is a new
// token to send when the session is past half its life, else "".
func (s *Service) Session(tok string, now time.Time) (a Account, c Claims, renew string, err error) {
	c, err = s.keys.Ring().Verify(tok, Session, now)
	if err != nil {
		return Account{}, Claims{}, "", ErrBadToken
	}
	a, ok := s.lookup(c.Subject, c.Generation)
	s.mu.RLock()
	_, revoked := s.revoked[c.ID]
	s.mu.RUnlock()
	if !ok || revoked || a.Generation != c.Generation {
		return Account{}, Claims{}, "", ErrBadToken
	}
	if c.Expires.Sub(now) < s.opts.SessionTTL/2 {
		// The old token is not revoked: requests already on their way
		// (a page's streams and covers) still carry it. Both have the
		// session's ID, which a logout revokes.
		if renew, err = s.session(a, c.ID, now); err != nil {
			renew = ""
		}
	}
	return a, c, renew, nil
}

// Logout ends the session c: every token of it, the renewed ones too
// (they expire at most SessionTTL from now, until when the ID stays
// revoked).
func (s *Service) Logout(ctx context.Context, c Claims) error {
	c.Expires = time.Now().Add(s.opts.SessionTTL).Truncate(time.Second).Add(time.Second)
	return s.revoke(ctx, c)
}

// revoke ends the session c.ID until c.Expires. With a Replica out of
// reach the session still ends on this node at once, as it did before
// replication, and reaches the other nodes with the next push that does
// (replica.go): the error says the other nodes do not know yet.
func (s *Service) revoke(ctx context.Context, c Claims) error {
	err := s.write(ctx, func(ctx context.Context) error { return s.store.Revoke(ctx, c.ID, c.Expires) })
	if err != nil && s.replica == nil {
		return err
	}
	s.reloadMu.Lock() // a reload that read the store before the revocation must not drop it
	defer s.reloadMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.addPending(c.ID, c.Expires)
		return fmt.Errorf("auth: the session is ended on this node only, the others follow once the shared accounts store takes it: %w", err)
	}
	s.revoked[c.ID] = c.Expires
	return nil
}

// LinkOptions narrow a signed link.
type LinkOptions struct {
	// Client, if set, is the only client address the link works from.
	Client string
	// Rate, if not 0, caps the link's streams (bit/s).
	Rate int64
	// Expires, if not zero and sooner than LinkTTL, is when the link
	// stops working (links made from a link keep its expiry).
	Expires time.Time
	// Session, if set, is the ID of the session (or of the link) the
	// link stands in for: revoking that (a logout) revokes the link too.
	Session string
}

// Link signs a link to scope (a URL path) for user a.
func (s *Service) Link(a Account, scope string, o LinkOptions) (string, error) {
	exp := time.Now().Add(s.opts.LinkTTL)
	if !o.Expires.IsZero() && o.Expires.Before(exp) {
		exp = o.Expires
	}
	// The user's password generation: a new password, or "sign out
	// everywhere", ends the links made before, as it ends sessions.
	return s.keys.Ring().Sign(Claims{Kind: Link, Subject: scope, User: a.ID, Client: o.Client, Rate: o.Rate,
		Expires: exp, ID: o.Session, Generation: a.Generation})
}

// CheckLink checks a link token for scope, used from client, and returns
// the account it was made for: it works while the user exists with the
// password generation it was made in, and while the session it stands in
// for (if any) is not revoked. Every failure is ErrBadToken.
func (s *Service) CheckLink(tok, scope, client string, now time.Time) (Account, Claims, error) {
	c, err := s.keys.Ring().Verify(tok, Link, now)
	if err != nil || c.Subject != scope || (c.Client != "" && c.Client != client) {
		return Account{}, Claims{}, ErrBadToken
	}
	// Generations start at 1: a link without one was made before links
	// carried it, and works until it expires (link_ttl).
	gen := c.Generation
	if gen == 0 {
		gen = -1
	}
	a, ok := s.lookup(c.User, gen)
	if !ok || (c.Generation != 0 && a.Generation != c.Generation) {
		return Account{}, Claims{}, ErrBadToken
	}
	if c.ID != "" {
		s.mu.RLock()
		_, revoked := s.revoked[c.ID]
		s.mu.RUnlock()
		if revoked {
			return Account{}, Claims{}, ErrBadToken
		}
	}
	return a, c, nil
}

// nodeTTL is how long a node token works: it is made afresh for each
// poll of a peer.
const nodeTTL = time.Minute

// nodeSubject is what a node token is for: reading a peer's /metrics.
const nodeSubject = "metrics"

// NodeToken returns a token with which this node reads the /metrics of
// another node that shares the signing key (CheckNode).
func (s *Service) NodeToken(now time.Time) (string, error) {
	return s.keys.Ring().Sign(Claims{Kind: Node, Subject: nodeSubject, Expires: now.Add(nodeTTL)})
}

// CheckNode reports whether tok is a node token signed by this node's
// keys and still valid. Every failure is ErrBadToken.
func (s *Service) CheckNode(tok string, now time.Time) error {
	c, err := s.keys.Ring().Verify(tok, Node, now)
	if err != nil || c.Subject != nodeSubject {
		return ErrBadToken
	}
	return nil
}

// APIKey returns the account of an API key.
func (s *Service) APIKey(ctx context.Context, key string) (Account, error) {
	id, err := s.store.CheckAPIKey(ctx, key)
	if err != nil {
		return Account{}, err
	}
	a, ok := s.Account(id)
	if !ok {
		return Account{}, ErrBadKey
	}
	return a, nil
}

// AddAPIKey makes an API key for user userID (Store.AddAPIKey): the key
// is returned once and never stored.
func (s *Service) AddAPIKey(ctx context.Context, userID, name string) (key string, k APIKey, err error) {
	err = s.write(ctx, func(ctx context.Context) (err error) {
		key, k, err = s.store.AddAPIKey(ctx, userID, name)
		return err
	})
	if err != nil {
		return "", APIKey{}, err
	}
	return key, k, nil
}

// APIKeys lists a user's API keys ("" for everyone's).
func (s *Service) APIKeys(ctx context.Context, userID string) ([]APIKey, error) {
	return s.store.APIKeys(ctx, userID)
}

// DeleteAPIKey revokes one of a user's API keys ("" for any user's).
func (s *Service) DeleteAPIKey(ctx context.Context, userID, id string) error {
	return s.write(ctx, func(ctx context.Context) error { return s.store.DeleteAPIKey(ctx, userID, id) })
}

// RotateKey makes a new signing key: what the old one signed works for
// the configured overlap, then stops.
func (s *Service) RotateKey() error {
	return s.keys.Rotate(time.Now(), s.opts.KeyOverlap)
}

// ValidSetupToken reports whether tok is the pending setup token.
func (s *Service) ValidSetupToken(tok string) bool {
	want := s.SetupToken()
	return want != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(want)) == 1
}

// Close ends the replica's poll, if any, and closes the store.
func (s *Service) Close() error {
	s.stopReplica()
	return s.store.Close()
}
