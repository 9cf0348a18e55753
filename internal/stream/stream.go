// Package stream serves the bytes of one media file over HTTP with the
// semantics of http.ServeContent (Range, multi-range, If-Range,
// If-None-Match, If-Modified-Since, If-Unmodified-Since, HEAD, 206/304/412/416),
// a content type from our own table (never sniffed), a strong ETag that is
// the same on every node for an unchanged file, a cap on range abuse, and a
// per-write stall deadline instead of an overall write timeout.
//
// It keeps the kernel's zero-copy path: the body reaches the connection as
// an io.LimitedReader over the *os.File, which net/http hands to sendfile.
// ServePaced hands the body to a pace.Pacer (see paced.go), which decides
// when its bytes go out. It does not authorise.
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mustserv/internal/media"
	"mustserv/internal/storage"
)

// MaxRanges is the most ranges one request may ask for; a request with more
// gets the whole file with 200, as nginx's max_ranges does.
const MaxRanges = 16

// Server serves files. Its zero value is not usable; use New.
type Server struct {
	stall  time.Duration
	pacing Pacing
}

// New returns a Server that cuts a response when its client accepts no
// bytes for stall.
func New(stall time.Duration) *Server {
	return &Server{stall: stall}
}

// ETag returns the strong entity tag of a file: its modification time and
// size. Both are the same on every node that sees the same file, so a seek
// that lands on another node still matches (VLC sends If-Unmodified-Since
// and players send If-Range).
func ETag(fi fs.FileInfo) string {
	b := make([]byte, 0, 36)
	b = append(b, '"')
	b = strconv.AppendInt(b, fi.ModTime().UnixNano(), 36)
	b = append(b, '-')
	b = strconv.AppendInt(b, fi.Size(), 36)
	b = append(b, '"')
	return string(b)
}

// Serve writes f, described by fi, as the response to r.
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, f storage.File, fi fs.FileInfo) {
	s.serveFile(w, r, f, fi, nil)
}

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, f storage.File, fi fs.FileInfo, pb *pacedBody) {
	if _, local := f.(*os.File); !local && pb != nil {
		pb.remote = true
	}
	s.serve(w, r, fi.Name(), fi.ModTime(), ETag(fi), fi.Size(), &source{f: f, size: fi.Size()}, pb)
}

// serve writes content, the size bytes of the file name, as the response
// to r, paced when pb is not nil.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, name string, modTime time.Time, etag string, size int64, content io.ReadSeeker, pb *pacedBody) {
	h := w.Header()
	_, ctype := media.TypeOf(name)
	h["Content-Type"] = []string{ctype}
	h["Etag"] = []string{etag}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	if rg := r.Header.Get("Range"); rg != "" {
		if h, changed := rangePolicy(rg, size); changed {
			r2 := *r
			r2.Header = r.Header.Clone()
			if h == "" {
				r2.Header.Del("Range")
			} else {
				r2.Header.Set("Range", h)
			}
			r = &r2
		}
	}
	bw := &bodyWriter{ResponseWriter: w, stall: s.stall, gone: r.Context().Done(), ctx: r.Context(), r: r, paced: pb}
	defer bw.finish()
	http.ServeContent(bw, r, name, modTime, content)
}

// FirstBytes reads the first byte a GET of a remote file will send, so
// that a storage that is down or too slow is answered with 502 or 504
// rather than a 200 whose body never comes (the status goes out before
// the body is read). The byte's piece stays in the file for the body; a
// local file is not read. A front end calls it before Serve or
// ServePaced and answers its error as it answers a failed open.
func FirstBytes(r *http.Request, f storage.File, fi fs.FileInfo) error {
	if _, local := f.(*os.File); local || r.Method != http.MethodGet || fi.Size() == 0 {
		return nil
	}
	if r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != "" {
		return nil // likely a 304: no byte to send
	}
	var start int64
	if rg := r.Header.Get("Range"); rg != "" {
		rs, err := ParseRanges(rg, fi.Size())
		if err != nil || len(rs) == 0 {
			return nil // ServeContent answers it (416, or the whole file)
		}
		start = rs[0].Start
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], start); err != nil && err != io.EOF {
		return err
	}
	return nil
}

// source is the file being served, with its size known from the caller's
// Stat: ServeContent's size probe (a Seek to the end and back) and its Seek
// to a range's start then cost no system call. The kernel's file offset is
// brought in line only before bytes are read or sent, which for a whole
// file freshly opened is never. bodyWriter.ReadFrom hands the *os.File
// itself to the connection, so sendfile still applies.
type source struct {
	f      storage.File // an *os.File for a local file; else a remote one
	size   int64
	off    int64 // the offset ServeContent works with
	kernel int64 // the file's offset in the kernel, -1 when unknown
}

func (s *source) Seek(offset int64, whence int) (int64, error) {
	off, err := seekTo(s.off, s.size, offset, whence)
	if err != nil {
		return s.off, err
	}
	s.off = off
	return off, nil
}

// seekTo returns the offset a Seek(offset, whence) moves to from cur in a
// file of size bytes.
func seekTo(cur, size, offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += cur
	case io.SeekEnd:
		offset += size
	case io.SeekStart:
	default:
		return cur, errors.New("seek: invalid whence")
	}
	if offset < 0 {
		return cur, errors.New("seek: negative position")
	}
	return offset, nil
}

// sync moves the kernel's offset to s.off.
func (s *source) sync() error {
	if s.kernel == s.off {
		return nil
	}
	if _, err := s.f.Seek(s.off, io.SeekStart); err != nil {
		s.kernel = -1
		return err
	}
	s.kernel = s.off
	return nil
}

// Read serves the multipart path, which copies through a pipe.
func (s *source) Read(p []byte) (int, error) {
	if err := s.sync(); err != nil {
		return 0, err
	}
	n, err := s.f.Read(p)
	s.off += int64(n)
	s.kernel = s.off
	return n, err
}

// rangePolicy decides what becomes of a Range header before
// http.ServeContent sees it, judging the ranges exactly as ServeContent
// will parse them. It returns the header to use ("" for none) and whether
// that differs from h:
//   - more than MaxRanges ranges, or several that are not in ascending
//     order without overlaps (adjacent ones are fine), are ignored: the
//     whole representation with 200, never a huge multipart body (RFC 9110
//     §14.2 allows ignoring them);
//   - a suffix of zero bytes ("-0") is unsatisfiable (§14.1.1), but
//     net/http answers it with a 206 whose Content-Range is invalid
//     ("bytes 5000-4999/5000", golang/go#81262): such specs are dropped,
//     and a header left with none asks for a range past the end, so that
//     ServeContent answers 416 with "Content-Range: bytes */size" after
//     checking preconditions as usual.
//
// A header it cannot parse is left to ServeContent, which answers it with
// 416, however many ranges it has.
func rangePolicy(h string, size int64) (string, bool) {
	n, empty := 0, 0
	sorted := true
	var prev Range
	err := scanRanges(h, size, func(r Range) {
		if r.Length == 0 {
			empty++
			return
		}
		if n > 0 && r.Start < prev.End() {
			sorted = false
		}
		n++
		prev = r
	})
	switch {
	case err != nil:
		return h, false
	case n > MaxRanges || !sorted:
		return "", true
	case empty == 0:
		return h, false
	case n == 0:
		return "bytes=" + strconv.FormatInt(size, 10) + "-", true
	}
	var b strings.Builder
	b.WriteString("bytes=")
	scanRanges(h, size, func(r Range) {
		if r.Length == 0 {
			return
		}
		if b.Len() > len("bytes=") {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d-%d", r.Start, r.End()-1)
	})
	return b.String(), true
}

// Range is one satisfiable byte range of a representation.
type Range struct {
	Start, Length int64
}

// End returns the offset one past the range's last byte.
func (r Range) End() int64 { return r.Start + r.Length }

// errRange is returned by ParseRanges for a malformed header.
type errRange string

func (e errRange) Error() string { return "invalid range: " + string(e) }

// ParseRanges parses a Range header against a representation of size bytes:
// "bytes=" then comma-separated first-last, first- or -suffix specs (RFC
// 9110 §14.1.2), in the order given. Specs that start past the end are
// dropped, and so is a suffix of 0 (unsatisfiable, §14.1.1); if none is
// left the result is empty with no error. A malformed header is an error.
//
// It accepts exactly what http.ServeContent accepts, leniencies included:
// a '+' before a number (strconv.ParseInt takes one), spaces and tabs
// around specs and numbers, and any last-byte-pos in a spec that starts
// past the end. The range policy relies on this: it must judge the ranges
// ServeContent will serve.
func ParseRanges(h string, size int64) ([]Range, error) {
	var rs []Range
	err := scanRanges(h, size, func(r Range) {
		if r.Length > 0 {
			rs = append(rs, r)
		}
	})
	if err != nil {
		return nil, err
	}
	return rs, nil
}

// scanRanges calls fn with each range of h, a Range header, that net/http's
// parseRange would serve, in order: including the empty range it makes of
// a suffix of 0. It mirrors parseRange (net/http/fs.go) step by step.
func scanRanges(h string, size int64, fn func(Range)) error {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return errRange("unit is not bytes")
	}
	for ra := range strings.SplitSeq(spec, ",") {
		ra = textproto.TrimString(ra)
		if ra == "" {
			continue
		}
		first, last, ok := strings.Cut(ra, "-")
		if !ok {
			return errRange("missing dash")
		}
		first, last = textproto.TrimString(first), textproto.TrimString(last)
		if first == "" {
			// parseRange rejects "--0" here, though it takes "0--0" below.
			if strings.HasPrefix(last, "-") {
				return errRange("negative suffix")
			}
			n, err := parseNum(last)
			if err != nil {
				return err
			}
			n = min(n, size)
			fn(Range{Start: size - n, Length: n})
			continue
		}
		start, err := parseNum(first)
		if err != nil {
			return err
		}
		if start >= size {
			// Unsatisfiable; net/http skips it before looking at last.
			continue
		}
		end := size - 1
		if last != "" {
			e, err := strconv.ParseInt(last, 10, 64)
			if err != nil {
				return errRange("not a number")
			}
			if e < start {
				return errRange("last before first")
			}
			end = min(e, size-1)
		}
		fn(Range{Start: start, Length: end - start + 1})
	}
	return nil
}

// parseNum parses a byte position as net/http does, with
// strconv.ParseInt: a leading '+' is accepted, and so is "-0".
func parseNum(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errRange("not a number")
	}
	return n, nil
}

// Chunk sizes for bodyWriter: a stall deadline is set before each chunk.
// A chunk the client takes only part of within the deadline is resumed, so
// the size sets how often the deadline is renewed, not how fast a client
// must read: large enough that a fast client costs few system calls.
const (
	firstChunk = 64 << 10
	minChunk   = 4 << 10
	maxChunk   = 4 << 20
)

// bodyWriter sets a write deadline of now+stall before every chunk of the
// body, so a client that stops reading is cut (within two stalls of its
// last read) while a slow but steady one streams for as long as it likes.
// It keeps sendfile: ReadFrom hands each chunk to the connection as an
// io.LimitedReader over the same source.
type bodyWriter struct {
	http.ResponseWriter
	ctx    context.Context // the request's: it may carry the connection
	cork   syscall.RawConn // the connection's socket, once corked
	corked bool
	stall  time.Duration
	// gone is the request context's Done channel: net/http closes it
	// when a write to the connection fails or the client goes away.
	gone  <-chan struct{}
	rc    *http.ResponseController
	chunk int64
	r     *http.Request
	paced *pacedBody // nil: not paced
}

// WriteHeader admits a paced body once its status is known.
func (w *bodyWriter) WriteHeader(code int) {
	if w.paced != nil && !w.admit(code) {
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *bodyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *bodyWriter) arm() {
	if w.rc == nil {
		w.rc = http.NewResponseController(w.ResponseWriter)
	}
	// An error means the connection cannot take deadlines (HTTP/2 test
	// recorders); the stream then goes on without one.
	w.rc.SetWriteDeadline(time.Now().Add(w.stall))
}

// finish arms one last deadline for what net/http writes after the
// handler returns: it holds back a body's first 512 bytes (all of a small
// range, such as Safari's first request, bytes=0-1), and writes a 304's or
// an error page's (412, 416) headers then. Without it a client that
// pipelines requests and never reads would hold the connection forever.
// net/http clears the write deadline itself once the response is finished
// (server.go, right after finishRequest), so a kept-alive connection's
// next response does not inherit it.
//
// A corked socket is flushed and uncorked here, so that the response's
// last bytes leave at once.
func (w *bodyWriter) finish() {
	if w.paced != nil && w.paced.stream != nil {
		w.paced.stream.Release() // admitted, but no body went out
	}
	if w.paced != nil && w.paced.hijacked {
		return // the connection is the pacer's
	}
	w.arm()
	if w.corked {
		http.NewResponseController(w.ResponseWriter).Flush()
		w.setCork(false)
	}
}

// corkChunk is the chunk size from which a file body is sent corked: a
// client that takes chunks this large within a quarter of the stall
// deadline is fast.
const corkChunk = 1 << 20

// setCork sets TCP_CORK on the connection, when ConnContext put it in the
// request's context, or clears it. Corked, the kernel sends full segments
// only, as nginx's tcp_nopush does, instead of pushing each sendfile's
// tail as a short segment: for a fast client about a fifth more
// throughput on loopback (docs/benchmarks.md). A slow client (small
// chunks) is never corked: with a receive window smaller than a segment,
// corked data would wait for the kernel's 200 ms cork ceiling again and
// again. finish uncorks.
func (w *bodyWriter) setCork(on bool) {
	if on == w.corked {
		return
	}
	if w.cork == nil {
		if !on || w.ctx == nil {
			return
		}
		tc, ok := w.ctx.Value(connKey{}).(*net.TCPConn)
		if !ok {
			return
		}
		rc, err := tc.SyscallConn()
		if err != nil {
			return
		}
		w.cork = rc
	}
	if setCork(w.cork, on) == nil {
		w.corked = on
	}
}

func (w *bodyWriter) Write(p []byte) (int, error) {
	if w.paced != nil && w.paced.refused {
		return 0, errRefused
	}
	w.arm()
	return w.ResponseWriter.Write(p)
}

// ReadFrom copies src in chunks sized to the client's observed speed: about
// a quarter of the stall deadline's worth of bytes, within [minChunk,
// maxChunk].
//
// A client that takes some but not all of a chunk within the deadline is
// slow, not stalled (and the kernel's socket buffers make a chunk look
// instant until they fill, so a chunk can be far larger than the client's
// speed allows): when the body is a file (a *source), the chunk resumes
// after the bytes sent under a new deadline. Only a deadline that passes
// with no byte taken cuts the client. Any other reader (the pipe of a
// multipart body) cannot be resumed, because a copy may have read more
// than it wrote.
func (w *bodyWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.paced != nil {
		if lr, ok := r.(*io.LimitedReader); ok {
			if n, took, err := w.pacedReadFrom(lr); took {
				return n, err
			}
		}
	}
	return w.readFrom(r)
}

func (w *bodyWriter) readFrom(r io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{w}, r)
	}
	lr, ok := r.(*io.LimitedReader)
	if !ok {
		lr = &io.LimitedReader{R: r, N: 1<<63 - 1}
	}
	if m, ok := lr.R.(*memSource); ok {
		// A cached file: the range is in memory, one write sends it.
		start := min(m.off, int64(len(m.data)))
		end := min(start+lr.N, int64(len(m.data)))
		n, err := w.Write(m.data[start:end])
		m.off += int64(n)
		lr.N -= int64(n)
		return int64(n), err
	}
	src, resumable := lr.R.(*source)
	if w.chunk == 0 {
		w.chunk = firstChunk
	}
	var total int64
	chunk := &io.LimitedReader{R: lr.R}
	for lr.N > 0 {
		chunk.N = min(lr.N, w.chunk)
		want := chunk.N
		if resumable {
			if err := src.sync(); err != nil {
				return total, err
			}
			chunk.R = src.f // an *os.File: the connection uses sendfile
			w.setCork(w.chunk >= corkChunk)
		}
		w.arm()
		start := time.Now()
		n, err := rf.ReadFrom(chunk)
		took := max(time.Since(start), time.Microsecond)
		total += n
		lr.N -= n
		if resumable {
			src.off += n
			src.kernel = src.off
		}
		if err != nil {
			if !resumable || !w.slow(n, err) {
				return total, err
			}
			// A copy that failed may have read further than it sent.
			src.kernel = -1
		} else if n < want {
			return total, nil
		}
		quarter := float64(w.stall) / 4
		w.chunk = min(max(int64(float64(n)*quarter/float64(took)), minChunk), maxChunk)
	}
	return total, nil
}

// slow reports whether a chunk that ended with err after n bytes may be
// resumed: its deadline passed after the client took some bytes, and
// nothing else failed on the connection. The last condition matters
// because net/http writes the headers and the first 512 bytes through a
// buffer whose write errors it keeps (and reports by cancelling the
// request's context): resuming after one would leave a hole in the body.
func (w *bodyWriter) slow(n int64, err error) bool {
	if n == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	select {
	case <-w.gone:
		return false
	default:
		return true
	}
}

// writerOnly hides ReadFrom so io.Copy does not recurse into it.
type writerOnly struct{ io.Writer }
