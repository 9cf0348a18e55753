package auth

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testOptions are a server's lifetimes with cheap password hashing.
var testOptions = ServiceOptions{SessionTTL: 24 * time.Hour, LinkTTL: 6 * time.Hour, KeyOverlap: time.Hour, Passwords: cheap}

// newService returns a Service over the state.db and key file in dir,
// creating them if need be.
func newService(t *testing.T, dir string, opts ServiceOptions) *Service {
	t.Helper()
	s, err := NewService(t.Context(), openStore(t, filepath.Join(dir, "state.db")), openKeys(t, filepath.Join(dir, "keys")), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func addUser(t testing.TB, s *Service, name string, role Role) Account {
	t.Helper()
	a, err := s.AddUser(t.Context(), name, name+" password", role, []string{"Music"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// sessionOf returns a session of a as Login makes it, without a login:
// logins are limited per account, and most tests are about what follows.
func sessionOf(t testing.TB, s *Service, a Account) (string, Claims) {
	t.Helper()
	tok, err := s.session(a, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, c, _, err := s.Session(tok, time.Now())
	if err != nil {
		t.Fatalf("a new session of %s: %v", a.Name, err)
	}
	return tok, c
}

// checkSession fails t unless tok is a session of want (or, with want
// zero, unless it is refused with ErrBadToken).
func checkSession(t testing.TB, s *Service, what, tok string, want Account) {
	t.Helper()
	a, _, _, err := s.Session(tok, time.Now())
	switch {
	case want.ID == "" && err != ErrBadToken:
		t.Errorf("%s: %v (account %q), want ErrBadToken", what, err, a.Name)
	case want.ID != "" && err != nil:
		t.Errorf("%s: %v", what, err)
	case want.ID != "" && a.ID != want.ID:
		t.Errorf("%s: the session of %q, want %q", what, a.Name, want.Name)
	}
}

func TestSetup(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s := newService(t, dir, testOptions)
	tok := s.SetupToken()
	if len(tok) != 32 {
		t.Fatalf("setup token %q with no users, want 32 hex digits", tok)
	}
	for _, bad := range []string{"", "wrong", strings.ToUpper(tok), tok[:31], tok + "0"} {
		if _, err := s.Setup(ctx, bad, "admin", "admin password"); err != ErrBadSetup {
			t.Errorf("Setup with token %q: %v, want ErrBadSetup", bad, err)
		}
	}
	// A refused password leaves the token usable: the admin tries again.
	if _, err := s.Setup(ctx, tok, "admin", "short"); err != ErrShortPass {
		t.Errorf("Setup with a short password: %v, want ErrShortPass", err)
	}
	if s.SetupToken() != tok || s.Count() != 0 {
		t.Fatalf("after a refused setup: token %q, %d users", s.SetupToken(), s.Count())
	}
	admin, err := s.Setup(ctx, tok, "Admin", "admin password")
	if err != nil {
		t.Fatal(err)
	}
	if admin.Role != Admin || admin.Name != "Admin" || s.Count() != 1 {
		t.Errorf("Setup made %+v, %d users; want one admin", admin, s.Count())
	}
	if got := s.SetupToken(); got != "" {
		t.Errorf("setup token after the setup: %q, want none", got)
	}
	// Used once: neither the old token nor "" (the token there is now)
	// sets up again.
	for _, again := range []string{tok, ""} {
		if _, err := s.Setup(ctx, again, "mallory", "mallory password"); err != ErrBadSetup {
			t.Errorf("second Setup with %q: %v, want ErrBadSetup", again, err)
		}
	}
	if _, _, err := s.Login(ctx, "admin", "admin password", "10.0.0.1"); err != nil {
		t.Errorf("login of the admin made by Setup: %v", err)
	}
	// A restart has no setup token either.
	if again := newService(t, dir, testOptions); again.SetupToken() != "" || again.Count() != 1 {
		t.Errorf("restarted service: setup token %q, %d users", again.SetupToken(), again.Count())
	}
}

// TestSetupOnce: of requests carrying the setup token at once (a leaked
// setup link racing the admin), exactly one creates an admin; the others
// are told the link is used.
func TestSetupOnce(t *testing.T) {
	t.Parallel()
	s := newService(t, t.TempDir(), testOptions)
	tok := s.SetupToken()
	const n = 8
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = s.Setup(t.Context(), tok, fmt.Sprint("admin", i), "admin password")
		})
	}
	close(start)
	wg.Wait()
	made := 0
	for i, err := range errs {
		switch err {
		case nil:
			made++
		case ErrBadSetup:
		default:
			t.Errorf("Setup %d: %v", i, err)
		}
	}
	if made != 1 || s.Count() != 1 {
		t.Errorf("%d concurrent Setups with the token made %d admins (%d users), want 1", n, made, s.Count())
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newService(t, t.TempDir(), testOptions)
	alice := addUser(t, s, "alice", User)
	before := time.Now()
	tok, a, err := s.Login(ctx, "ALICE", "alice password", "10.0.0.1") // names are folded
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(alice, a); diff != "" {
		t.Errorf("Login's account (-added +got):\n%s", diff)
	}
	got, c, renew, err := s.Session(tok, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(alice, got); diff != "" {
		t.Errorf("Session's account (-added +got):\n%s", diff)
	}
	if renew != "" {
		t.Error("a new session asks to be renewed")
	}
	if c.Kind != Session || c.Subject != alice.ID || c.ID == "" ||
		c.Expires.Before(before.Add(testOptions.SessionTTL).Truncate(time.Second)) {
		t.Errorf("session claims %+v", c)
	}

	// Unknown user or wrong password: one error, the same value.
	for _, tc := range []struct{ name, password string }{
		{"alice", "alice passwort"},
		{"alice", ""},
		{"bob", "alice password"},
		{" alice", "alice password"}, // not a valid name at all
	} {
		tok, _, err := s.Login(ctx, tc.name, tc.password, "10.0.0.2")
		if err != ErrBadLogin || tok != "" {
			t.Errorf("Login(%q, %q): %q, %v; want ErrBadLogin", tc.name, tc.password, tok, err)
		}
	}
}

func TestLoginLimit(t *testing.T) {
	t.Parallel()
	t.Run("per client", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		synctest.Test(t, func(t *testing.T) {
			ctx := t.Context()
			s := newService(t, dir, testOptions)
			addUser(t, s, "alice", User)
			// One client trying many names.
			for i := range loginBurst {
				if _, _, err := s.Login(ctx, fmt.Sprint("user", i), "guess guess", "10.0.0.1"); err != ErrBadLogin {
					t.Fatalf("attempt %d of the burst: %v, want ErrBadLogin", i+1, err)
				}
			}
			_, _, err := s.Login(ctx, "alice", "alice password", "10.0.0.1")
			var limited *LimitedError
			if !errors.As(err, &limited) || limited.RetryAfter != loginEvery {
				t.Fatalf("attempt past the burst, right password: %v; want *LimitedError retry after %v", err, loginEvery)
			}
			if _, _, err := s.Login(ctx, "alice", "alice password", "10.0.0.2"); err != nil {
				t.Errorf("another client: %v", err)
			}
			time.Sleep(limited.RetryAfter)
			if _, _, err := s.Login(ctx, "alice", "alice password", "10.0.0.1"); err != nil {
				t.Errorf("after Retry-After: %v", err)
			}
		})
	})
	t.Run("per account", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		synctest.Test(t, func(t *testing.T) {
			ctx := t.Context()
			s := newService(t, dir, testOptions)
			addUser(t, s, "alice", User)
			addUser(t, s, "bob", User)
			// Many clients (a botnet) trying one account.
			for i := range accountBurst {
				if _, _, err := s.Login(ctx, "alice", "guess guess", fmt.Sprintf("10.1.0.%d", i)); err != ErrBadLogin {
					t.Fatalf("attempt %d of the burst: %v, want ErrBadLogin", i+1, err)
				}
			}
			_, _, err := s.Login(ctx, "Alice", "alice password", "10.2.0.1")
			var limited *LimitedError
			if !errors.As(err, &limited) || limited.RetryAfter != accountEvery {
				t.Fatalf("a new client past the account's burst: %v; want *LimitedError retry after %v", err, accountEvery)
			}
			if !strings.Contains(err.Error(), "12s") {
				t.Errorf("message %q does not say when to try again", err)
			}
			if _, _, err := s.Login(ctx, "bob", "bob password", "10.2.0.1"); err != nil {
				t.Errorf("another account from that client: %v", err)
			}
			time.Sleep(limited.RetryAfter)
			if _, _, err := s.Login(ctx, "alice", "alice password", "10.2.0.2"); err != nil {
				t.Errorf("after Retry-After: %v", err)
			}
		})
	})
}

func TestSessionRefused(t *testing.T) {
	t.Parallel()
	s := newService(t, t.TempDir(), testOptions)
	alice := addUser(t, s, "alice", User)
	tok, c := sessionOf(t, s, alice)
	parts := strings.Split(tok, ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	link, err := s.Link(alice, "/stream/Music/a.mp3", LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The same claims signed by a key this server does not have.
	other := newService(t, t.TempDir(), testOptions)
	forged, err := other.keys.Ring().Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	noUser := c
	noUser.Subject = "0123456789abcdef"
	ghost, err := s.keys.Ring().Sign(noUser)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, tok string
		now       time.Time
	}{
		{"tampered claims", strings.Join([]string{parts[0], parts[1], flip(parts[2], 10), parts[3]}, "."), time.Now()},
		{"tampered MAC", strings.Join([]string{parts[0], parts[1], parts[2], flip(parts[3], 3)}, "."), time.Now()},
		{"empty", "", time.Now()},
		{"expired", tok, c.Expires},
		{"a link", link, time.Now()},
		{"another server's key", forged, time.Now()},
		{"no such user", ghost, time.Now()},
	} {
		if a, _, renew, err := s.Session(tc.tok, tc.now); err != ErrBadToken || a.ID != "" || renew != "" {
			t.Errorf("%s: %v, account %q, renew %q; want ErrBadToken", tc.name, err, a.Name, renew)
		}
	}
	// And the other way round: a session is not a link.
	if _, _, err := s.CheckLink(tok, alice.ID, "", time.Now()); err != ErrBadToken {
		t.Errorf("a session used as a link: %v, want ErrBadToken", err)
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s := newService(t, dir, testOptions)
	alice := addUser(t, s, "alice", User)
	out, c := sessionOf(t, s, alice)
	stays, _ := sessionOf(t, s, alice)
	if err := s.Logout(ctx, c); err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, "logged out session", out, Account{})
	checkSession(t, s, "the user's other session", stays, alice)
	// The revocation outlives a restart.
	s.store.Close()
	again := newService(t, dir, testOptions)
	checkSession(t, again, "logged out session after a restart", out, Account{})
	checkSession(t, again, "the other session after a restart", stays, alice)
}

// TestPendingBounded: the revocations kept for a later push (a logout
// while the shared accounts store is out of reach) are at most
// maxPending, the oldest dropped; one ID is kept once; the expired are
// forgotten; a reload keeps them in the revoked sessions.
func TestPendingBounded(t *testing.T) {
	t.Parallel()
	s := newService(t, t.TempDir(), testOptions)
	until := time.Now().Add(time.Hour)
	s.mu.Lock()
	for i := range maxPending {
		s.addPending(fmt.Sprint(i), until)
	}
	s.addPending("0", until) // again: now the newest
	s.addPending("new", until)
	s.addPending("expired", time.Now().Add(-time.Second))
	s.mu.Unlock()
	var ids []string
	for _, p := range s.pendingRevocations() {
		ids = append(ids, p.id)
	}
	// "1" and "2" dropped for "new" and "expired", which has expired.
	if len(ids) != maxPending-1 || ids[0] != "3" || ids[len(ids)-2] != "0" || ids[len(ids)-1] != "new" {
		t.Errorf("%d pending, from %v to %v; want %d, from 3 to [0 new]",
			len(ids), ids[:min(2, len(ids))], ids[max(0, len(ids)-2):], maxPending-1)
	}
	if err := s.reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.mu.RLock()
	_, first := s.revoked["3"]
	_, last := s.revoked["new"]
	_, dropped := s.revoked["1"]
	_, expired := s.revoked["expired"]
	s.mu.RUnlock()
	if !first || !last || dropped || expired {
		t.Errorf("revoked after a reload: 3 %v, new %v, 1 %v, expired %v; want true, true, false, false", first, last, dropped, expired)
	}
}

func TestEndSessions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newService(t, t.TempDir(), testOptions)
	alice := addUser(t, s, "alice", User)
	bob := addUser(t, s, "bob", User)
	bobs, _ := sessionOf(t, s, bob)

	old, _ := sessionOf(t, s, alice)
	if err := s.SetPassword(ctx, alice.ID, "new alice password"); err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, "session from before SetPassword", old, Account{})
	if _, _, err := s.Login(ctx, "alice", "alice password", "10.0.0.1"); err != ErrBadLogin {
		t.Errorf("login with the old password: %v, want ErrBadLogin", err)
	}
	fresh, _, err := s.Login(ctx, "alice", "new alice password", "10.0.0.1")
	if err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	checkSession(t, s, "session from after SetPassword", fresh, alice)
	if err := s.SetPassword(ctx, alice.ID, "short"); err != ErrShortPass {
		t.Errorf("SetPassword to a short password: %v", err)
	}
	checkSession(t, s, "session after a refused SetPassword", fresh, alice)

	if err := s.RevokeSessions(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, "session from before RevokeSessions", fresh, Account{})
	if tok, _, err := s.Login(ctx, "alice", "new alice password", "10.0.0.1"); err != nil {
		t.Errorf("login after RevokeSessions: %v", err)
	} else {
		checkSession(t, s, "session from after RevokeSessions", tok, alice)
	}
	if err := s.RevokeSessions(ctx, "0123456789abcdef"); !errors.Is(err, ErrNoUser) {
		t.Errorf("RevokeSessions of no one: %v, want ErrNoUser", err)
	}
	checkSession(t, s, "another user's session", bobs, bob)
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newService(t, t.TempDir(), testOptions)
	alice := addUser(t, s, "alice", User)
	bob := addUser(t, s, "bob", User)
	type creds struct{ session, link, key string }
	made := map[string]creds{}
	for _, a := range []Account{alice, bob} {
		tok, _ := sessionOf(t, s, a)
		link, err := s.Link(a, "/stream/Music/a.mp3", LinkOptions{})
		if err != nil {
			t.Fatal(err)
		}
		key, _, err := s.AddAPIKey(ctx, a.ID, "phone")
		if err != nil {
			t.Fatal(err)
		}
		made[a.ID] = creds{tok, link, key}
	}
	if err := s.DeleteUser(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Account(alice.ID); ok || s.Count() != 1 {
		t.Errorf("after DeleteUser: alice known %v, %d users", ok, s.Count())
	}
	for _, a := range []Account{alice, bob} {
		deleted := a.ID == alice.ID
		c := made[a.ID]
		want := a
		if deleted {
			want = Account{}
		}
		checkSession(t, s, a.Name+"'s session", c.session, want)
		_, _, err := s.CheckLink(c.link, "/stream/Music/a.mp3", "10.0.0.1", time.Now())
		if deleted && err != ErrBadToken || !deleted && err != nil {
			t.Errorf("%s's link: %v (deleted %v)", a.Name, err, deleted)
		}
		_, err = s.APIKey(ctx, c.key)
		if deleted && !errors.Is(err, ErrBadKey) || !deleted && err != nil {
			t.Errorf("%s's API key: %v (deleted %v)", a.Name, err, deleted)
		}
	}
	if err := s.DeleteUser(ctx, alice.ID); !errors.Is(err, ErrNoUser) {
		t.Errorf("deleting alice twice: %v, want ErrNoUser", err)
	}
}

// TestRenewal: a session used past half its life comes with a new token
// of the same session (its ID); the old one keeps working until it
// expires, since requests already on their way carry it; a logout with
// either ends both.
func TestRenewal(t *testing.T) {
	t.Parallel()
	s := newService(t, t.TempDir(), testOptions)
	alice := addUser(t, s, "alice", User)
	tok, c := sessionOf(t, s, alice)
	half := c.Expires.Add(-testOptions.SessionTTL / 2)
	if _, _, renew, err := s.Session(tok, half.Add(-time.Second)); err != nil || renew != "" {
		t.Errorf("before half its life: %v, renew %q; want no renewal", err, renew)
	}
	now := half.Add(time.Second)
	_, _, renew, err := s.Session(tok, now)
	if err != nil || renew == "" {
		t.Fatalf("past half its life: %v, renew %q; want a new token", err, renew)
	}
	a, rc, again, err := s.Session(renew, now)
	if err != nil || a.ID != alice.ID || again != "" {
		t.Fatalf("the renewed token: %v, account %q, renew %q", err, a.Name, again)
	}
	if want := now.Add(testOptions.SessionTTL).Truncate(time.Second); !rc.Expires.Equal(want) || rc.ID != c.ID {
		t.Errorf("renewed claims %+v, want the session's ID %s expiring at %v", rc, c.ID, want)
	}
	if _, _, _, err := s.Session(tok, now); err != nil {
		t.Errorf("the old token after renewal: %v", err)
	}
	// The renewed token outlives the old one.
	if _, _, _, err := s.Session(tok, c.Expires); err != ErrBadToken {
		t.Errorf("the old token at its expiry: %v, want ErrBadToken", err)
	}
	if _, _, _, err := s.Session(renew, c.Expires); err != nil {
		t.Errorf("the renewed token when the old expires: %v", err)
	}
	// Signing out with the old token ends the renewed one too, even past
	// the old one's expiry.
	if err := s.Logout(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	for _, tk := range []string{tok, renew} {
		if _, _, _, err := s.Session(tk, now); err != ErrBadToken {
			t.Errorf("a token of the session after logout: %v, want ErrBadToken", err)
		}
	}
	if _, _, _, err := s.Session(renew, c.Expires.Add(time.Minute)); err != ErrBadToken {
		t.Errorf("the renewed token after logout, past the old one's expiry: %v, want ErrBadToken", err)
	}
}

func TestLinks(t *testing.T) {
	t.Parallel()
	const scope = "/stream/Music/a.mp3"
	s := newService(t, t.TempDir(), testOptions)
	alice := addUser(t, s, "alice", Guest)
	tok, err := s.Link(alice, scope, LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, c, err := s.CheckLink(tok, scope, "192.0.2.9", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != alice.ID || c.Kind != Link || c.Subject != scope || c.User != alice.ID || c.Client != "" || c.Rate != 0 {
		t.Errorf("CheckLink: account %q, claims %+v", a.Name, c)
	}
	for _, other := range []string{
		"/stream/Music/b.mp3",
		"/stream/music/a.mp3",
		"/stream/Music/A.mp3",
		"/stream/Music/a%2Emp3",
		"/stream/Music%2Fa.mp3",
		"/stream/Music/a.mp3/",
		"/stream/Music/",
		"/stream/Music",
		"/stream/Music/a.mp3?x",
		"",
	} {
		if _, _, err := s.CheckLink(tok, other, "192.0.2.9", time.Now()); err != ErrBadToken {
			t.Errorf("link to %q used for %q: %v, want ErrBadToken", scope, other, err)
		}
	}
	if _, _, err := s.CheckLink(tok, scope, "192.0.2.9", time.Now().Add(testOptions.LinkTTL-time.Minute)); err != nil {
		t.Errorf("link shortly before it expires: %v", err)
	}
	if _, _, err := s.CheckLink(tok, scope, "192.0.2.9", time.Now().Add(testOptions.LinkTTL+time.Second)); err != ErrBadToken {
		t.Errorf("expired link: %v, want ErrBadToken", err)
	}

	bound, err := s.Link(alice, scope, LinkOptions{Client: "10.0.0.1", Rate: 4_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CheckLink(bound, scope, "10.0.0.2", time.Now()); err != ErrBadToken {
		t.Errorf("link for 10.0.0.1 used from 10.0.0.2: %v, want ErrBadToken", err)
	}
	if _, c, err := s.CheckLink(bound, scope, "10.0.0.1", time.Now()); err != nil || c.Rate != 4_000_000 || c.Client != "10.0.0.1" {
		t.Errorf("link for 10.0.0.1 used from 10.0.0.1: %v, claims %+v; want rate 4000000", err, c)
	}
}

// TestRotateKey: links and sessions signed before a rotation work for the
// overlap, then stop; what is signed after uses the new key.
func TestRotateKey(t *testing.T) {
	t.Parallel()
	const scope = "/stream/Music/a.mp3"
	for _, overlap := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprint("overlap ", overlap), func(t *testing.T) {
			t.Parallel()
			opts := testOptions
			opts.KeyOverlap = overlap
			s := newService(t, t.TempDir(), opts)
			alice := addUser(t, s, "alice", User)
			link, err := s.Link(alice, scope, LinkOptions{})
			if err != nil {
				t.Fatal(err)
			}
			session, _ := sessionOf(t, s, alice)
			if err := s.RotateKey(); err != nil {
				t.Fatal(err)
			}
			fresh, err := s.Link(alice, scope, LinkOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if keyID(fresh) == keyID(link) {
				t.Fatal("a link made after RotateKey has the old key")
			}
			now := time.Now()
			_, _, err = s.CheckLink(link, scope, "", now)
			if overlap == 0 && err != ErrBadToken || overlap > 0 && err != nil {
				t.Errorf("old link right after the rotation: %v", err)
			}
			_, _, _, err = s.Session(session, now)
			if overlap == 0 && err != ErrBadToken || overlap > 0 && err != nil {
				t.Errorf("old session right after the rotation: %v", err)
			}
			// The link has hours to live, but the overlap has passed.
			if _, _, err := s.CheckLink(link, scope, "", now.Add(overlap+time.Second)); err != ErrBadToken {
				t.Errorf("old link after the overlap: %v, want ErrBadToken", err)
			}
			if _, _, err := s.CheckLink(fresh, scope, "", now.Add(overlap+time.Second)); err != nil {
				t.Errorf("new link: %v", err)
			}
		})
	}
}

// TestConcurrentChanges: changes and logouts made at once through one
// Service (two admins at work, users signing out) all show in what it
// holds in memory, which is what sessions are checked against: none is
// undone by a reload that read the store before it. (The race is narrow:
// this catches it now and then, mostly under -race.)
func TestConcurrentChanges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := newService(t, t.TempDir(), testOptions)
	const n = 6
	users := make([]Account, n)
	sessions := make([]string, n) // of other users, ended by Logout alone
	claims := make([]Claims, n)
	for i := range users {
		users[i] = addUser(t, s, fmt.Sprint("user", i), User)
		sessions[i], claims[i] = sessionOf(t, s, addUser(t, s, fmt.Sprint("other", i), User))
	}
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			if err := s.Logout(ctx, claims[i]); err != nil {
				t.Error(err)
			}
			if err := s.RevokeSessions(ctx, u.ID); err != nil {
				t.Error(err)
			}
			if err := s.SetAccess(ctx, u.ID, Guest, []string{fmt.Sprint("lib", i)}); err != nil {
				t.Error(err)
			}
			if _, err := s.AddUser(ctx, fmt.Sprint("new", i), "new password", User, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	stored, err := s.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Count() != len(stored) {
		t.Errorf("%d accounts in memory, %d stored", s.Count(), len(stored))
	}
	for i, tok := range sessions {
		checkSession(t, s, fmt.Sprint("session logged out during the changes ", i), tok, Account{})
	}
	for _, want := range stored {
		got, ok := s.Account(want.ID)
		if diff := cmp.Diff(want, got); !ok || diff != "" || got.Generation != want.Generation {
			t.Errorf("%s in memory (-stored +held; generation %d, stored %d):\n%s", want.Name, got.Generation, want.Generation, diff)
		}
	}
}

// TestNodeTokens: a node token works on every service that shares the
// keys, for a minute, and is never a session or a link (nor they one).
func TestNodeTokens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := newService(t, dir, ServiceOptions{})
	b, err := NewService(t.Context(), openStore(t, filepath.Join(t.TempDir(), "state.db")), openKeys(t, filepath.Join(dir, "keys")), ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := newService(t, t.TempDir(), ServiceOptions{})
	now := time.Now()
	tok, err := a.NodeToken(now)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CheckNode(tok, now); err != nil {
		t.Errorf("a node token on a service with the same keys: %v", err)
	}
	if err := other.CheckNode(tok, now); err == nil {
		t.Error("a node token works with other keys")
	}
	if err := b.CheckNode(tok, now.Add(nodeTTL+2*time.Second)); err == nil {
		t.Error("a node token works after its minute")
	}
	if _, _, _, err := b.Session(tok, now); err == nil {
		t.Error("a node token is a session")
	}
	acct := addUser(t, a, "ann", User)
	link, err := a.Link(acct, nodeSubject, LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CheckNode(link, now); err == nil {
		t.Error("a link is a node token")
	}
}

// FuzzCheckHeader: the snapshot check never panics, and accepts only what
// starts with SQLite's header and a MuStServ schema version.
func FuzzCheckHeader(f *testing.F) {
	good := make([]byte, 4096)
	copy(good, "SQLite format 3\x00")
	good[16], good[17] = 0x10, 0x00 // 4096-byte pages
	good[31] = 1                    // one page
	good[63] = 1                    // user_version 1
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("SQLite format 3\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkHeader(data)
		if err == nil && (len(data) < 100 || string(data[:16]) != "SQLite format 3\x00" || data[60]|data[61]|data[62]|data[63] == 0) {
			t.Errorf("accepted %d bytes that are no MuStServ store", len(data))
		}
	})
}

// TestLinksEnd: a link stops working with a new password (or "sign out
// everywhere"), as sessions do; a link that stands in for a session stops
// with that session's logout, and one that does not outlives it.
func TestLinksEnd(t *testing.T) {
	t.Parallel()
	const scope = "/stream/Music/a.mp3"
	s := newService(t, t.TempDir(), testOptions)
	alice := addUser(t, s, "alice", User)
	ctx := t.Context()
	tok, acct, err := s.Login(ctx, "alice", "alice password", "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	_, sess, _, err := s.Session(tok, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	standIn, err := s.Link(acct, scope, LinkOptions{Session: sess.ID})
	if err != nil {
		t.Fatal(err)
	}
	playlist, err := s.Link(acct, scope, LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	works := func(tok string) bool {
		_, _, err := s.CheckLink(tok, scope, "192.0.2.9", time.Now())
		return err == nil
	}
	if !works(standIn) || !works(playlist) {
		t.Fatal("fresh links do not work")
	}
	if err := s.Logout(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if works(standIn) {
		t.Error("a link standing in for a session works after its logout")
	}
	if !works(playlist) {
		t.Error("a playlist's link stopped with the browser's logout")
	}
	if err := s.SetPassword(ctx, alice.ID, "alice's new password"); err != nil {
		t.Fatal(err)
	}
	if works(playlist) {
		t.Error("a link works after the user's password changed")
	}
	fresh, err := s.Link(s.mustAccount(t, alice.ID), scope, LinkOptions{})
	if err != nil || !works(fresh) {
		t.Errorf("a link made after the new password: %v", err)
	}
}

func (s *Service) mustAccount(t *testing.T, id string) Account {
	t.Helper()
	a, ok := s.Account(id)
	if !ok {
		t.Fatalf("no account %s", id)
	}
	return a
}

// TestLinksWithoutGeneration: a link made before links carried the
// password generation works until it expires, whatever the password.
func TestLinksWithoutGeneration(t *testing.T) {
	t.Parallel()
	const scope = "/stream/Music/a.mp3"
	s := newService(t, t.TempDir(), testOptions)
	alice := addUser(t, s, "alice", User)
	if err := s.SetPassword(t.Context(), alice.ID, "alice's new password"); err != nil {
		t.Fatal(err)
	}
	old, err := s.keys.Ring().Sign(Claims{Kind: Link, Subject: scope, User: alice.ID, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CheckLink(old, scope, "192.0.2.9", time.Now()); err != nil {
		t.Errorf("a link without a generation: %v", err)
	}
}
