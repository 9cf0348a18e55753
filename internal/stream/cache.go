package stream

import (
	"context"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mustserv/internal/media"
	"mustserv/internal/storage"
)

// Cache keeps the bytes of small files in memory, so that a hot small file
// (a cover, a subtitle, a playlist file, a short jingle) costs no open,
// stat, read and close per request — the job nginx's open_file_cache does,
// plus the bytes. An entry is trusted for TTL after the file was last
// opened through the library (which checks containment); after that the
// next request opens the file again, and the entry is kept only if the
// file is the same one, unchanged (device, inode, size, modification and
// change times). A file changed, replaced or removed is thus served as it
// was for at most TTL, and never from outside a library: an entry only
// ever holds bytes read through a containment-checked open.
//
// Memory is bounded: files up to MaxFile bytes, Capacity bytes in all;
// when full, entries picked at random make room (cheaper than LRU
// bookkeeping on every hit, and as good for a working set that fits).
// docs/decisions/0007-small-file-cache.md says why this exists.
type Cache struct {
	lim CacheLimits
	now func() time.Time

	mu   sync.RWMutex
	m    map[string]*Cached
	used int64
}

// CacheLimits bound a Cache. Zero fields take the defaults.
type CacheLimits struct {
	MaxFile  int64         // largest file kept; default 64 KiB
	Capacity int64         // bytes kept in all; default 8 MiB
	TTL      time.Duration // how long an entry is trusted; default 1 s
}

// NewCache returns an empty Cache.
func NewCache(lim CacheLimits) *Cache {
	if lim.MaxFile <= 0 {
		lim.MaxFile = 64 << 10
	}
	if lim.Capacity <= 0 {
		lim.Capacity = 8 << 20
	}
	if lim.TTL <= 0 {
		lim.TTL = time.Second
	}
	return &Cache{lim: lim, now: time.Now, m: make(map[string]*Cached)}
}

// Cached is one file held in memory, with the header values of a plain
// 200 response to it formatted once.
type Cached struct {
	data    []byte
	name    string
	modTime time.Time
	id      fileID
	checked atomic.Int64 // when the file was last opened, Unix ns

	// Header values of a plain 200, each a slice of length and capacity
	// 1 shared by every response: net/http only reads them, and an
	// append by anyone else copies first.
	ctype, etag, lastMod, length []string
}

// Header values every cached response shares.
var (
	nosniff = []string{"nosniff"}
	bytesRU = []string{"bytes"}
)

// fileID tells whether a file opened again is the one cached, unchanged.
type fileID struct {
	dev, ino         uint64
	size             int64
	mtimeNs, ctimeNs int64
}

// Get returns the entry for key, the virtual path of a file, when it was
// checked less than TTL ago; nil otherwise.
func (c *Cache) Get(key string) *Cached {
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	if e == nil || c.now().UnixNano()-e.checked.Load() >= int64(c.lim.TTL) {
		return nil
	}
	return e
}

// Put is called with a file just opened at key through the library: it
// returns the entry to serve from, reading f if the entry is missing or
// the file changed, or nil when the file is not for the cache (too large,
// no identity, a read that came short) — then serve f itself. It never
// moves f's offset.
func (c *Cache) Put(key string, f storage.File, fi fs.FileInfo) *Cached {
	if fi.Size() > c.lim.MaxFile {
		c.drop(key)
		return nil
	}
	id, ok := idOf(fi)
	if !ok {
		return nil
	}
	now := c.now().UnixNano()
	c.mu.RLock()
	e := c.m[key]
	c.mu.RUnlock()
	if e != nil && e.id == id {
		e.checked.Store(now)
		return e
	}
	data := make([]byte, fi.Size())
	if n, _ := f.ReadAt(data, 0); n != len(data) {
		// The file shrank or a read failed: serve it from f as it is.
		c.drop(key)
		return nil
	}
	_, ctype := media.TypeOf(fi.Name())
	e = &Cached{
		data: data, name: fi.Name(), modTime: fi.ModTime(), id: id,
		ctype:   []string{ctype},
		etag:    []string{ETag(fi)},
		lastMod: []string{fi.ModTime().UTC().Format(http.TimeFormat)},
		length:  []string{strconv.FormatInt(fi.Size(), 10)},
	}
	e.checked.Store(now)

	size := cost(key, e)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[key]; old != nil {
		c.used -= cost(key, old)
		delete(c.m, key)
	}
	if size > c.lim.Capacity {
		return e // larger than the whole cache: serve it, keep nothing
	}
	for k, v := range c.m { // random order: random eviction
		if c.used+size <= c.lim.Capacity {
			break
		}
		c.used -= cost(k, v)
		delete(c.m, k)
	}
	c.m[key] = e
	c.used += size
	return e
}

// cost is what an entry counts against the capacity: its bytes, its key
// and its bookkeeping (the Cached, the header strings, the map slot), so
// that many tiny files cannot hold far more memory than the capacity.
func cost(key string, e *Cached) int64 {
	return int64(len(e.data)+len(key)) + entryOverhead
}

// entryOverhead is about what a Cached and its map slot take besides the
// file's bytes and key.
const entryOverhead = 512

// Forget removes key's entry: the caller found no file there.
func (c *Cache) Forget(key string) { c.drop(key) }

func (c *Cache) drop(key string) {
	c.mu.RLock()
	_, ok := c.m[key]
	c.mu.RUnlock()
	if !ok {
		return
	}
	c.mu.Lock()
	if old := c.m[key]; old != nil {
		c.used -= cost(key, old)
		delete(c.m, key)
	}
	c.mu.Unlock()
}

// Len returns the number of entries and what they count against the
// capacity (see cost).
func (c *Cache) Len() (entries int, bytes int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m), c.used
}

// ServeCached writes e as the response to r, exactly as Serve would write
// the file it was read from.
//
// A plain request (no Range, no precondition) is answered here with the
// header values formatted once, as http.ServeContent would answer it
// (TestServeCachedMatchesServe compares every header and byte); any other
// goes through ServeContent like a file.
func (s *Server) ServeCached(w http.ResponseWriter, r *http.Request, e *Cached) {
	if !plain(r.Header) {
		s.serve(w, r, e.name, e.modTime, e.etag[0], int64(len(e.data)), &memSource{data: e.data}, nil)
		return
	}
	h := w.Header()
	h["Content-Type"] = e.ctype
	h["Etag"] = e.etag
	h["X-Content-Type-Options"] = nosniff
	h["Last-Modified"] = e.lastMod
	h["Accept-Ranges"] = bytesRU
	if _, ok := h["Content-Encoding"]; !ok {
		h["Content-Length"] = e.length
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(e.data) // an error is the client's: net/http ends the connection
	}
}

// plain reports whether a request header holds none of the fields that
// change ServeContent's answer for a representation that has both an ETag
// and a modification time.
func plain(h http.Header) bool {
	for _, k := range [...]string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"} {
		if _, ok := h[k]; ok {
			return false
		}
	}
	return true
}

// memSource is a cached file's bytes as ServeContent reads them;
// bodyWriter.ReadFrom writes a range of it in one call.
type memSource struct {
	data []byte
	off  int64
}

func (m *memSource) Seek(offset int64, whence int) (int64, error) {
	off, err := seekTo(m.off, int64(len(m.data)), offset, whence)
	if err != nil {
		return m.off, err
	}
	m.off = off
	return off, nil
}

// Read serves the multipart path.
func (m *memSource) Read(p []byte) (int, error) {
	if m.off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.data[m.off:])
	m.off += int64(n)
	return n, nil
}

// connKey is the context key of a request's connection.
type connKey struct{}

// ConnContext is meant for http.Server.ConnContext: it lets Serve reach a
// request's TCP connection, to cork it while a file body is sent.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}
