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

// version returns the object's ETag.
func (b *bucket) version() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.etag
}

// remote is one node's link to a bucket: it counts the node's requests
// and can fail or delay its next Put.
type remote struct {
	b                            *bucket
	heads, gets, puts, conflicts atomic.Int32
	mu                           sync.Mutex
	beforePut                    func() // run before every Put, outside the bucket's lock
	failPut                      error  // returned by the next Put
	blockHead                    bool   // Heads wait for their context to end
	blocked                      chan struct{}
	once                         sync.Once
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
	if etag := r.b.version(); etag != "" {
		return etag, nil
	}
	return "", fmt.Errorf("fake S3: 404: %w", fs.ErrNotExist)
}

func (r *remote) Get(ctx context.Context, limit int64) ([]byte, string, error) {
	r.gets.Add(1)
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
	n.Service = openService(c.t, dir, c.keys, opts(r, errPrecondition, n.log))
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
	eventually(t, "a user deleted on B is gone on A", func() bool { return a.Count() == 0 })
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
	path := filepath.Join(t.TempDir(), "newer.db")
	s, err := auth.OpenStore(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddUser(t.Context(), "mallory", auth.Admin, nil, "x"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`PRAGMA journal_mode = DELETE; PRAGMA user_version = 99`)
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
