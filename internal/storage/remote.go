package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"
)

// FetchFunc returns a reader of the bytes [off, off+n) of one object, n > 0,
// off+n <= its size. The backend checks that the answer is exactly that
// range of the object as it was when opened (Content-Range, ETag or
// Last-Modified, size) and reports otherwise with an error wrapping
// ErrChanged and ErrUnavailable; other failures wrap ErrUnavailable,
// ErrTimeout or fs.ErrNotExist. The reader must yield exactly n bytes or
// an error (io.ErrUnexpectedEOF when the answer is cut short).
type FetchFunc func(ctx context.Context, off, n int64) (io.ReadCloser, error)

// Object is a remote file as its backend found it when opening it.
type Object struct {
	Info fs.FileInfo // name, size and modification time
	// Key identifies this version of the object across processes (the
	// backend, the name, and its ETag, size and time), for the range
	// cache; "" means its ranges are never cached.
	Key   string
	Fetch FetchFunc
}

// RemoteOptions tune the files OpenRemote returns. The zero value is
// sane.
type RemoteOptions struct {
	// ReadAhead is the most bytes one window of the read-ahead holds; 0
	// means 4 MiB. A file holds at most two windows in memory, and they
	// are this big only for a reader as fast as the storage (or nearly).
	ReadAhead int64
	// Cache, if not nil, keeps fetched ranges on disk.
	Cache *Cache
	// Counters, if not nil, count what the files fetch.
	Counters *Counters
	// Stall ends a fetch whose storage sends no byte for this long, with
	// an error wrapping ErrTimeout (not retried); 0 means 15 s. A
	// transport's header timeout does not cover a body that stops.
	Stall time.Duration
}

const (
	// defaultReadAhead is RemoteOptions.ReadAhead's default: at 3 Mbit/s
	// about ten seconds of playing, so a slow origin has time to answer.
	defaultReadAhead = 4 << 20
	// firstWindow is the read-ahead's first window (without a cache):
	// small, so that a stream starts after one short fetch. It is also
	// the least a window shrinks to.
	firstWindow = 64 << 10
	// aheadMargin is how long, beyond the next window's fetch, the bytes
	// ahead of a reader should last at its pace: the read-ahead grows its
	// windows until they do (see nextWindow). A second covers a slow
	// answer of the storage without holding much: 24 KB for a 192 kbit/s
	// MP3.
	aheadMargin = time.Second
	// pieceMin is the least a random read fetches, aligned to it: the
	// probe's reads of a few bytes around one spot cost one request.
	pieceMin = 32 << 10
	// pieceMax is the most a random read keeps in memory; pieces grow
	// from pieceMin while random reads follow each other.
	pieceMax = 256 << 10
	// maxPieces is the number of pieces kept: a probe looks at the
	// header, the tail and a sample or two at once.
	maxPieces = 4
	// maxRetries is how many times a failed fetch is repeated.
	maxRetries = 2
	// defaultStall is RemoteOptions.Stall's default.
	defaultStall = 15 * time.Second
)

// errStalled is the cause of a fetch's context ended by its stall timer.
var errStalled = errors.New("no byte arrived in time")

// OpenRemote returns a File reading o through o.Fetch, whose reads end
// when ctx ends.
//
// Reads take one of two paths. Random reads (ReadAt, and a Read that does
// not continue the previous one) fetch aligned pieces of at least 32 KiB
// and keep the last few in memory, so a probe's small reads of headers,
// the tail and a few samples cost a request each and little more. A Read
// that continues the previous one starts the read-ahead: a goroutine
// fetches windows that double from 64 KiB up to ReadAhead, each one while
// the reader is still in the one before, and the reader takes bytes as
// soon as they arrive. Two windows exist at most (their buffers are
// reused), and a Read elsewhere stops the read-ahead. So net/http's
// ServeContent — a Seek, then 32 KiB reads paced by the client — waits on
// the storage for its first two reads only.
//
// The windows follow the reader's pace: the first is 64 KiB and the
// second twice that; each later one doubles (up to ReadAhead) only if
// the reader had to wait for bytes, or would reach the end of the bytes
// fetched before the next window arrives with a second to spare, and
// shrinks when they would last it more than four times that (see
// nextWindow). A player taking 64 KiB/s holds two windows of 64 to 128
// KiB, even after a burst; a reader as fast as the storage, or taking
// more than ReadAhead a second, gets windows of ReadAhead.
//
// With a Cache and an Object.Key, reads look in the cache first; the
// read-ahead's windows are whole cache blocks (its first one starts at
// the block holding the read) and are stored, random reads store only a
// whole block they happen to ask for. A block is fetched by one reader
// at a time: the others wait for it (see Cache).
//
// A fetch that fails with ErrUnavailable before giving a byte is repeated
// up to twice, after 100 and 400 ms; one that gave bytes is not (the rest
// could come from another version, if the backend cannot tell). ErrChanged
// is final: every later read of the file fails with it. Errors are the
// FetchFunc's, and an answer shorter than asked is io.ErrUnexpectedEOF
// with ErrUnavailable.
func OpenRemote(ctx context.Context, o Object, opt RemoteOptions) File {
	ra := opt.ReadAhead
	if ra <= 0 {
		ra = defaultReadAhead
	}
	stall := opt.Stall
	if stall <= 0 {
		stall = defaultStall
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &remoteFile{
		ctx:       ctx,
		cancel:    cancel,
		o:         o,
		size:      o.Info.Size(),
		readAhead: ra,
		stall:     stall,
		counters:  opt.Counters,
		lastEnd:   -1,
	}
	if opt.Cache != nil && o.Key != "" {
		f.cache = opt.Cache
	}
	return f
}

// remoteFile is the File OpenRemote returns.
type remoteFile struct {
	// ctx is the reads' context, kept because io.Reader has no room for
	// one; Close cancels it.
	ctx       context.Context
	cancel    context.CancelFunc
	o         Object
	size      int64
	readAhead int64
	stall     time.Duration
	cache     *Cache // nil without a cache or a key
	counters  *Counters
	closed    atomic.Bool
	wg        sync.WaitGroup // read-ahead goroutines

	mu      sync.Mutex // Read and Seek
	off     int64
	lastEnd int64   // where the last Read ended; -1 before the first
	stream  *stream // the read-ahead, if a Read started one

	pmu    sync.Mutex
	pieces []piece // most recent last
	failed error   // ErrChanged: final
}

// piece is a range a random read fetched.
type piece struct {
	off int64
	buf []byte
}

func (f *remoteFile) name() string { return f.o.Info.Name() }

// Stat describes the object as it was opened.
func (f *remoteFile) Stat() (fs.FileInfo, error) {
	if f.closed.Load() {
		return nil, &fs.PathError{Op: "stat", Path: f.name(), Err: fs.ErrClosed}
	}
	return f.o.Info, nil
}

// Close stops the read-ahead and waits for it to end. Reads still
// running fail.
func (f *remoteFile) Close() error {
	if !f.closed.CompareAndSwap(false, true) {
		return &fs.PathError{Op: "close", Path: f.name(), Err: fs.ErrClosed}
	}
	f.cancel()
	// A Read under way (it ends now: its context is done) may be about
	// to start a read-ahead: wait for it, so that no wg.Add comes after
	// the Wait below.
	f.mu.Lock()
	f.stopStream()
	f.mu.Unlock()
	f.wg.Wait()
	f.pmu.Lock()
	f.pieces = nil
	f.pmu.Unlock()
	return nil
}

// usable reports why the file cannot be read, if it cannot.
func (f *remoteFile) usable(op string) error {
	if f.closed.Load() {
		return &fs.PathError{Op: op, Path: f.name(), Err: fs.ErrClosed}
	}
	if err := f.ctx.Err(); err != nil {
		return &fs.PathError{Op: op, Path: f.name(), Err: err}
	}
	f.pmu.Lock()
	defer f.pmu.Unlock()
	return f.failed
}

// Seek sets the offset of the next Read, as *os.File does.
func (f *remoteFile) Seek(offset int64, whence int) (int64, error) {
	if err := f.usable("seek"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.size
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.name(), Err: fmt.Errorf("%w: whence %d", fs.ErrInvalid, whence)}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.name(), Err: fmt.Errorf("%w: negative offset %d", fs.ErrInvalid, offset)}
	}
	// The read-ahead is kept: the next Read decides whether it is
	// still of use (ServeContent seeks to the end and back first).
	f.off = offset
	return offset, nil
}

// Read reads from the offset: from the read-ahead if the read continues
// the previous one, else as a random read.
func (f *remoteFile) Read(p []byte) (int, error) {
	if err := f.usable("read"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if f.off >= f.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), f.size-f.off)]
	n, err := f.read(p)
	f.off += int64(n)
	f.lastEnd = f.off
	return n, err
}

// read reads a first part of p at f.off < f.size.
func (f *remoteFile) read(p []byte) (int, error) {
	if f.stream != nil {
		n, err := f.stream.read(p, f.off)
		if n > 0 && err == nil {
			return n, nil
		}
		f.stopStream()
		if err != nil {
			return n, err
		}
	}
	if n := f.fromPieces(p, f.off); n > 0 {
		return n, nil
	}
	if f.off == f.lastEnd {
		f.stream = f.startStream(f.off)
		n, err := f.stream.read(p, f.off)
		if err != nil {
			f.stopStream()
		}
		return n, err
	}
	return f.readSome(p, f.off)
}

// ReadAt reads len(p) bytes at off as a random read, as *os.File does:
// fewer only with an error (io.EOF at the end). It does not touch the
// offset or the read-ahead, and is safe to call concurrently.
func (f *remoteFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.usable("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name(), Err: fmt.Errorf("%w: negative offset %d", fs.ErrInvalid, off)}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= f.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), f.size-off)
	done := 0
	for int64(done) < want {
		n, err := f.readSome(p[done:want], off+int64(done))
		done += n
		if err != nil {
			return done, err
		}
	}
	if want < int64(len(p)) {
		return done, io.EOF
	}
	return done, nil
}

// readSome reads a first part of p at off (off+len(p) <= size) from the
// pieces in memory, the cache, or a new piece. A read of a whole block
// that another reader is fetching waits for it; a smaller one does not
// (its piece costs less than the block).
func (f *remoteFile) readSome(p []byte, off int64) (int, error) {
	if n := f.fromPieces(p, off); n > 0 {
		return n, nil
	}
	if f.cache == nil {
		return f.fetchPiece(p, off, 0, f.size)
	}
	c, key := f.cache, f.o.Key
	idx := off / c.block
	lo, hi := idx*c.block, min((idx+1)*c.block, f.size)
	seg := p[:min(int64(len(p)), hi-off)]
	for {
		if c.read(key, idx, hi-lo, seg, off-lo) {
			f.counters.addCacheHit(len(seg))
			return len(seg), nil
		}
		if off != lo || int64(len(p)) < hi-lo {
			return f.fetchPiece(p, off, lo, hi)
		}
		held, wait := c.claim(key, idx, hi-lo)
		switch {
		case held: // stored meanwhile: read it
		case wait != nil:
			select {
			case <-wait:
			case <-f.ctx.Done():
				return 0, f.ctx.Err()
			}
		default:
			defer c.release(key, idx)
			return f.fetchPiece(p, off, lo, hi) // stores the block
		}
	}
}

// fromPieces copies into p what a piece holds at off.
func (f *remoteFile) fromPieces(p []byte, off int64) int {
	f.pmu.Lock()
	defer f.pmu.Unlock()
	for i := len(f.pieces) - 1; i >= 0; i-- {
		pc := f.pieces[i]
		if off >= pc.off && off < pc.off+int64(len(pc.buf)) {
			return copy(p, pc.buf[off-pc.off:])
		}
	}
	return 0
}

// fetchPiece reads a first part of p at off from the storage, fetching
// at most [lo, hi) (a cache block). A big read is fetched as asked and
// not kept; a small one fetches an aligned piece and keeps it, twice as
// big as the piece it follows.
func (f *remoteFile) fetchPiece(p []byte, off, lo, hi int64) (int, error) {
	whole := f.cache != nil && off == lo && int64(len(p)) >= hi-lo
	if len(p) >= pieceMax || whole {
		n := min(int64(len(p)), hi-off)
		if err := f.fetch(f.ctx, p[:n], off, nil); err != nil {
			return 0, err
		}
		if whole {
			f.cache.store(f.o.Key, lo/f.cache.block, p[:n])
		}
		return int(n), nil
	}
	start := max(lo, off/pieceMin*pieceMin)
	buf := make([]byte, min(start+f.pieceSize(start), hi)-start)
	if err := f.fetch(f.ctx, buf, start, nil); err != nil {
		return 0, err
	}
	f.pmu.Lock()
	f.pieces = append(f.pieces, piece{off: start, buf: buf})
	if len(f.pieces) > maxPieces {
		f.pieces = append(f.pieces[:0], f.pieces[1:]...)
	}
	f.pmu.Unlock()
	return copy(p, buf[off-start:]), nil
}

// pieceSize is the size of a piece starting at start: twice the one
// that ends there, else pieceMin.
func (f *remoteFile) pieceSize(start int64) int64 {
	f.pmu.Lock()
	defer f.pmu.Unlock()
	for _, pc := range f.pieces {
		if pc.off+int64(len(pc.buf)) == start {
			return min(2*int64(len(pc.buf)), pieceMax)
		}
	}
	return pieceMin
}

// fetch fills p with the bytes at off from the storage, repeating a
// request that failed with ErrUnavailable before giving a byte.
// progress, if not nil, is told how many bytes have arrived.
func (f *remoteFile) fetch(ctx context.Context, p []byte, off int64, progress func(int)) error {
	for attempt := 0; ; attempt++ {
		got, err := f.fetchOnce(ctx, p, off, progress)
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrChanged) {
			f.pmu.Lock()
			if f.failed == nil {
				f.failed = err
			}
			f.pmu.Unlock()
		}
		if got > 0 || attempt >= maxRetries || !retryable(ctx, err) {
			return err
		}
		if sleep(ctx, 100*time.Millisecond<<(2*attempt)) != nil {
			return err
		}
		f.counters.addRetry()
	}
}

// fetchOnce is one request for the bytes of p at off; it returns how
// many arrived.
//
// A stall timer, restarted by every byte that arrives, ends the request
// when the storage goes quiet for f.stall: before its answer's head or
// in the middle of its body.
func (f *remoteFile) fetchOnce(ctx context.Context, p []byte, off int64, progress func(int)) (int, error) {
	f.counters.addFetch()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(f.stall, func() { cancel(errStalled) })
	defer timer.Stop()
	rc, err := f.o.Fetch(ctx, off, int64(len(p)))
	if err != nil {
		return 0, f.stalled(ctx, err, off)
	}
	defer rc.Close()
	got := 0
	for got < len(p) {
		n, err := rc.Read(p[got:])
		got += n
		f.counters.addFetched(n)
		if n > 0 {
			timer.Reset(f.stall)
			if progress != nil {
				progress(got)
			}
		}
		switch {
		case got == len(p):
		case err == io.EOF:
			return got, &fs.PathError{Op: "read", Path: f.name(), Err: fmt.Errorf(
				"%w: %w: %d of %d bytes at %d", ErrUnavailable, io.ErrUnexpectedEOF, got, len(p), off)}
		case err != nil:
			return got, f.stalled(ctx, err, off)
		}
	}
	return got, nil
}

// stalled turns the error of a fetch that its stall timer ended into one
// wrapping ErrTimeout; others pass unchanged.
func (f *remoteFile) stalled(ctx context.Context, err error, off int64) error {
	if !errors.Is(context.Cause(ctx), errStalled) {
		return err
	}
	return &fs.PathError{Op: "read", Path: f.name(), Err: fmt.Errorf(
		"%w: no byte for %s at %d: %w", ErrTimeout, f.stall, off, err)}
}

// retryable reports whether a fetch that failed with err may be
// repeated: the storage was unavailable, not changed or gone, and the
// reader still waits.
func retryable(ctx context.Context, err error) bool {
	return ctx.Err() == nil &&
		errors.Is(err, ErrUnavailable) &&
		!errors.Is(err, ErrChanged) &&
		!errors.Is(err, ErrTimeout) &&
		!errors.Is(err, fs.ErrNotExist) &&
		!errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded)
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stream is a running read-ahead: a goroutine fetching windows in order.
type stream struct {
	cancel  context.CancelFunc
	start   int64        // where the first window starts
	windows chan *window // in order; closed when the goroutine ends
	// slots hold the buffers windows are made of (nil: not made yet).
	// There are two, so at most two windows exist: the one being read
	// and the next one, being fetched.
	slots chan []byte
	cur   *window // the window being read
	// pos is where the reader's last read from the read-ahead ended, and
	// waited whether a read waited for a window's bytes since the
	// goroutine last sized a window: the reader's pace, for nextWindow.
	pos    atomic.Int64
	waited atomic.Bool
}

// window is a range being fetched by the read-ahead.
type window struct {
	off    int64
	buf    []byte
	mu     sync.Mutex
	cond   sync.Cond
	filled int   // bytes of buf that arrived
	err    error // why the rest will not
}

func newWindow(off int64, buf []byte) *window {
	w := &window{off: off, buf: buf}
	w.cond.L = &w.mu
	return w
}

func (w *window) end() int64 { return w.off + int64(len(w.buf)) }

// advance makes the first n bytes readable.
func (w *window) advance(n int) {
	w.mu.Lock()
	w.filled = n
	w.mu.Unlock()
	w.cond.Broadcast()
}

// fail ends the window's bytes with err.
func (w *window) fail(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	w.cond.Broadcast()
}

// read copies into p bytes at off, waiting for the first to arrive;
// waited reports whether it had to.
func (w *window) read(p []byte, off int64) (n int, waited bool, err error) {
	i := int(off - w.off)
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.filled <= i && w.err == nil {
		waited = true
		w.cond.Wait()
	}
	if w.filled <= i {
		return 0, waited, w.err
	}
	return copy(p, w.buf[i:w.filled]), waited, nil
}

// startStream starts a read-ahead at off. Windows are sized by
// nextWindow from firstWindow to readAhead; with a cache they are whole
// blocks, the first one the block holding off.
func (f *remoteFile) startStream(off int64) *stream {
	start, unit, most := off, int64(firstWindow), max(f.readAhead, firstWindow)
	if f.cache != nil {
		b := f.cache.block
		start, unit, most = off/b*b, b, max(b, f.readAhead/b*b)
	}
	ctx, cancel := context.WithCancel(f.ctx)
	s := &stream{cancel: cancel, start: start, windows: make(chan *window, 2), slots: make(chan []byte, 2)}
	s.pos.Store(off)
	s.slots <- nil
	s.slots <- nil
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(s.windows)
		f.readAheadFrom(ctx, s, start, unit, most)
	}()
	return s
}

// stopStream stops the read-ahead; its goroutine ends on its own (Close
// waits for it).
func (f *remoteFile) stopStream() {
	if f.stream != nil {
		f.stream.cancel()
		f.stream = nil
	}
}

// readAheadFrom is the read-ahead goroutine: it fetches windows from pos
// to the end, each as soon as a slot is free, until ctx ends or a fetch
// fails. Windows are multiples of unit, the first one unit, up to most.
func (f *remoteFile) readAheadFrom(ctx context.Context, s *stream, pos, unit, most int64) {
	size := unit
	var (
		sized   int           // windows sized so far
		at      time.Time     // when the last one was sized
		readAt  int64         // and where the reader was then
		fetched time.Duration // how long the last window took to fill
	)
	for pos < f.size {
		var buf []byte
		select {
		case buf = <-s.slots:
		case <-ctx.Done():
			return
		}
		now, read := time.Now(), s.pos.Load()
		waited := s.waited.Swap(false)
		switch sized {
		case 0:
		case 1:
			// Nothing is known of the reader's pace yet, but it waited
			// for the first window (or will).
			size = min(2*size, most)
		default:
			size = nextWindow(size, unit, most, pace{
				waited: waited, ahead: pos - read, read: read - readAt, in: now.Sub(at), fetch: fetched,
			})
		}
		sized, at, readAt = sized+1, now, read
		n := min(size, f.size-pos)
		if int64(cap(buf)) < n || int64(cap(buf)) > 2*n {
			// A window that shrank lets its bigger buffer go.
			buf = make([]byte, n)
		}
		w := newWindow(pos, buf[:n])
		s.windows <- w // never blocks: it holds two, and there are two slots
		start := time.Now()
		if err := f.fillWindow(ctx, w); err != nil {
			w.fail(err)
			return
		}
		fetched = time.Since(start)
		pos += n
	}
}

// pace is what the read-ahead knows of its reader when it sizes a
// window.
type pace struct {
	waited bool          // a read waited for bytes since the last window was sized
	ahead  int64         // bytes fetched that the reader has not read yet
	read   int64         // bytes it read since the last window was sized
	in     time.Duration // the time since then
	fetch  time.Duration // how long the last window took to fill
}

// nextWindow returns the size of the read-ahead's next window, from unit
// to most (multiples of unit), size that of the last one. The bytes
// ahead of the reader should last it, at the pace it read since the last
// window was sized, the time of a fetch plus aheadMargin ("need"): the
// window doubles if the reader waited or they would not (the window in
// hand is about to be read before the next would arrive); if they would
// last four times that, it halves, as long as it stays at least twice
// need; otherwise it stays. So a reader as fast as the storage waits and
// gets windows of most, and a player paced at R bytes a second soon
// holds no more than about R × (fetch + aheadMargin) × 4 (two windows)
// however fast it read at first.
func nextWindow(size, unit, most int64, p pace) int64 {
	if p.waited || p.in <= 0 {
		return min(2*size, most) // too fast to measure
	}
	need := float64(p.read) / p.in.Seconds() * (p.fetch + aheadMargin).Seconds()
	switch {
	case float64(p.ahead) < need:
		return min(2*size, most)
	case float64(p.ahead) >= 4*need:
		for half := size / 2 / unit * unit; half >= unit && float64(half) >= 2*need; half = size / 2 / unit * unit {
			size = half
		}
	}
	return size
}

// read reads a first part of p at off from the window holding off, when
// off is in the current window or where it ends. It returns 0 and no
// error when the read-ahead is of no use at off.
func (s *stream) read(p []byte, off int64) (int, error) {
	if s.cur == nil || off == s.cur.end() {
		if s.cur != nil {
			s.slots <- s.cur.buf // never blocks: the slot was taken for it
		}
		w, ok := <-s.windows
		if !ok {
			return 0, errors.New("read-ahead stopped")
		}
		s.cur = w
	}
	if off < s.cur.off || off >= s.cur.end() {
		return 0, nil
	}
	n, waited, err := s.cur.read(p, off)
	if waited {
		s.waited.Store(true)
	}
	s.pos.Store(off + int64(n))
	return n, err
}

// fillWindow fetches w's bytes, making them readable as they arrive. With
// a cache, held blocks are read from it, a block another reader is
// fetching is waited for and then read from it, and runs of the other
// blocks are fetched together, each block stored (and the readers
// waiting for it woken) as soon as its bytes are in.
func (f *remoteFile) fillWindow(ctx context.Context, w *window) error {
	if f.cache == nil {
		return f.fetch(ctx, w.buf, w.off, w.advance)
	}
	c, key, b := f.cache, f.o.Key, f.cache.block
	done := 0
	for done < len(w.buf) {
		off := w.off + int64(done)
		idx := off / b
		blen := int(min(b, f.size-off))
		if c.read(key, idx, int64(blen), w.buf[done:done+blen], 0) {
			f.counters.addCacheHit(blen)
			done += blen
			w.advance(done)
			continue
		}
		held, wait := c.claim(key, idx, int64(blen))
		if held {
			continue
		}
		if wait != nil {
			select {
			case <-wait:
				continue // look again: stored, or to be fetched here
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		// Claimed. The blocks after it that no one holds or fetches
		// come in the same request.
		run := blen
		for done+run < len(w.buf) {
			next := off + int64(run)
			nlen := int(min(b, f.size-next))
			if held, wait := c.claim(key, next/b, int64(nlen)); held || wait != nil {
				break
			}
			run += nlen
		}
		base, stored := done, 0 // stored: bytes of the run stored and released
		err := f.fetch(ctx, w.buf[done:done+run], off, func(n int) {
			w.advance(base + n)
			for stored < run && n >= stored+int(min(b, int64(run-stored))) {
				end := stored + int(min(b, int64(run-stored)))
				c.store(key, idx+int64(stored)/b, w.buf[base+stored:base+end])
				c.release(key, idx+int64(stored)/b)
				stored = end
			}
		})
		for ; stored < run; stored += int(b) {
			c.release(key, idx+int64(stored)/b) // failed: a waiter fetches it
		}
		if err != nil {
			return err
		}
		done += run
	}
	return nil
}
