package storage

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testBlock is the block size of the tests' caches: small, so that
// objects of a few blocks are small too.
const testBlock = 64 << 10

// view reads the object o of key through c from its start, in 32 KiB
// reads as ServeContent does, and checks the bytes.
func view(t *testing.T, c *Cache, o *origin, key string) {
	t.Helper()
	f := OpenRemote(t.Context(), o.object(key), RemoteOptions{Cache: c})
	defer f.Close()
	if got := readAll(t, f, 32<<10); !bytes.Equal(got, o.data) {
		t.Fatalf("read %d bytes, not the object's %d", len(got), len(o.data))
	}
}

// diskBytes is the size of the files below dir.
func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		n += info.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCacheSecondViewerFetchesNothing(t *testing.T) {
	t.Parallel()
	c, err := NewCache(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	o := newOrigin(5<<20+333, 20)
	view(t, c, o, "k")
	first := len(o.fetched())
	if first == 0 {
		t.Fatal("the first viewer fetched nothing")
	}
	if s := c.Stats(); s.Blocks != 6 || s.Bytes != int64(len(o.data)) {
		t.Errorf("after one viewer the cache holds %d blocks, %d bytes; want 6, %d", s.Blocks, s.Bytes, len(o.data))
	}

	var counts Counters
	f := OpenRemote(t.Context(), o.object("k"), RemoteOptions{Cache: c, Counters: &counts})
	defer f.Close()
	if _, err := f.Seek(1<<20+5, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f, 32<<10); !bytes.Equal(got, o.data[1<<20+5:]) {
		t.Error("the second viewer read wrong bytes")
	}
	p := make([]byte, 3000)
	if _, err := f.ReadAt(p, 123456); err != nil || !bytes.Equal(p, o.data[123456:126456]) {
		t.Errorf("ReadAt: %v or wrong bytes", err)
	}
	if n := len(o.fetched()) - first; n != 0 {
		t.Errorf("the second viewer made %d fetches, want 0: %v", n, o.fetched()[first:])
	}
	if got, want := counts.Counts().CacheHitBytes, int64(len(o.data)-(1<<20+5)+len(p)); got < want {
		t.Errorf("counted %d bytes from the cache, want at least %d", got, want)
	}
}

// TestCacheConcurrentViewers: viewers of one object at once, with
// -race, all read the right bytes.
func TestCacheConcurrentViewers(t *testing.T) {
	t.Parallel()
	c, err := newCache(t.TempDir(), 1<<20, testBlock)
	if err != nil {
		t.Fatal(err)
	}
	o := newOrigin(10*testBlock+99, 21)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() { view(t, c, o, "k") })
	}
	wg.Wait()
	if s := c.Stats(); s.Bytes != int64(len(o.data)) || s.Errors != 0 {
		t.Errorf("stats %+v, want %d bytes and no errors", s, len(o.data))
	}
}

// TestCacheSingleFlight: two viewers starting the same object together
// (in a synctest bubble, so they stay in step) cost the origin the
// object once, plus each one's first small read (a piece, before the
// read-ahead starts): one waits for the blocks the other fetches.
func TestCacheSingleFlight(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c, err := newCache(t.TempDir(), 4<<20, testBlock)
		if err != nil {
			t.Fatal(err)
		}
		o := newOrigin(20*testBlock+99, 22)
		o.latency, o.per32K = 20*time.Millisecond, 2*time.Millisecond
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { view(t, c, o, "k") })
		}
		wg.Wait()
		var fetched int64
		for _, s := range o.fetched() {
			fetched += s.N
		}
		t.Logf("origin bytes %d = %.2f x the object, in %d fetches", fetched, float64(fetched)/float64(len(o.data)), len(o.fetched()))
		if want := int64(len(o.data) + 2*pieceMin); fetched > want {
			t.Errorf("the origin sent %d bytes for two viewers, want at most %d (the object once and two pieces): %v",
				fetched, want, o.fetched())
		}
	})
}

// TestCacheSingleFlightFails: a reader waiting for a block another one
// fetches fetches it itself when that fetch fails.
func TestCacheSingleFlightFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c, err := newCache(t.TempDir(), 1<<20, testBlock)
		if err != nil {
			t.Fatal(err)
		}
		g := &gatedOrigin{data: randomBytes(4*testBlock, 23), pending: map[span]chan struct{}{}}
		o := Object{Info: info{name: "x.flac", size: 4 * testBlock}, Key: "k", Fetch: g.fetch}
		a := OpenRemote(t.Context(), o, RemoteOptions{Cache: c})
		b := OpenRemote(t.Context(), o, RemoteOptions{Cache: c})
		defer b.Close()
		readBlock := func(f File) chan error {
			done := make(chan error, 1)
			go func() {
				p := make([]byte, testBlock)
				_, err := f.ReadAt(p, testBlock)
				if err == nil && !bytes.Equal(p, g.data[testBlock:2*testBlock]) {
					err = errors.New("wrong bytes")
				}
				done <- err
			}()
			return done
		}
		aDone := readBlock(a)
		g.waiting()
		bDone := readBlock(b)
		want := []span{{testBlock, testBlock}}
		if diff := cmp.Diff(want, g.waiting()); diff != "" {
			t.Fatalf("fetches while both read the block (-want +got):\n%s", diff)
		}
		a.Close() // its fetch ends unanswered
		if err := <-aDone; err == nil {
			t.Error("the closed file's read did not fail")
		}
		if diff := cmp.Diff(want, g.waiting()); diff != "" {
			t.Fatalf("fetches after the first one failed (-want +got):\n%s", diff)
		}
		g.release(t, want[0])
		if err := <-bDone; err != nil {
			t.Errorf("the waiting reader: %v", err)
		}
		if s := c.Stats(); s.Stores != 1 {
			t.Errorf("%d blocks stored, want 1", s.Stores)
		}
	})
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const max = 5 * testBlock
	c, err := newCache(dir, max, testBlock)
	if err != nil {
		t.Fatal(err)
	}
	objects := []*origin{newOrigin(2*testBlock, 30), newOrigin(2*testBlock, 31), newOrigin(2*testBlock, 32)}
	keys := []string{"a", "b", "c"}
	view(t, c, objects[0], keys[0])
	view(t, c, objects[1], keys[1])
	view(t, c, objects[0], keys[0]) // a is now more recent than b
	view(t, c, objects[2], keys[2]) // evicts b's blocks, not a's
	s := c.Stats()
	if s.Bytes > max || diskBytes(t, dir) > max {
		t.Errorf("the cache holds %d bytes (%d on disk), more than %d", s.Bytes, diskBytes(t, dir), max)
	}
	if s.Evictions == 0 {
		t.Errorf("no eviction: %+v", s)
	}
	// Reading hits moves blocks to the front, so b is read last.
	for _, i := range []int{2, 0, 1} {
		before := len(objects[i].fetched())
		view(t, c, objects[i], keys[i])
		if fetched, want := len(objects[i].fetched()) > before, keys[i] == "b"; fetched != want {
			t.Errorf("object %s: fetched %v, want %v", keys[i], fetched, want)
		}
	}
}

// TestCacheTornBlocks: a block file cut short or removed behind the
// cache's back is a miss, fetched again.
func TestCacheTornBlocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := newCache(dir, 1<<20, testBlock)
	if err != nil {
		t.Fatal(err)
	}
	o := newOrigin(4*testBlock, 40)
	view(t, c, o, "k")
	if err := os.Truncate(filepath.Join(dir, blockName("k", 1)), 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, blockName("k", 2))); err != nil {
		t.Fatal(err)
	}
	before := len(o.fetched())
	misses := c.Stats().Misses
	view(t, c, o, "k")
	if diff := o.fetched()[before:]; len(diff) == 0 {
		t.Error("torn blocks were not fetched again")
	} else {
		for _, s := range diff {
			if s.Off < testBlock && s.N > 0 && s.Off+s.N <= testBlock {
				t.Errorf("fetched %+v of block 0, which is whole", s)
			}
		}
	}
	if got := c.Stats().Misses - misses; got < 2 {
		t.Errorf("%d misses, want at least 2", got)
	}
	// The blocks were stored again.
	before = len(o.fetched())
	view(t, c, o, "k")
	if n := len(o.fetched()) - before; n != 0 {
		t.Errorf("%d fetches after the blocks were stored again", n)
	}
}

// TestCacheKeyChange: another version of an object (another key) is
// never read from the blocks of the first.
func TestCacheKeyChange(t *testing.T) {
	t.Parallel()
	c, err := newCache(t.TempDir(), 1<<20, testBlock)
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := newOrigin(3*testBlock, 50), newOrigin(3*testBlock, 51)
	view(t, c, v1, "etag-1")
	view(t, c, v2, "etag-2") // checks v2's bytes
	if len(v2.fetched()) == 0 {
		t.Error("the new version was not fetched")
	}
}

// TestCacheNoKeyNoCache: an object without a key is never cached.
func TestCacheNoKeyNoCache(t *testing.T) {
	t.Parallel()
	c, err := newCache(t.TempDir(), 1<<20, testBlock)
	if err != nil {
		t.Fatal(err)
	}
	view(t, c, newOrigin(3*testBlock, 52), "")
	if s := c.Stats(); s.Stores != 0 || s.Hits+s.Misses != 0 {
		t.Errorf("the cache was used: %+v", s)
	}
}

// TestCacheProbeNotStored: small random reads that miss are fetched as
// pieces and not stored.
func TestCacheProbeNotStored(t *testing.T) {
	t.Parallel()
	c, err := newCache(t.TempDir(), 1<<20, testBlock)
	if err != nil {
		t.Fatal(err)
	}
	o := newOrigin(8*testBlock, 53)
	var counts Counters
	f := OpenRemote(t.Context(), o.object("k"), RemoteOptions{Cache: c, Counters: &counts})
	defer f.Close()
	p := make([]byte, 100)
	for _, off := range []int64{0, 5 * testBlock, int64(len(o.data)) - 100} {
		if _, err := f.ReadAt(p, off); err != nil || !bytes.Equal(p, o.data[off:off+100]) {
			t.Fatalf("ReadAt %d: %v or wrong bytes", off, err)
		}
	}
	if s := c.Stats(); s.Stores != 0 {
		t.Errorf("probe reads stored %d blocks", s.Stores)
	}
	if got := counts.Counts().FetchedBytes; got > 3*pieceMin {
		t.Errorf("probe reads fetched %d bytes, want at most %d", got, 3*pieceMin)
	}
	// A ReadAt of a whole block stores it.
	big := make([]byte, testBlock)
	if _, err := f.ReadAt(big, 2*testBlock); err != nil || !bytes.Equal(big, o.data[2*testBlock:3*testBlock]) {
		t.Fatalf("ReadAt of a block: %v or wrong bytes", err)
	}
	if s := c.Stats(); s.Stores != 1 {
		t.Errorf("a whole-block read stored %d blocks, want 1", s.Stores)
	}
}

// TestCacheAdopts: a new Cache on the folder of another serves its
// blocks, keeps to its own bound and removes the temporary files a crash
// left.
func TestCacheAdopts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := newCache(dir, 1<<20, testBlock)
	if err != nil {
		t.Fatal(err)
	}
	o := newOrigin(4*testBlock, 60)
	view(t, c, o, "k")
	temp := filepath.Join(dir, blockName("k", 9)+tempSuffix+"123")
	if err := os.WriteFile(temp, []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "README")
	if err := os.WriteFile(other, []byte("not ours"), 0o600); err != nil {
		t.Fatal(err)
	}

	again, err := newCache(dir, 1<<20, testBlock)
	if err != nil {
		t.Fatal(err)
	}
	if s := again.Stats(); s.Blocks != 4 || s.Bytes != int64(len(o.data)) {
		t.Errorf("adopted %d blocks, %d bytes; want 4, %d", s.Blocks, s.Bytes, len(o.data))
	}
	if _, err := os.Stat(temp); !os.IsNotExist(err) {
		t.Errorf("the temporary file is still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file not the cache's was touched: %v", err)
	}
	before := len(o.fetched())
	view(t, again, o, "k")
	if n := len(o.fetched()) - before; n != 0 {
		t.Errorf("%d fetches through the adopting cache", n)
	}

	small, err := newCache(dir, 2*testBlock, testBlock)
	if err != nil {
		t.Fatal(err)
	}
	if s := small.Stats(); s.Bytes > 2*testBlock || s.Evictions != 2 {
		t.Errorf("a smaller cache adopted %+v, want 2 blocks evicted", s)
	}
}

func TestNewCacheRefusesNoSize(t *testing.T) {
	t.Parallel()
	if _, err := NewCache(t.TempDir(), 0); err == nil {
		t.Error("NewCache with 0 bytes did not fail")
	}
}
