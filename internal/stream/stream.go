// Package stream serves the bytes of one media file over HTTP with the
// semantics of http.ServeContent (Range, multi-range, If-Range,
// If-None-Match, If-Modified-Since, If-Unmodified-Since, HEAD, 206/304/412/416),
// a content type from our own table (never sniffed), a strong ETag that is
// the same on every node for an unchanged file, a cap on range abuse, and a
// per-write stall deadline instead of an overall write timeout.
//
// It keeps the kernel's zero-copy path: the body reaches the connection as
// an io.LimitedReader over the *os.File, which net/http hands to sendfile.
// It does not pace (that is the pacer's job) and does not authorise.
package stream

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"mustserv/internal/media"
)

// MaxRanges is the most ranges one request may ask for; a request with more
// gets the whole file with 200, as nginx's max_ranges does.
const MaxRanges = 16

// Server serves files. Its zero value is not usable; use New.
type Server struct {
	stall time.Duration
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
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo) {
	h := w.Header()
	_, ctype := media.TypeOf(fi.Name())
	h["Content-Type"] = []string{ctype}
	h["Etag"] = []string{ETag(fi)}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	if rg := r.Header.Get("Range"); rg != "" && !acceptableRanges(rg, fi.Size()) {
		// RFC 9110 §14.2: a server MAY ignore a Range header with many
		// small or unsorted or overlapping ranges; ignoring sends the
		// whole representation with 200, never a huge multipart body.
		r2 := *r
		r2.Header = r.Header.Clone()
		r2.Header.Del("Range")
		r = &r2
	}
	bw := &bodyWriter{ResponseWriter: w, stall: s.stall}
	defer bw.clearDeadline()
	http.ServeContent(bw, r, fi.Name(), fi.ModTime(), f)
}

// acceptableRanges reports whether a Range header may be honoured: at most
// MaxRanges ranges and, when there are several, in ascending order without
// overlaps. Headers it cannot parse are left to http.ServeContent, which
// answers them with 416.
func acceptableRanges(h string, size int64) bool {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return true
	}
	if strings.Count(spec, ",") >= MaxRanges {
		return false
	}
	if !strings.Contains(spec, ",") {
		return true
	}
	rs, err := ParseRanges(h, size)
	if err != nil {
		return true
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].Start <= rs[i-1].End() {
			return false
		}
	}
	return true
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

// ParseRanges parses a Range header against a representation of size bytes
// as RFC 9110 §14.1.2 defines it: "bytes=" then comma-separated first-last,
// first- or -suffix specs. Specs that start past the end are dropped; if none
// is left the result is empty with no error (unsatisfiable). A malformed
// header is an error.
func ParseRanges(h string, size int64) ([]Range, error) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return nil, errRange("unit is not bytes")
	}
	var rs []Range
	for ra := range strings.SplitSeq(spec, ",") {
		ra = strings.TrimSpace(ra)
		if ra == "" {
			continue
		}
		first, last, ok := strings.Cut(ra, "-")
		if !ok {
			return nil, errRange("missing dash")
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		if first == "" {
			n, err := parseDigits(last)
			if err != nil {
				return nil, err
			}
			n = min(n, size)
			if n > 0 {
				rs = append(rs, Range{Start: size - n, Length: n})
			}
			continue
		}
		start, err := parseDigits(first)
		if err != nil {
			return nil, err
		}
		end := size - 1
		if last != "" {
			e, err := parseDigits(last)
			if err != nil {
				return nil, err
			}
			if e < start {
				return nil, errRange("last before first")
			}
			end = min(e, size-1)
		}
		if start >= size {
			continue
		}
		rs = append(rs, Range{Start: start, Length: end - start + 1})
	}
	return rs, nil
}

func parseDigits(s string) (int64, error) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, errRange("not a number")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errRange("not a number")
	}
	return n, nil
}

// Chunk sizes for bodyWriter: a stall deadline is set before each chunk, so
// a chunk must be small enough for a slow client to take within the
// deadline, and large enough that a fast one costs few system calls.
const (
	firstChunk = 64 << 10
	minChunk   = 4 << 10
	maxChunk   = 4 << 20
)

// bodyWriter sets a write deadline of now+stall before every chunk of the
// body, so a client that stops reading is cut while a slow but steady one
// streams for as long as it likes. It keeps sendfile: ReadFrom hands each
// chunk to the connection as an io.LimitedReader over the same source.
type bodyWriter struct {
	http.ResponseWriter
	stall time.Duration
	rc    *http.ResponseController
	chunk int64
	armed bool
}

// Unwrap lets http.ResponseController reach the connection.
func (w *bodyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *bodyWriter) arm() {
	if w.rc == nil {
		w.rc = http.NewResponseController(w.ResponseWriter)
	}
	// An error means the connection cannot take deadlines (HTTP/2 test
	// recorders); the stream then goes on without one.
	if w.rc.SetWriteDeadline(time.Now().Add(w.stall)) == nil {
		w.armed = true
	}
}

// clearDeadline removes the deadline so that a kept-alive connection's next
// response does not inherit it.
func (w *bodyWriter) clearDeadline() {
	if w.armed {
		w.rc.SetWriteDeadline(time.Time{})
	}
}

func (w *bodyWriter) Write(p []byte) (int, error) {
	w.arm()
	return w.ResponseWriter.Write(p)
}

// ReadFrom copies src in chunks sized to the client's observed speed: about
// a quarter of the stall deadline's worth of bytes, within [minChunk,
// maxChunk].
func (w *bodyWriter) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{w}, src)
	}
	lr, ok := src.(*io.LimitedReader)
	if !ok {
		lr = &io.LimitedReader{R: src, N: 1<<63 - 1}
	}
	if w.chunk == 0 {
		w.chunk = firstChunk
	}
	var total int64
	chunk := &io.LimitedReader{R: lr.R}
	for lr.N > 0 {
		chunk.N = min(lr.N, w.chunk)
		want := chunk.N
		w.arm()
		start := time.Now()
		n, err := rf.ReadFrom(chunk)
		total += n
		lr.N -= n
		if err != nil || n < want {
			return total, err
		}
		quarter := float64(w.stall) / 4
		took := float64(max(time.Since(start), time.Microsecond))
		w.chunk = min(max(int64(float64(n)*quarter/took), minChunk), maxChunk)
	}
	return total, nil
}

// writerOnly hides ReadFrom so io.Copy does not recurse into it.
type writerOnly struct{ io.Writer }
