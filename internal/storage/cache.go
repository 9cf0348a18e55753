package storage

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cacheBlock is the size of the cache's blocks: big enough that a block
// file costs little bookkeeping and a streaming read stores a block every
// few seconds at most, small enough that the block a probe or a seek
// lands in is cheap to fetch whole.
const cacheBlock = 1 << 20

// Cache keeps ranges of remote objects on disk, in fixed blocks, so that
// a second viewer of a file costs the storage nothing. The bytes it holds
// are bounded by maxBytes: the least recently used blocks are removed
// first.
//
// A block is the file <dir>/<h[:2]>/<h>.<index>, h the hex SHA-256 of the
// Object.Key: a key names one version of one object, so a block never
// needs to be invalidated, and a changed object simply has other blocks.
// A block is written to a temporary file and renamed, so a crash leaves a
// whole block or none; a block file that is missing or has not the
// block's length is a miss (and is forgotten).
//
// The recency order is kept in memory. NewCache adopts the blocks it
// finds in dir, oldest modification first, and removes the temporary
// files a crash left; it touches no other file. A Cache is safe for
// concurrent use, but a dir must be used by one Cache of one process at
// a time: two would not see each other's bookkeeping and could exceed
// the bound.
//
// A block is fetched once at a time: a reader that misses a block
// another reader of this Cache is fetching waits for that fetch (and
// fetches the block itself only if it fails or cannot be stored), so two
// viewers starting the same file together cost the storage the file
// once. Only a small random read (a probe's, or the first read after a
// seek) does not wait: it fetches its own piece, as a miss does.
type Cache struct {
	dir   string
	max   int64
	block int64

	mu      sync.Mutex
	lru     *list.List // of *cacheEntry, most recent first
	entries map[string]*list.Element
	bytes   int64
	stats   CacheStats
	// flights are the blocks being fetched, by name: the channel is
	// closed when the fetch ends (stored or not).
	flights map[string]chan struct{}
}

// CacheStats describe a Cache's use since it was made.
type CacheStats struct {
	Hits      int64 // lookups of a block that was there
	Misses    int64 // lookups of a block that was not (or was torn)
	Stores    int64 // blocks written
	Evictions int64 // blocks removed to stay under the bound
	Errors    int64 // blocks that could not be written or removed
	Blocks    int64 // blocks held now
	Bytes     int64 // bytes held now
}

// cacheEntry is one block file in the recency order.
type cacheEntry struct {
	name string // path relative to dir
	size int64
}

// NewCache returns a cache of at most maxBytes bytes in the folder dir,
// which it creates if need be, adopting the blocks a previous Cache left
// there.
func NewCache(dir string, maxBytes int64) (*Cache, error) {
	return newCache(dir, maxBytes, cacheBlock)
}

// newCache is NewCache with another block size (tests use small ones).
func newCache(dir string, maxBytes, block int64) (*Cache, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("cache %s: size %d is not positive", dir, maxBytes)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &Cache{dir: dir, max: maxBytes, block: block, lru: list.New(), entries: map[string]*list.Element{},
		flights: map[string]chan struct{}{}}
	if err := c.adopt(); err != nil {
		return nil, fmt.Errorf("cache %s: %w", dir, err)
	}
	return c, nil
}

// adopt takes in the block files found in dir, least recently written
// last in the order, and removes leftover temporary files.
func (c *Cache) adopt() error {
	type found struct {
		cacheEntry
		mod time.Time
	}
	var blocks []found
	err := filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(c.dir, p)
		if err != nil {
			return err
		}
		switch {
		case isTempName(d.Name()):
			return os.Remove(p)
		case isBlockName(rel):
			info, err := d.Info()
			if err != nil {
				return nil // removed meanwhile
			}
			blocks = append(blocks, found{cacheEntry{name: rel, size: info.Size()}, info.ModTime()})
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(blocks, func(a, b found) int { return a.mod.Compare(b.mod) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range blocks {
		c.entries[b.name] = c.lru.PushFront(&cacheEntry{name: b.name, size: b.size})
		c.bytes += b.size
	}
	c.evictLocked()
	return nil
}

// Stats returns the cache's counts so far.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Blocks = int64(c.lru.Len())
	s.Bytes = c.bytes
	return s
}

// blockName is the file of block idx of the object key, relative to dir.
func blockName(key string, idx int64) string {
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])
	return filepath.Join(h[:2], h+"."+strconv.FormatInt(idx, 10))
}

// isBlockName reports whether rel is named as blockName names.
func isBlockName(rel string) bool {
	dir, base := filepath.Split(rel)
	h, idx, ok := strings.Cut(base, ".")
	if !ok || len(h) != 2*sha256.Size || dir != h[:2]+string(filepath.Separator) {
		return false
	}
	if _, err := hex.DecodeString(h); err != nil {
		return false
	}
	_, err := strconv.ParseUint(idx, 10, 63)
	return err == nil
}

// tempSuffix marks a block being written.
const tempSuffix = ".tmp"

// isTempName reports whether a file named base is a block being
// written (or left by a crash).
func isTempName(base string) bool {
	h, _, ok := strings.Cut(base, ".")
	return ok && len(h) == 2*sha256.Size && strings.Contains(base, tempSuffix)
}

// claim is asked after a miss of block idx of key, of length size. If
// the block is held now (stored meanwhile), it reports held; if another
// reader is fetching it, it returns a channel closed when that fetch
// ends, after which the caller looks again; otherwise the caller is to
// fetch the block, and must call release when it has stored it or
// failed to.
func (c *Cache) claim(key string, idx, size int64) (held bool, wait <-chan struct{}) {
	name := blockName(key, idx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[name]; ok && e.Value.(*cacheEntry).size == size {
		return true, nil
	}
	if ch, ok := c.flights[name]; ok {
		return false, ch
	}
	c.flights[name] = make(chan struct{})
	return false, nil
}

// release ends the fetch of block idx of key that claim granted.
func (c *Cache) release(key string, idx int64) {
	name := blockName(key, idx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.flights[name]; ok {
		close(ch)
		delete(c.flights, name)
	}
}

// read copies into p the bytes of block idx of key from offset off in
// the block, whose full length is size. It reports a miss when the block
// is not held or its file is not whole.
func (c *Cache) read(key string, idx, size int64, p []byte, off int64) bool {
	name := blockName(key, idx)
	c.mu.Lock()
	e, ok := c.entries[name]
	if ok && e.Value.(*cacheEntry).size != size {
		c.forgetLocked(e)
		ok = false
	}
	if !ok {
		c.stats.Misses++
		c.mu.Unlock()
		return false
	}
	c.lru.MoveToFront(e)
	c.mu.Unlock()

	if err := c.readFile(name, size, p, off); err != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if e, ok := c.entries[name]; ok {
			c.forgetLocked(e)
		}
		c.stats.Misses++
		return false
	}
	c.mu.Lock()
	c.stats.Hits++
	c.mu.Unlock()
	return true
}

// readFile reads p at off from the block file name, which must be size
// bytes long: one that was truncated or removed behind our back is an
// error.
func (c *Cache) readFile(name string, size int64, p []byte, off int64) error {
	f, err := os.Open(filepath.Join(c.dir, name))
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.Size() != size {
		return errors.New("torn block")
	}
	_, err = f.ReadAt(p, off)
	if err == io.EOF && off+int64(len(p)) <= size {
		err = nil
	}
	return err
}

// forgetLocked removes the entry e and its file (a no-op if it is gone).
func (c *Cache) forgetLocked(e *list.Element) {
	ce := c.lru.Remove(e).(*cacheEntry)
	delete(c.entries, ce.name)
	c.bytes -= ce.size
	if err := os.Remove(filepath.Join(c.dir, ce.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.stats.Errors++
	}
}

// store writes data as block idx of key. It is best effort: a block that
// cannot be written is counted in Stats.Errors and is simply not cached.
func (c *Cache) store(key string, idx int64, data []byte) {
	size := int64(len(data))
	if size > c.max {
		return
	}
	name := blockName(key, idx)
	if err := c.writeFile(name, data); err != nil {
		c.mu.Lock()
		c.stats.Errors++
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[name]; ok {
		// Stored twice (a reader fetched it after another's fetch
		// failed to store it, or a block was adopted): the same bytes.
		ce := e.Value.(*cacheEntry)
		c.bytes += size - ce.size
		ce.size = size
		c.lru.MoveToFront(e)
	} else {
		c.entries[name] = c.lru.PushFront(&cacheEntry{name: name, size: size})
		c.bytes += size
	}
	c.stats.Stores++
	c.evictLocked()
}

// writeFile writes data to the block file name through a synced
// temporary file, so that the name only ever holds a whole block.
func (c *Cache) writeFile(name string, data []byte) error {
	path := filepath.Join(c.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(name)+tempSuffix+"*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// evictLocked removes the least recently used blocks until the cache
// holds at most max bytes.
func (c *Cache) evictLocked() {
	for c.bytes > c.max {
		e := c.lru.Back()
		if e == nil {
			return
		}
		c.forgetLocked(e)
		c.stats.Evictions++
	}
}
