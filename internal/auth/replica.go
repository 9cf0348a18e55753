package auth

import (
	"cmp"
	"context"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Replication of the accounts between machines.
//
// Nodes on several machines share nothing but the storage and the signing
// key, so their accounts are kept in one object (Remote: an S3 object)
// that holds a whole state.db. Each node still keeps its own state.db and
// reads only from it; the object is the truth it follows:
//
//   - Pull: every poll the node asks the object's ETag; when it is not the
//     one the store holds, the node fetches the object and replaces its
//     users, revoked sessions and API keys with the object's, in one
//     transaction (Store.apply).
//   - Push: every account change (Service.write) pulls first, changes the
//     local store, and writes a snapshot of it over the version it pulled
//     (If-Match, or If-None-Match: * when there is none yet). When another
//     node wrote first (a conflict), the node pulls, which drops its
//     change, makes it again on the newer accounts, and writes again.
//
// A slow S3 must not hold every account change: each change is given
// writeTimeout in all (then ErrBusy), a poll syncTimeout, and the first
// sync firstSyncTimeout, after which the node starts with its own copy.
//
// An object is applied only if it is a store (SQLite's header, a schema
// this node knows, an intact file) and, when this node has users, has
// users: an empty or truncated upload would otherwise erase every node's
// accounts. A refused object stays in place and is not overwritten (every
// change fails) until another one replaces it (or it is deleted: then a
// node with accounts writes it again).
//
// A logout that cannot be written to the object still ends the session
// on this node at once (Service.pending), and is written with the next
// change or poll that reaches the object.
//
// What is not replicated: the last use of an API key (`used`, a local
// best-effort write per hour and key, kept across pulls), and the signing
// keys (they have their own file, which nodes share by other means).

// Remote is the one object, shared by every node, that holds the
// accounts. Its ETags are opaque and change whenever its data does.
type Remote interface {
	// Head returns the object's ETag; an error wrapping fs.ErrNotExist
	// when there is no object.
	Head(ctx context.Context) (etag string, err error)
	// Get returns the object's data and ETag, refusing an object larger
	// than limit bytes; fs.ErrNotExist when there is no object.
	Get(ctx context.Context, limit int64) (data []byte, etag string, err error)
	// Put writes data over the version ifMatch names, or only where
	// there is no object when ifMatch is "*", and returns the new ETag.
	// A write refused by its condition returns an error for which
	// errors.Is(err, ServiceOptions.ReplicaConflict) holds.
	Put(ctx context.Context, data []byte, ifMatch string) (etag string, err error)
}

// ErrBusy is an account change given up because other nodes kept changing
// the shared accounts in the meantime, or because the shared object did
// not answer within writeTimeout.
var ErrBusy = errors.New("auth: the shared accounts store is busy (other nodes are changing it, or it answers slowly): try again")

// ErrUnsynced is NewService's error, with ServiceOptions.ReplicaStrict,
// when the store could not be brought up to the shared object.
var ErrUnsynced = errors.New("auth: the accounts could not be brought up to the shared accounts store, so nothing was done")

// ErrLastUser is the deletion of the last user of accounts shared through
// a Replica: the other nodes would refuse an object without users.
var ErrLastUser = errors.New("auth: the last user of shared accounts cannot be deleted")

const (
	// maxSnapshot bounds the object a node fetches: the accounts of a
	// media server are kilobytes; this is far beyond any real one.
	maxSnapshot = 64 << 20
	// writeAttempts bounds the tries of one change against conflicts.
	writeAttempts = 5
	// writeTimeout bounds one change, its wait for another change or
	// poll included: a slow S3 costs a 503, not a request held for
	// minutes (each request is bounded by the Remote as well).
	writeTimeout = 10 * time.Second
	// defaultPoll is how often a node looks for other nodes' changes.
	defaultPoll = time.Second
	// syncTimeout bounds one poll, which holds up the changes meanwhile.
	syncTimeout = writeTimeout
	// firstSyncTimeout bounds the sync a Service starts with (it delays
	// the listener); then the node starts with its own copy.
	firstSyncTimeout = 5 * time.Second
	// maxPending bounds the revocations kept for a later push (the
	// oldest are dropped): an outage with a logout per second is hours.
	maxPending = 10_000
)

// replica is a Service's link to the shared object.
type replica struct {
	remote   Remote
	conflict error
	poll     time.Duration
	log      *slog.Logger
	seed     bool // a sync creates a missing object (not with ReplicaStrict)

	// sem is held by one pull or push at a time (a lock that can be
	// given up on: see acquire); it guards what follows.
	sem chan struct{}
	// etag is the object's version the store holds ("": there is no
	// object, or none was read yet).
	etag string
	// dirty: a change failed to reach the object after it was made in
	// the store, so the store may differ from the object under the same
	// ETag; the next pull fetches the object whatever its ETag.
	dirty bool
	// refused is the ETag of an object that was not applied (a newer
	// schema, not a store, no users), and why: it is not fetched again
	// until it changes.
	refused    string
	refusedErr error
	pulled     bool // an object was applied since the start (for the log)

	lastErr string // what the poll last reported (the poll goroutine's)

	stop     context.CancelFunc // ends the poll
	done     chan struct{}      // closed when the poll has ended
	stopOnce sync.Once
}

// startReplica links s to opts.Replica: it brings the store up to the
// object (or seeds the object), then polls until Close. A first sync that
// fails (or takes longer than firstSyncTimeout) is logged, not returned:
// the node starts with its own copy and keeps trying. With ReplicaStrict
// it is returned, wrapping ErrUnsynced, and nothing is started.
func (s *Service) startReplica(ctx context.Context, opts ServiceOptions) error {
	if opts.ReplicaConflict == nil {
		return errors.New("auth: ServiceOptions.ReplicaConflict must name the error of a refused conditional write")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &replica{remote: opts.Replica, conflict: opts.ReplicaConflict,
		poll: opts.ReplicaPoll, log: log, seed: !opts.ReplicaStrict,
		sem: make(chan struct{}, 1), done: make(chan struct{})}
	if r.poll <= 0 {
		r.poll = defaultPoll
	}
	sctx, cancel := context.WithTimeout(ctx, firstSyncTimeout)
	err := s.syncWith(sctx, r)
	cancel()
	if err != nil && opts.ReplicaStrict {
		return fmt.Errorf("%w: %w", ErrUnsynced, err)
	}
	s.replica = r
	r.report(err)
	// The poll outlives the caller's context (it is a constructor's) and
	// ends with Close.
	pollCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stop = stop
	go s.pollReplica(pollCtx)
	return nil
}

// stopReplica ends the poll, waits until it has ended, and closes the
// Remote if it is an io.Closer (as Close closes the store).
func (s *Service) stopReplica() {
	if r := s.replica; r != nil {
		r.stopOnce.Do(func() {
			r.stop()
			<-r.done
			if c, ok := r.remote.(io.Closer); ok {
				c.Close()
			}
		})
	}
}

// pollReplica syncs every poll until ctx ends.
func (s *Service) pollReplica(ctx context.Context) {
	r := s.replica
	defer close(r.done)
	tick := time.NewTicker(r.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sctx, cancel := context.WithTimeout(ctx, syncTimeout)
		err := s.sync(sctx)
		cancel()
		if err == nil && s.hasPending() {
			// The object is in reach again: write the sessions ended
			// while it was not (write applies them).
			err = s.write(ctx, func(context.Context) error { return nil })
		}
		if ctx.Err() != nil {
			return // Close: an interrupted request is no news
		}
		r.report(err)
	}
}

// acquire takes r.sem, or gives up when ctx ends.
func (r *replica) acquire(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release gives r.sem back.
func (r *replica) release() { <-r.sem }

// report logs the outcome of a sync when it differs from the last one:
// a bucket out of reach for an hour is two lines, not 3600.
func (r *replica) report(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == r.lastErr {
		return
	}
	if err != nil {
		r.log.Error("auth: the shared accounts store: this node keeps its own copy until it can read it", "err", err)
	} else if r.lastErr != "" {
		r.log.Info("auth: the shared accounts store is read again")
	}
	r.lastErr = msg
}

// sync brings the store up to the object; with no object, a node that
// has accounts creates it (create-only: if another node was first, its
// accounts are adopted instead), unless it is ReplicaStrict's: a command
// that only reads writes nothing.
func (s *Service) sync(ctx context.Context) error { return s.syncWith(ctx, s.replica) }

// syncWith is sync through r, which need not be s.replica yet.
func (s *Service) syncWith(ctx context.Context, r *replica) error {
	if err := r.acquire(ctx); err != nil {
		return fmt.Errorf("auth: read the shared accounts store: %w", err)
	}
	defer r.release()
	if err := s.pull(ctx, r); err != nil || r.etag != "" || !r.seed {
		return err
	}
	n, err := s.store.Count(ctx)
	if err != nil || n == 0 {
		return err // an empty store seeds nothing: a node with accounts may come
	}
	err = s.push(ctx, r)
	switch {
	case errors.Is(err, r.conflict):
		return s.pull(ctx, r)
	case err != nil:
		return fmt.Errorf("auth: seed the shared accounts store: %w", err)
	}
	r.log.Info("auth: this node's accounts seeded the shared accounts store", "users", n)
	return nil
}

// write makes one account change, fn, on the store. With a replica the
// change is also written to the shared object, on top of the latest
// accounts: fn may run several times (after a conflict it runs again on
// the other node's accounts, and may then fail, such as ErrUserExists),
// so it must be a store change alone, with its results kept by the last
// call.
//
// A change that cannot be written to the object (it is out of reach, or
// refuses us) is an error, and not kept: the store already has it, but is
// marked dirty, so the next pull (this node's next poll, or next change)
// puts the object's accounts back. Until then, at most one poll once the
// object is in reach again, this node alone sees the change. Two cases
// end otherwise: a write that reached S3 but whose answer was lost (a
// timeout) is adopted by the next pull, since the object has it; and with
// no object at all there is nothing to put back, so the next push
// (creating the object) carries the change.
//
// The whole change, its wait for another one included, is bounded by
// writeTimeout: past it the change fails with ErrBusy. Every push also
// carries the pending revocations (Service.pending).
func (s *Service) write(ctx context.Context, fn func(context.Context) error) error {
	r := s.replica
	if r == nil {
		return fn(ctx)
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	err := s.writeReplica(wctx, r, fn)
	if err != nil && !errors.Is(err, ErrBusy) && wctx.Err() != nil && ctx.Err() == nil {
		// Our deadline, not the caller's.
		return fmt.Errorf("auth: the change was not saved within %s (%v): %w", writeTimeout, err, ErrBusy)
	}
	return err
}

// writeReplica is write's work through r, bounded by ctx.
func (s *Service) writeReplica(ctx context.Context, r *replica, fn func(context.Context) error) error {
	if err := r.acquire(ctx); err != nil {
		return err
	}
	defer r.release()
	for range writeAttempts {
		if err := s.pull(ctx, r); err != nil {
			return err
		}
		if err := fn(ctx); err != nil {
			return err
		}
		pending := s.pendingRevocations()
		for _, p := range pending {
			if err := s.store.Revoke(ctx, p.id, p.until); err != nil {
				r.dirty = true // fn's change is in the store: the next pull drops it
				return err
			}
		}
		err := s.push(ctx, r)
		if err == nil {
			if len(pending) > 0 {
				s.pushedRevocations(pending)
				r.log.Info("auth: sessions ended while the shared accounts store was out of reach are now ended on every node",
					"sessions", len(pending))
			}
			return nil
		}
		r.dirty = true
		if !errors.Is(err, r.conflict) {
			return fmt.Errorf("auth: the change was not saved, the shared accounts store could not be written: %w", err)
		}
	}
	// Put the object's accounts back now rather than at the next poll;
	// if this fails, the poll will.
	s.pull(ctx, r)
	return ErrBusy
}

// pull applies the object to the store when its ETag is not the one the
// store holds (or the store is dirty), and reloads the accounts. r.sem
// is held.
func (s *Service) pull(ctx context.Context, r *replica) error {
	etag, err := r.remote.Head(ctx)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.etag = "" // a push will create it
		return nil
	case err != nil:
		return fmt.Errorf("auth: read the shared accounts store: %w", err)
	case r.refused != "" && etag == r.refused:
		return r.refusedErr
	case etag == r.etag && !r.dirty:
		return nil
	}
	data, etag, err := r.remote.Get(ctx, maxSnapshot)
	switch {
	case errors.Is(err, fs.ErrNotExist): // deleted since the Head
		r.etag = ""
		return nil
	case err != nil:
		return fmt.Errorf("auth: read the shared accounts store: %w", err)
	}
	var before []Account
	if !r.pulled {
		before, _ = s.store.Users(ctx) // for the log alone
	}
	if err := s.store.applySnapshot(ctx, data); err != nil {
		// The ETag in the message: each refused object is logged once.
		switch {
		case errors.Is(err, errNewerSchema):
			err = fmt.Errorf("auth: the shared accounts store (version %s) was not applied: %w; upgrade this node", etag, err)
		case errors.Is(err, errBadSnapshot), errors.Is(err, errNoUsers):
			err = fmt.Errorf("auth: the shared accounts store (version %s) was not applied, and no account change can be saved until it is replaced: %w; "+
				"put a good copy of a node's state.db there, or delete the object so that a node with accounts writes it again", etag, err)
		default:
			return err // this node's trouble (a full disk...): try again
		}
		// The same object would be refused again: wait for another.
		r.refused, r.refusedErr = etag, err
		return err
	}
	r.etag, r.dirty = etag, false
	if !r.pulled {
		r.pulled = true
		after, _ := s.store.Users(ctx)
		if len(before) > 0 && !sameUsers(before, after) {
			r.log.Warn("auth: this node's accounts were replaced by those of the shared accounts store",
				"users_here", len(before), "users_shared", len(after))
		}
	}
	// The store's own connection wrote, which does not move its
	// PRAGMA data_version (only other connections' commits do): reload.
	return s.reload(ctx)
}

// sameUsers reports whether a and b are the same users, by ID.
func sameUsers(a, b []Account) bool {
	return slices.EqualFunc(a, b, func(x, y Account) bool { return x.ID == y.ID })
}

// push writes a snapshot of the store over the version it holds. r.sem
// is held.
func (s *Service) push(ctx context.Context, r *replica) error {
	data, err := s.store.snapshot(ctx)
	if err != nil {
		return err
	}
	etag, err := r.remote.Put(ctx, data, cmp.Or(r.etag, "*"))
	if err != nil {
		return err
	}
	r.etag, r.dirty = etag, false
	return nil
}

// tempDir is a folder of its own (mode 0700: snapshots hold password
// hashes) for snapshot files; remove it with os.RemoveAll.
func tempDir() (string, error) {
	dir, err := os.MkdirTemp("", "mustserv-accounts-*")
	if err != nil {
		return "", fmt.Errorf("auth: snapshot: %w", err)
	}
	return dir, nil
}

// snapshot returns a consistent copy of the whole store as an SQLite
// file's bytes (VACUUM INTO: one read transaction, compacted).
func (s *Store) snapshot(ctx context.Context) ([]byte, error) {
	dir, err := tempDir()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "snapshot.db")
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return nil, fmt.Errorf("auth: snapshot: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: snapshot: %w", err)
	}
	return data, nil
}

// applySQL replaces the accounts with those of the attached snapshot
// "snap", in one transaction. Rows are updated in place rather than
// deleted and inserted again: deleting a user deletes its API keys
// (ON DELETE CASCADE), whose local `used` is to be kept.
var applySQL = []string{
	`DELETE FROM main.users WHERE id NOT IN (SELECT id FROM snap.users)`, // and their keys
	// Free every name first, so that the snapshot's names can land on
	// any ID (a name key never starts with a control character).
	`UPDATE main.users SET name_key = char(0) || id`,
	`INSERT INTO main.users (id, name, name_key, role, libraries, hash, generation, created)
		SELECT id, name, name_key, role, libraries, hash, generation, created FROM snap.users WHERE true
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_key = excluded.name_key, role = excluded.role,
			libraries = excluded.libraries, hash = excluded.hash, generation = excluded.generation, created = excluded.created`,
	`DELETE FROM main.revoked`,
	`INSERT INTO main.revoked (id, until) SELECT id, until FROM snap.revoked`,
	`DELETE FROM main.api_keys WHERE id NOT IN (SELECT id FROM snap.api_keys)`,
	// A key known here keeps its local `used`.
	`INSERT INTO main.api_keys (id, user_id, name, hash, created, used)
		SELECT id, user_id, name, hash, created, used FROM snap.api_keys WHERE true
		ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, name = excluded.name, hash = excluded.hash,
			created = excluded.created`,
}

// errBadSnapshot is a snapshot that is not a store.
var errBadSnapshot = errors.New("not an accounts store")

// errNoUsers is a snapshot without users applied to a store with some: an
// operator's mistake or a truncated upload, never a change made through a
// Service (the last user is not deleted, ErrLastUser).
var errNoUsers = errors.New("it has no users, and this node has")

// checkHeader accepts data as a store by its SQLite header (the first 100
// bytes; https://sqlite.org/fileformat2.html#the_database_header), before
// it is opened: SQLite opens an empty file as an empty database, which
// OpenStore would make a store without users.
func checkHeader(data []byte) error {
	if len(data) < 100 || string(data[:16]) != "SQLite format 3\x00" {
		return fmt.Errorf("%w (%d bytes, not an SQLite database)", errBadSnapshot, len(data))
	}
	// The schema is the header's user_version (offset 60, big-endian):
	// read here, the refusal names no temporary file. OpenStore checks
	// it again. 0 is a database no MuStServ made.
	switch v := binary.BigEndian.Uint32(data[60:64]); {
	case v == 0:
		return fmt.Errorf("%w (an SQLite database of no MuStServ schema)", errBadSnapshot)
	case v > uint32(len(storeSchema)):
		return fmt.Errorf("%w (schema %d, this one knows %d)", errNewerSchema, v, len(storeSchema))
	}
	// "The in-header database size is only considered to be valid if it
	// is non-zero and if the 4-byte change counter at offset 24 exactly
	// matches the 4-byte version-valid-for number at offset 92." A valid
	// size that is not the file's is a truncated (or padded) upload.
	pageSize := int64(binary.BigEndian.Uint16(data[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	pages := int64(binary.BigEndian.Uint32(data[28:32]))
	if pages != 0 && string(data[24:28]) == string(data[92:96]) && pages*pageSize != int64(len(data)) {
		return fmt.Errorf("%w (%d bytes, its header says %d: truncated)", errBadSnapshot, len(data), pages*pageSize)
	}
	return nil
}

// applySnapshot replaces the store's accounts with those of data, a
// state.db's bytes, in one transaction. A snapshot of an older schema is
// migrated first; one of a newer schema is refused with errNewerSchema,
// one that is not a store with errBadSnapshot, and one without users
// while the store has some with errNoUsers.
func (s *Store) applySnapshot(ctx context.Context, data []byte) error {
	if err := checkHeader(data); err != nil {
		return err
	}
	dir, err := tempDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "snapshot.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("auth: apply snapshot: %w", err)
	}
	// Opening it as a store checks that it is one, and migrates it.
	snap, err := OpenStore(ctx, path)
	if err != nil {
		return fmt.Errorf("auth: apply snapshot: %w", badSnapshot(err))
	}
	n, err := snap.check(ctx)
	if cerr := snap.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("auth: apply snapshot: %w", badSnapshot(err))
	}
	if n == 0 {
		here, err := s.Count(ctx)
		if err != nil {
			return fmt.Errorf("auth: apply snapshot: %w", err)
		}
		if here > 0 {
			return fmt.Errorf("%w %d", errNoUsers, here)
		}
	}
	if err := s.attached(ctx, path, applySQL); err != nil {
		return fmt.Errorf("auth: apply snapshot: %w", err)
	}
	return nil
}

// badSnapshot turns an error of what a snapshot's file holds (not a
// database, corrupt, a schema that does not migrate) into
// errBadSnapshot, which refuses it; this node's trouble (a full disk)
// stays itself. The message named the temporary file: no news.
func badSnapshot(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_ERROR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%w: %s", errBadSnapshot, sqlite.ErrorCodeString[se.Code()])
		}
	}
	return err
}

// check runs SQLite's quick_check on the store (a snapshot: a corrupt
// page is refused here rather than half applied) and counts its users.
func (s *Store) check(ctx context.Context) (users int, err error) {
	var res string
	if err := s.db.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&res); err != nil {
		return 0, err
	}
	if res != "ok" {
		return 0, fmt.Errorf("%w: %.200s", errBadSnapshot, res)
	}
	return s.Count(ctx)
}

// attached runs queries in one transaction with the database at path
// attached as "snap". ATTACH belongs to a connection and cannot be done
// inside a transaction, so both happen on one connection held throughout
// (the store's only one).
func (s *Store) attached(ctx context.Context, path string, queries []string) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS snap`, path); err != nil {
		return err
	}
	defer func() {
		if _, derr := conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE snap`); derr != nil {
			// A connection left with snap attached would refuse the
			// next ATTACH: have database/sql drop it.
			conn.Raw(func(any) error { return driver.ErrBadConn })
			err = cmp.Or(err, derr)
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range queries {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// revocation is a session ended on this node whose push failed.
type revocation struct {
	id    string
	until time.Time
}

// addPending records a revocation the object has not taken yet: this node
// rejects the session at once (reload keeps it in s.revoked), and the next
// push carries it. s.mu is held.
func (s *Service) addPending(id string, until time.Time) {
	s.pending = slices.DeleteFunc(s.pending, func(p revocation) bool { return p.id == id })
	if len(s.pending) >= maxPending {
		s.pending = slices.Delete(s.pending, 0, len(s.pending)-maxPending+1)
	}
	s.pending = append(s.pending, revocation{id, until})
	s.revoked[id] = until
}

// hasPending reports whether revocations wait for a push.
func (s *Service) hasPending() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.pending) > 0
}

// pendingRevocations returns the revocations that wait for a push and
// have not expired (the expired ones are forgotten).
func (s *Service) pendingRevocations() []revocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.pending = slices.DeleteFunc(s.pending, func(p revocation) bool { return p.until.Before(now) })
	return slices.Clone(s.pending)
}

// pushedRevocations forgets the pending revocations a push carried (those
// added since stay).
func (s *Service) pushedRevocations(done []revocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = slices.DeleteFunc(s.pending, func(p revocation) bool {
		return slices.ContainsFunc(done, func(d revocation) bool { return d.id == p.id && d.until.Equal(p.until) })
	})
}
