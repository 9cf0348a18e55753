// The replication tests are an external package: the test over versitygw
// needs the s3 package, which package auth itself must not import.
package auth_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"mustserv/internal/auth"
	"mustserv/internal/storage/s3"
	"mustserv/internal/testenv/origins"
)

// bucket is an in-memory S3 object with S3's semantics for conditional
// writes: its ETag changes with every write, a Put with If-Match of
// another ETag, or with If-None-Match: * over an object, is refused.
type bucket struct {
	mu   sync.Mutex
	data []byte
	etag string // "": no object
	n    int    // versions written
}

// errPrecondition is the fake's 412.
var errPrecondition = errors.New("fake S3: 412 Precondition Failed")

// set replaces the object, as another writer would.
func (b *bucket) set(data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	b.data, b.etag = slices.Clone(data), fmt.Sprintf(`"v%d"`, b.n)
}

// remove deletes the object, as an operator would.
func (b *bucket) remove() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.data, b.etag = nil, ""
}

// version returns the object's ETag.
func (b *bucket) version() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.etag
}

// remote is one node's link to a bucket: it counts the node's requests
// and can fail or delay its next Put, or all its requests.
type remote struct {
	b                            *bucket
	heads, gets, puts, conflicts atomic.Int32
	mu                           sync.Mutex
	beforePut                    func() // run before every Put, outside the bucket's lock
	failPut                      error  // returned by the next Put
	blockHead                    bool   // Heads wait for their context to end
	blocked                      chan struct{}
	once                         sync.Once
	down                         error         // returned by every request (S3 out of reach)
	slow                         time.Duration // every request's answer takes this long
}

// set changes the remote's behaviour under its lock.
func (r *remote) set(f func(r *remote)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

// answer waits for a request's answer as the remote is set to: an error
// when S3 is down, or when ctx ends before a slow answer.
func (r *remote) answer(ctx context.Context) error {
	r.mu.Lock()
	down, slow := r.down, r.slow
	r.mu.Unlock()
	if down != nil {
		return down
	}
	if slow > 0 {
		select {
		case <-time.After(slow):
		case <-ctx.Done():
			return fmt.Errorf("fake S3: %w", ctx.Err())
		}
	}
	return nil
}

func (r *remote) Head(ctx context.Context) (string, error) {
	r.heads.Add(1)
	r.mu.Lock()
	block := r.blockHead
	r.mu.Unlock()
	if block {
		r.once.Do(func() { close(r.blocked) })
		<-ctx.Done()
		return "", ctx.Err()
	}
	if err := r.answer(ctx); err != nil {
		return "", err
	}
	if etag := r.b.version(); etag != "" {
		return etag, nil
	}
	return "", fmt.Errorf("fake S3: 404: %w", fs.ErrNotExist)
}

func (r *remote) Get(ctx context.Context, limit int64) ([]byte, string, error) {
	r.gets.Add(1)
	if err := r.answer(ctx); err != nil {
		return nil, "", err
	}
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	switch {
	case r.b.etag == "":
		return nil, "", fmt.Errorf("fake S3: 404: %w", fs.ErrNotExist)
	case int64(len(r.b.data)) > limit:
		return nil, "", errors.New("fake S3: too large")
	}
	return slices.Clone(r.b.data), r.b.etag, nil
}

func (r *remote) Put(ctx context.Context, data []byte, ifMatch string) (string, error) {
	r.mu.Lock()
	hook, fail := r.beforePut, r.failPut
	r.failPut = nil
	r.mu.Unlock()
	if hook != nil {
		hook()
	}
	if fail != nil {
		return "", fail
	}
	if err := r.answer(ctx); err != nil {
		return "", err
	}
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	if ifMatch == "*" && r.b.etag != "" || ifMatch != "*" && ifMatch != "" && ifMatch != r.b.etag {
		r.conflicts.Add(1)
		return "", errPrecondition
	}
	r.puts.Add(1)
	r.b.n++
	r.b.data, r.b.etag = slices.Clone(data), fmt.Sprintf(`"v%d"`, r.b.n)
	return r.b.etag, nil
}

// logBuf is a log that tests read while nodes write it.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cluster is nodes that share a signing key (one key file) and a bucket.
type cluster struct {
	t    *testing.T
	keys string
	b    *bucket
	poll time.Duration // the nodes' ReplicaPoll, if not 0
}

func newCluster(t *testing.T) *cluster {
	return &cluster{t: t, keys: filepath.Join(t.TempDir(), "signing.keys"), b: &bucket{}}
}

// node is one Service of a cluster, with its own state.db.
type node struct {
	*auth.Service
	r   *remote
	log *logBuf
	dir string
}

// opts are a node's options, with cheap password hashing and a fast poll.
func opts(r auth.Remote, conflict error, log *logBuf) auth.ServiceOptions {
	return auth.ServiceOptions{SessionTTL: 24 * time.Hour, LinkTTL: time.Hour, KeyOverlap: time.Hour,
		Passwords: auth.PasswordOptions{MemoryKiB: 64, Time: 1, Threads: 1},
		Replica:   r, ReplicaConflict: conflict, ReplicaPoll: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(log, nil))}
}

// start starts a node on a state.db in dir ("" for a new one), closed
// when the test ends.
func (c *cluster) start(dir string, r *remote) *node {
	c.t.Helper()
	if dir == "" {
		dir = c.t.TempDir()
	}
	if r == nil {
		r = &remote{b: c.b}
	}
	n := &node{r: r, log: &logBuf{}, dir: dir}
	o := opts(r, errPrecondition, n.log)
	if c.poll != 0 {
		o.ReplicaPoll = c.poll
	}
	n.Service = openService(c.t, dir, c.keys, o)
	return n
}

// openService opens a Service on dir/state.db and keys, closed when the
// test ends.
func openService(t *testing.T, dir, keys string, o auth.ServiceOptions) *auth.Service {
	t.Helper()
	store, err := auth.OpenStore(t.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	kf, err := auth.OpenKeyFile(keys)
	if err != nil {
		t.Fatal(err)
	}
	s, err := auth.NewService(t.Context(), store, kf, o)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (n *node) add(t *testing.T, name string) auth.Account {
	t.Helper()
	a, err := n.AddUser(t.Context(), name, name+" password", auth.User, []string{"Music"})
	if err != nil {
		t.Fatalf("add %s: %v", name, err)
	}
	return a
}

// names are the node's users' names, sorted.
func (n *node) names(t *testing.T) []string {
	t.Helper()
	users, err := n.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	return names
}

// polls waits until the node has looked at the bucket k more times:
// what it does at each poll has been done at least once since.
func (n *node) polls(t *testing.T, k int32) {
	t.Helper()
	from := n.r.heads.Load()
	eventually(t, fmt.Sprintf("%d polls", k), func() bool { return n.r.heads.Load() >= from+k })
}

// eventually polls cond until it holds, failing t after 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		<-tick.C
	}
}

// TestReplicaAddUser: a user added on A logs in on B after B's next
// poll, and A's session of it works on B.
func TestReplicaAddUser(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("", nil), c.start("", nil)
	alice := a.add(t, "alice")
	eventually(t, "alice on B", func() bool { _, ok := b.Account(alice.ID); return ok })
	if _, _, err := b.Login(t.Context(), "alice", "alice password", "192.0.2.1"); err != nil {
		t.Fatalf("login on B: %v", err)
	}
	tok, _, err := a.Login(t.Context(), "alice", "alice password", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _, err := b.Session(tok, time.Now()); err != nil || got.ID != alice.ID {
		t.Errorf("A's session on B: %v, %v", got.Name, err)
	}
}

// TestReplicaLogout: a logout on B ends the session on A; a new
// password set on A ends it on B; a user deleted on B is gone on A.
func TestReplicaLogout(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("", nil), c.start("", nil)
	a.add(t, "admin") // the last user is not deleted (TestReplicaLastUser)
	bob := a.add(t, "bob")
	tok, _, err := a.Login(t.Context(), "bob", "bob password", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	var claims auth.Claims
	eventually(t, "A's session valid on B", func() bool {
		_, claims, _, err = b.Session(tok, time.Now())
		return err == nil
	})
	if err := b.Logout(t.Context(), claims); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the logout on B ends the session on A", func() bool {
		_, _, _, err := a.Session(tok, time.Now())
		return errors.Is(err, auth.ErrBadToken)
	})

	tok2, _, err := b.Login(t.Context(), "bob", "bob password", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetPassword(t.Context(), bob.ID, "a new password"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new password on A ends the sessions on B", func() bool {
		_, _, _, err := b.Session(tok2, time.Now())
		return errors.Is(err, auth.ErrBadToken)
	})
	if _, _, err := b.Login(t.Context(), "bob", "a new password", "192.0.2.1"); err != nil {
		t.Errorf("login on B with the new password: %v", err)
	}

	if err := b.DeleteUser(t.Context(), bob.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a user deleted on B is gone on A", func() bool { return slices.Equal(a.names(t), []string{"admin"}) })
}

// TestReplicaConflict: B writes between A's pull and A's push; A's push
// is refused (412), and A makes its change again on B's accounts: both
// changes survive, on both nodes.
func TestReplicaConflict(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("", nil), c.start("", nil)
	a.add(t, "first")
	var once sync.Once
	a.r.mu.Lock()
	a.r.beforePut = func() { once.Do(func() { b.add(t, "bob") }) }
	a.r.mu.Unlock()
	a.add(t, "alice")
	if n := a.r.conflicts.Load(); n != 1 {
		t.Errorf("A's pushes refused: %d, want 1", n)
	}
	want := []string{"alice", "bob", "first"}
	for _, n := range []*node{a, b} {
		eventually(t, "every user on every node", func() bool { return slices.Equal(n.names(t), want) })
	}
	// A's first try pushed nothing: alice exists once, under the ID the
	// second try gave her, which every node agrees on.
	au, _ := a.Users(t.Context())
	bu, _ := b.Users(t.Context())
	if !slices.EqualFunc(au, bu, func(x, y auth.Account) bool { return x.ID == y.ID }) {
		t.Errorf("the nodes disagree on IDs:\n%v\n%v", au, bu)
	}
}

// TestReplicaConcurrent: both nodes add users at once; every user is
// kept. Each node has 3 changes, so no change can meet more than 3
// refusals, fewer than the tries it is given.
func TestReplicaConcurrent(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("", nil), c.start("", nil)
	var wg sync.WaitGroup
	var want []string
	for k, n := range []*node{a, b} {
		for i := range 3 {
			name := fmt.Sprintf("%c%d", 'a'+k, i)
			want = append(want, name)
			wg.Go(func() {
				if _, err := n.AddUser(t.Context(), name, "a password", auth.User, nil); err != nil {
					t.Errorf("add %s: %v", name, err)
				}
			})
		}
	}
	wg.Wait()
	slices.Sort(want)
	for _, n := range []*node{a, b} {
		eventually(t, "every user on every node", func() bool { return slices.Equal(n.names(t), want) })
	}
	t.Logf("refused pushes: A %d, B %d", a.r.conflicts.Load(), b.r.conflicts.Load())
}

// TestReplicaBadObject: an object that is not a store is refused,
// logged once and not fetched again; the node keeps its accounts, and
// its changes fail rather than overwrite the object.
func TestReplicaBadObject(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("", nil)
	a.add(t, "first")
	c.b.set([]byte("not a database, but long enough to have a header of a hundred bytes or more, which it does not"))
	eventually(t, "the refusal logged", func() bool { return strings.Contains(a.log.String(), "not an accounts store") })
	gets := a.r.gets.Load()
	a.polls(t, 3)
	if n := strings.Count(a.log.String(), "not an accounts store"); n != 1 {
		t.Errorf("the refusal logged %d times, want once:\n%s", n, a.log)
	}
	if n := a.r.gets.Load(); n != gets {
		t.Errorf("the refused object fetched %d more times", n-gets)
	}
	if strings.Contains(a.log.String(), os.TempDir()) {
		t.Errorf("the log names a temporary file:\n%s", a.log)
	}
	if _, err := a.AddUser(t.Context(), "never", "a password", auth.User, nil); err == nil {
		t.Error("a change over an object that is not a store was accepted")
	}
	if names := a.names(t); !slices.Equal(names, []string{"first"}) {
		t.Errorf("users: %v, want [first]", names)
	}
}

// TestReplicaBusyGivesUp: the same with valid stores: ErrBusy, and the
// change is not left in the node's store.
func TestReplicaBusyGivesUp(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("", nil), c.start("", nil)
	a.add(t, "first")
	eventually(t, "first on B", func() bool { return b.Count() == 1 })
	// Another node's write before each of A's: B renames nothing, but
	// its ending of sessions changes the object every time.
	first, _ := b.Users(t.Context())
	a.r.mu.Lock()
	a.r.beforePut = func() {
		if err := b.RevokeSessions(context.Background(), first[0].ID); err != nil {
			t.Error(err)
		}
	}
	a.r.mu.Unlock()
	_, err := a.AddUser(t.Context(), "never", "a password", auth.User, nil)
	a.r.mu.Lock()
	a.r.beforePut = nil
	a.r.mu.Unlock()
	if !errors.Is(err, auth.ErrBusy) {
		t.Fatalf("a change that always conflicts: %v, want ErrBusy", err)
	}
	if n := a.r.conflicts.Load(); n != 5 {
		t.Errorf("%d tries refused, want 5", n)
	}
	if names := a.names(t); !slices.Equal(names, []string{"first"}) {
		t.Errorf("A's users after ErrBusy: %v, want [first]", names)
	}
}

// TestReplicaUnreachable: a change whose push fails (S3 out of reach)
// is an error, and is undone by the node's next poll.
func TestReplicaUnreachable(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("", nil)
	a.add(t, "first")
	down := errors.New("dial tcp 192.0.2.1:443: connection refused")
	a.r.mu.Lock()
	a.r.failPut = down
	a.r.mu.Unlock()
	_, err := a.AddUser(t.Context(), "lost", "a password", auth.User, nil)
	if !errors.Is(err, down) || errors.Is(err, auth.ErrBusy) {
		t.Fatalf("a change S3 did not take: %v, want the transport's error", err)
	}
	eventually(t, "the change undone", func() bool { return slices.Equal(a.names(t), []string{"first"}) })
	if _, err := a.AddUser(t.Context(), "lost", "a password", auth.User, nil); err != nil {
		t.Errorf("the same change once S3 is back: %v", err)
	}
}

// TestReplicaUsedNotPushed: the last use of an API key is written to the
// node's store alone: it causes no push, and a pull keeps it.
func TestReplicaUsedNotPushed(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("", nil), c.start("", nil)
	carol := a.add(t, "carol")
	key, _, err := a.AddAPIKey(t.Context(), carol.ID, "player")
	if err != nil {
		t.Fatal(err)
	}
	// B never uses the key: its copy's `used` stays 0.
	eventually(t, "the key on B", func() bool { keys, _ := b.APIKeys(t.Context(), carol.ID); return len(keys) == 1 })
	puts := a.r.puts.Load() + b.r.puts.Load()
	if _, err := a.APIKey(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	a.polls(t, 3)
	b.polls(t, 3)
	if now := a.r.puts.Load() + b.r.puts.Load(); now != puts {
		t.Errorf("using an API key pushed %d times", now-puts)
	}
	b.add(t, "dave") // A pulls B's snapshot, in which the key was never used
	eventually(t, "dave on A", func() bool { return a.Count() == 2 })
	keys, err := a.APIKeys(t.Context(), carol.ID)
	if err != nil || len(keys) != 1 || keys[0].Used.IsZero() {
		t.Errorf("A's key after a pull: %+v, %v; want its use kept", keys, err)
	}
}

// newerSnapshot returns a store of schema 99, with a user "mallory".
func newerSnapshot(t *testing.T) []byte {
	t.Helper()
	return storeFile(t, `PRAGMA user_version = 99`, "mallory")
}

// storeFile returns the bytes of a store with users names, after query
// (if not "") ran on it.
func storeFile(t *testing.T, query string, names ...string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := auth.OpenStore(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if _, err := s.AddUser(t.Context(), name, auth.Admin, nil, "x"); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	return sqliteFile(t, path, query)
}

// sqliteFile returns the bytes of the SQLite database at path (made if
// need be), as one file, after query (if not "") ran on it.
func sqliteFile(t *testing.T, path, query string) []byte {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`PRAGMA journal_mode = DELETE`)
	if err == nil && query != "" {
		_, err = db.Exec(query)
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestReplicaNewerSchema: a snapshot of a newer MuStServ is refused,
// logged once, not fetched again, and changes fail rather than overwrite
// it.
func TestReplicaNewerSchema(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("", nil)
	a.add(t, "alice")
	c.b.set(newerSnapshot(t))
	version := c.b.version()
	eventually(t, "the refusal logged", func() bool { return strings.Contains(a.log.String(), "newer MuStServ") })
	a.polls(t, 3)
	if n := strings.Count(a.log.String(), "newer MuStServ"); n != 1 {
		t.Errorf("the refusal logged %d times, want once:\n%s", n, a.log)
	}
	if n := a.r.gets.Load(); n != 1 {
		t.Errorf("the refused snapshot fetched %d times, want once", n)
	}
	if names := a.names(t); !slices.Equal(names, []string{"alice"}) {
		t.Errorf("users after the refusal: %v, want [alice]", names)
	}
	if _, err := a.AddUser(t.Context(), "bob", "a password", auth.User, nil); err == nil || !strings.Contains(err.Error(), "newer MuStServ") {
		t.Errorf("a change over a newer store: %v, want a refusal", err)
	}
	if c.b.version() != version {
		t.Error("the newer store was overwritten")
	}
}

// TestReplicaSeed: the first node with accounts creates the object; a
// node with other accounts adopts the object's (the bucket wins, and it
// says so); a node without accounts creates nothing.
func TestReplicaSeed(t *testing.T) {
	t.Parallel()
	// Stores made before replication was configured.
	dirA, dirB := t.TempDir(), t.TempDir()
	keys := filepath.Join(t.TempDir(), "keys")
	for dir, name := range map[string]string{dirA: "alice", dirB: "zed"} {
		s := openService(t, dir, keys, opts(nil, nil, &logBuf{}))
		if _, err := s.AddUser(t.Context(), name, "a password", auth.Admin, nil); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}

	c := newCluster(t)
	c.keys = keys
	empty := c.start("", nil)
	empty.polls(t, 3)
	if c.b.version() != "" {
		t.Fatal("a node without accounts created the object")
	}
	a := c.start(dirA, nil)
	if c.b.version() == "" {
		t.Fatal("a node with accounts did not create the object")
	}
	b := c.start(dirB, nil)
	if names := b.names(t); !slices.Equal(names, []string{"alice"}) {
		t.Errorf("B's users: %v, want the bucket's [alice]", names)
	}
	if !strings.Contains(b.log.String(), "replaced") {
		t.Errorf("B did not log that its accounts were replaced:\n%s", b.log)
	}
	if strings.Contains(a.log.String(), "replaced") {
		t.Errorf("A logged a replacement:\n%s", a.log)
	}
	eventually(t, "the empty node adopts the object", func() bool { return empty.Count() == 1 })
	if empty.SetupToken() != "" {
		t.Error("a node that adopted accounts still offers a setup link")
	}
}

// TestReplicaSetupOnce: two fresh nodes each offer a setup link; once
// one is used, the other's makes no second admin.
func TestReplicaSetupOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("", nil), c.start("", nil)
	tokA, tokB := a.SetupToken(), b.SetupToken()
	if _, err := a.Setup(t.Context(), tokA, "admin", "admin password"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Setup(t.Context(), tokB, "other", "admin password"); !errors.Is(err, auth.ErrBadSetup) {
		t.Errorf("setup on B after A's: %v, want ErrBadSetup", err)
	}
	eventually(t, "one admin on B", func() bool { return slices.Equal(b.names(t), []string{"admin"}) })
}

// TestReplicaClose: Close ends a poll that is waiting on S3.
func TestReplicaClose(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	r := &remote{b: c.b, blocked: make(chan struct{})}
	n := c.start("", r)
	r.mu.Lock()
	r.blockHead = true
	r.mu.Unlock()
	select {
	case <-r.blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("no poll within 10 s")
	}
	closed := make(chan error)
	go func() { closed <- n.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a poll waiting on S3 within 10 s")
	}
}

// TestReplicaVersity: two nodes over a real S3 object (versitygw):
// each one's changes reach the other, and concurrent changes survive.
func TestReplicaVersity(t *testing.T) {
	t.Parallel()
	v := origins.StartVersity(t)
	u, err := url.Parse(v.URL(v.Bucket(t, "accounts"), "cluster/state.db"))
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "keys")
	var nodes []*auth.Service
	for range 2 {
		obj, err := s3.OpenObject(u, s3.Options{AccessKey: v.AccessKey, SecretKey: v.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { obj.Close() })
		nodes = append(nodes, openService(t, t.TempDir(), keys, opts(obj, s3.ErrPrecondition, &logBuf{})))
	}
	a, b := nodes[0], nodes[1]
	alice, err := a.AddUser(t.Context(), "alice", "alice password", auth.User, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice on B", func() bool { _, ok := b.Account(alice.ID); return ok })
	tok, _, err := b.Login(t.Context(), "alice", "alice password", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	_, claims, _, err := a.Session(tok, time.Now())
	if err != nil {
		t.Fatalf("B's session on A: %v", err)
	}

	var wg sync.WaitGroup
	for i, n := range nodes {
		for j := range 3 {
			wg.Go(func() {
				if _, err := n.AddUser(t.Context(), fmt.Sprintf("user%d%d", i, j), "a password", auth.User, nil); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Go(func() {
		if err := a.Logout(t.Context(), claims); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	for _, n := range nodes {
		eventually(t, "every user on every node", func() bool { return n.Count() == 7 })
	}
	eventually(t, "the logout on A ends the session on B", func() bool {
		_, _, _, err := b.Session(tok, time.Now())
		return errors.Is(err, auth.ErrBadToken)
	})
}

// TestReplicaRefusedSnapshots: an object that is not a whole store of a
// known schema (empty, too short, an SQLite database of no MuStServ, a
// truncated upload), or is a store without users while the node has
// some, is refused: logged once per version, the node keeps its users,
// and its changes fail rather than overwrite the object. A good object
// put in its place is applied.
func TestReplicaRefusedSnapshots(t *testing.T) {
	t.Parallel()
	good := storeFile(t, "", "first", "second")
	for _, tc := range []struct {
		name string
		data []byte
		want string // in the refusal
	}{
		{"empty", nil, "not an accounts store"},
		{"header only", []byte("SQLite format 3\x00"), "not an accounts store"},
		{"another database", sqliteFile(t, filepath.Join(t.TempDir(), "other.db"), `CREATE TABLE other (x)`), "no MuStServ schema"},
		{"truncated", good[:len(good)/2], "truncated"},
		{"no users", storeFile(t, ""), "no users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			a := c.start("", nil)
			a.add(t, "first")
			refusals := func() int { return strings.Count(a.log.String(), "was not applied") }
			c.b.set(tc.data)
			bad := c.b.version()
			eventually(t, "the refusal logged", func() bool { return refusals() == 1 })
			a.polls(t, 3)
			if n := refusals(); n != 1 || !strings.Contains(a.log.String(), tc.want) {
				t.Errorf("the refusal logged %d times, want once, saying %q:\n%s", n, tc.want, a.log)
			}
			if names := a.names(t); !slices.Equal(names, []string{"first"}) {
				t.Errorf("users after the refusal: %v, want [first]", names)
			}
			if _, err := a.AddUser(t.Context(), "never", "a password", auth.User, nil); err == nil {
				t.Error("a change over a refused object was accepted")
			}
			if v := c.b.version(); v != bad {
				t.Error("the refused object was overwritten")
			}
			// The same bytes again are a new version, refused and
			// logged once more.
			c.b.set(tc.data)
			eventually(t, "the new version's refusal logged", func() bool { return refusals() == 2 })
			// A good object put back by an operator is applied.
			c.b.set(good)
			eventually(t, "the good object applied", func() bool { return slices.Equal(a.names(t), []string{"first", "second"}) })
			if _, err := a.AddUser(t.Context(), "third", "a password", auth.User, nil); err != nil {
				t.Errorf("a change over the good object: %v", err)
			}
		})
	}
}

// TestReplicaSlowWrite: when S3 answers each request in 6 s, a change
// gives up with ErrBusy after 10 s in all, and so does a change that
// waits for it, rather than holding the caller (and every other change)
// for minutes; the change given up is not kept.
func TestReplicaSlowWrite(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t)
		c.poll = time.Hour // every request is the changes'
		a := c.start("", nil)
		a.add(t, "first")
		a.r.set(func(r *remote) { r.slow = 6 * time.Second }) // a pull and a push: 12 s
		start := time.Now()
		if _, err := a.AddUser(t.Context(), "lost", "a password", auth.User, nil); !errors.Is(err, auth.ErrBusy) {
			t.Fatalf("a change over a slow S3: %v after %s, want ErrBusy", err, time.Since(start))
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("a change over a slow S3 failed after %s, want 10 s", d)
		}
		start = time.Now()
		var wg sync.WaitGroup
		for _, name := range []string{"lost1", "lost2"} {
			wg.Go(func() {
				if _, err := a.AddUser(t.Context(), name, "a password", auth.User, nil); !errors.Is(err, auth.ErrBusy) {
					t.Errorf("%s: %v, want ErrBusy", name, err)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("%s failed after %s, want at most 10 s", name, d)
				}
			})
		}
		wg.Wait()
		a.r.set(func(r *remote) { r.slow = 0 })
		a.add(t, "second")
		if names := a.names(t); !slices.Equal(names, []string{"first", "second"}) {
			t.Errorf("users: %v, want [first second]", names)
		}
	})
}

// TestReplicaSlowStart: a node whose S3 does not answer starts within
// 5 s with its own copy, and adopts the object once S3 answers.
func TestReplicaSlowStart(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t)
		c.poll = time.Minute
		c.b.set(storeFile(t, "", "first"))
		r := &remote{b: c.b, slow: time.Hour}
		start := time.Now()
		n := c.start("", r)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("the node started after %s, want at most 5 s", d)
		}
		if n.Count() != 0 || !strings.Contains(n.log.String(), "keeps its own copy") {
			t.Errorf("%d users, log:\n%s\nwant its own copy (none), and that said", n.Count(), n.log)
		}
		r.set(func(r *remote) { r.slow = 0 })
		time.Sleep(90 * time.Second) // a poll
		if names := n.names(t); !slices.Equal(names, []string{"first"}) {
			t.Errorf("users after a poll: %v, want [first]", names)
		}
	})
}

// TestReplicaLogoutOffline: a logout while S3 is out of reach fails, but
// ends the session on the node at once, through reloads; once S3 is
// back the node writes it, and the other nodes end it too.
func TestReplicaLogoutOffline(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a, b := c.start("", nil), c.start("", nil)
	a.add(t, "bob")
	tok, _, err := a.Login(t.Context(), "bob", "bob password", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session valid on B", func() bool { _, _, _, err := b.Session(tok, time.Now()); return err == nil })
	_, claims, _, err := a.Session(tok, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	down := errors.New("dial tcp 192.0.2.1:443: connection refused")
	a.r.set(func(r *remote) { r.down = down })
	if err := a.Logout(t.Context(), claims); !errors.Is(err, down) {
		t.Errorf("a logout while S3 is down: %v, want its error", err)
	}
	if _, _, _, err := a.Session(tok, time.Now()); !errors.Is(err, auth.ErrBadToken) {
		t.Fatalf("the session on the node it was ended on: %v, want ErrBadToken", err)
	}
	// Another process (`mustserv user`) changes the store: the node
	// reloads it, and the session stays ended.
	st, err := auth.OpenStore(t.Context(), filepath.Join(a.dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	carol, err := st.AddUser(t.Context(), "carol", auth.User, nil, "x")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "A reloads its store", func() bool { _, ok := a.Account(carol.ID); return ok })
	if _, _, _, err := a.Session(tok, time.Now()); !errors.Is(err, auth.ErrBadToken) {
		t.Errorf("the session after a reload: %v, want ErrBadToken", err)
	}
	a.polls(t, 3)
	a.r.set(func(r *remote) { r.down = nil })
	eventually(t, "the logout reaches B", func() bool {
		_, _, _, err := b.Session(tok, time.Now())
		return errors.Is(err, auth.ErrBadToken)
	})
	if _, _, _, err := a.Session(tok, time.Now()); !errors.Is(err, auth.ErrBadToken) {
		t.Errorf("the session on A once written: %v, want ErrBadToken", err)
	}
	if !strings.Contains(a.log.String(), "now ended on every node") {
		t.Errorf("A did not log that the logout was written:\n%s", a.log)
	}
}

// TestReplicaStrict: with ReplicaStrict (`mustserv user`), an object out
// of reach is NewService's error, not a stale copy; reading writes no
// object, a change creates it.
func TestReplicaStrict(t *testing.T) {
	t.Parallel()
	strict := func(c *cluster, dir string, r *remote) (*auth.Service, error) {
		store, err := auth.OpenStore(t.Context(), filepath.Join(dir, "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		kf, err := auth.OpenKeyFile(c.keys)
		if err != nil {
			t.Fatal(err)
		}
		o := opts(r, errPrecondition, &logBuf{})
		o.ReplicaStrict = true
		s, err := auth.NewService(t.Context(), store, kf, o)
		if err != nil {
			store.Close()
			return nil, err
		}
		t.Cleanup(func() { s.Close() })
		return s, nil
	}
	t.Run("out of reach", func(t *testing.T) {
		t.Parallel()
		c := newCluster(t)
		down := errors.New("dial tcp 192.0.2.1:443: connection refused")
		_, err := strict(c, t.TempDir(), &remote{b: c.b, down: down})
		if !errors.Is(err, auth.ErrUnsynced) || !errors.Is(err, down) {
			t.Errorf("NewService over an S3 out of reach: %v, want ErrUnsynced and the cause", err)
		}
	})
	t.Run("read then write", func(t *testing.T) {
		t.Parallel()
		c := newCluster(t)
		dir := t.TempDir() // a store made before replication was configured
		s := openService(t, dir, c.keys, opts(nil, nil, &logBuf{}))
		if _, err := s.AddUser(t.Context(), "alice", "a password", auth.Admin, nil); err != nil {
			t.Fatal(err)
		}
		s.Close()
		r := &remote{b: c.b}
		s, err := strict(c, dir, r)
		if err != nil {
			t.Fatal(err)
		}
		if users, err := s.Users(t.Context()); err != nil || len(users) != 1 {
			t.Errorf("users: %v, %v; want alice", users, err)
		}
		(&node{Service: s, r: r}).polls(t, 3)
		if c.b.version() != "" {
			t.Fatal("reading the accounts wrote the object")
		}
		if _, err := s.AddUser(t.Context(), "bob", "a password", auth.User, nil); err != nil {
			t.Fatal(err)
		}
		if names := c.start("", nil).names(t); !slices.Equal(names, []string{"alice", "bob"}) {
			t.Errorf("another node's users: %v, want [alice bob]", names)
		}
	})
}

// TestReplicaLastUser: the last user of shared accounts is not deleted:
// the other nodes would refuse an object without users.
func TestReplicaLastUser(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("", nil)
	first, second := a.add(t, "first"), a.add(t, "second")
	if err := a.DeleteUser(t.Context(), second.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteUser(t.Context(), first.ID); !errors.Is(err, auth.ErrLastUser) {
		t.Errorf("deleting the last user: %v, want ErrLastUser", err)
	}
	if err := a.DeleteUser(t.Context(), second.ID); !errors.Is(err, auth.ErrNoUser) {
		t.Errorf("deleting no one: %v, want ErrNoUser", err)
	}
	if names := c.start("", nil).names(t); !slices.Equal(names, []string{"first"}) {
		t.Errorf("another node's users: %v, want [first]", names)
	}
}

// TestReplicaRefusedThenDeleted: a refused object that an operator
// deletes is written again by a node with accounts.
func TestReplicaRefusedThenDeleted(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := c.start("", nil)
	a.add(t, "first")
	c.b.set(nil)
	eventually(t, "the refusal logged", func() bool { return strings.Contains(a.log.String(), "was not applied") })
	c.b.remove()
	eventually(t, "the object written again", func() bool { return c.b.version() != "" })
	if names := c.start("", nil).names(t); !slices.Equal(names, []string{"first"}) {
		t.Errorf("another node's users: %v, want [first]", names)
	}
	a.add(t, "second")
}
