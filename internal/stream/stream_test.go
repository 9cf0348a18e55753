package stream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/media"
	"mustserv/internal/storage"
)

// content returns n deterministic bytes that do not repeat (a seeded
// ChaCha8 stream), so a body cut at the wrong offset can never match.
func content(seed byte, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{'m', 'u', 's', 't', seed}).Read(b)
	return b
}

// writeFile writes data to dir/name with modification time mtime and
// returns its path.
func writeFile(t testing.TB, dir, name string, data []byte, mtime time.Time) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return p
}

// fileHandler serves the file of dir named by the last element of the URL
// path with serve, failing t if it cannot be opened.
//
// serve takes the file as an *os.File or as a storage.File (Serve itself).
func fileHandler[F storage.File](t testing.TB, dir string, serve func(http.ResponseWriter, *http.Request, F, fs.FileInfo)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(filepath.Join(dir, path.Base(r.URL.Path)))
		if err != nil {
			t.Errorf("handler: %v", err)
			http.Error(w, "no file", http.StatusInternalServerError)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			t.Errorf("handler: %v", err)
			http.Error(w, "no stat", http.StatusInternalServerError)
			return
		}
		serve(w, r, any(f).(F), fi)
	})
}

// serveStdlib is the reference: what plain http.ServeContent answers when
// given the same Content-Type and ETag that Serve sets.
func serveStdlib(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo) {
	_, ctype := media.TypeOf(fi.Name())
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Etag", ETag(fi))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

// newClient returns a client that asks for no transparent compression, so
// the bytes checked are the bytes served.
func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// reply is what a test checks of a response. Bodies are described by
// describe so that a mismatch reads as "file[5:10]" versus "file[0:5]".
type reply struct {
	Status        int
	ContentRange  string
	ContentLength int64
	ContentType   string
	AcceptRanges  string
	ETag          string
	LastModified  string
	NoSniff       string
	// TransferEncoding catches a change of framing: every response here
	// has a Content-Length or no body, never chunked encoding.
	TransferEncoding []string
	Body             string
	Parts            []part
}

// part is one part of a multipart/byteranges body.
type part struct {
	ContentRange string
	ContentType  string
	Body         string
}

// describe names b by where it is in file: "file[a:b]" when it is a slice
// of file (the first such slice, so equal descriptions mean equal bytes),
// else the bytes themselves when short, else their length and hash.
func describe(file, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if i := bytes.Index(file, b); i >= 0 {
		return fmt.Sprintf("file[%d:%d]", i, i+len(b))
	}
	if len(b) <= 80 {
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("%d bytes not from the file, sha256 %x", len(b), sha256.Sum256(b))
}

// readReply reads resp to its end and summarises it against file, the
// served file's content, parsing a multipart/byteranges body into parts.
func readReply(t testing.TB, resp *http.Response, file []byte) reply {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	h := resp.Header
	got := reply{
		Status:           resp.StatusCode,
		ContentRange:     h.Get("Content-Range"),
		ContentLength:    resp.ContentLength,
		ContentType:      h.Get("Content-Type"),
		AcceptRanges:     h.Get("Accept-Ranges"),
		ETag:             h.Get("Etag"),
		LastModified:     h.Get("Last-Modified"),
		NoSniff:          h.Get("X-Content-Type-Options"),
		TransferEncoding: resp.TransferEncoding,
	}
	if resp.Request.Method != http.MethodHead && resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength {
		t.Errorf("body has %d bytes, Content-Length says %d", len(body), resp.ContentLength)
	}
	mt, params, _ := mime.ParseMediaType(got.ContentType)
	if mt != "multipart/byteranges" {
		got.Body = describe(file, body)
		return got
	}
	got.ContentType = mt
	if resp.Request.Method == http.MethodHead {
		return got
	}
	if params["boundary"] == "" {
		t.Errorf("multipart/byteranges without a boundary: %q", h.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart body: %v", err)
		}
		pb, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("multipart part: %v", err)
		}
		got.Parts = append(got.Parts, part{
			ContentRange: p.Header.Get("Content-Range"),
			ContentType:  p.Header.Get("Content-Type"),
			Body:         describe(file, pb),
		})
	}
	return got
}

// fetch sends one request and returns the summarised reply.
func fetch(t testing.TB, c *http.Client, method, url string, header map[string]string, file []byte) reply {
	t.Helper()
	return readReply(t, send(t, c, method, url, header), file)
}

// send sends one request with the header fields given as they are.
func send(t testing.TB, c *http.Client, method, url string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[textproto.CanonicalMIMEHeaderKey(k)] = []string{v}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp
}

// span is the half-open byte interval [start, end) of a file.
type span struct{ start, end int64 }

// spans returns the header "bytes=..." for n ranges of 5 bytes, 10 apart,
// sorted and disjoint, and the spans they select.
func spans(n int) (string, []span) {
	var specs []string
	var ss []span
	for i := range int64(n) {
		specs = append(specs, fmt.Sprintf("%d-%d", i*10, i*10+4))
		ss = append(ss, span{i * 10, i*10 + 5})
	}
	return "bytes=" + strings.Join(specs, ","), ss
}

// multipartSize is the length of the multipart/byteranges body that
// selects ss of data with parts of type ctype: the same multipart.Writer
// framing http.ServeContent uses, and the same boundary length.
func multipartSize(data []byte, ctype string, ss []span) int64 {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, s := range ss {
		pw, _ := mw.CreatePart(textproto.MIMEHeader{
			"Content-Range": {fmt.Sprintf("bytes %d-%d/%d", s.start, s.end-1, len(data))},
			"Content-Type":  {ctype},
		})
		pw.Write(data[s.start:s.end])
	}
	mw.Close()
	return int64(buf.Len())
}

// rangeCase is one request of TestServeRanges.
type rangeCase struct {
	name   string
	file   string // in the fixture directory; "clip.mp3" when empty
	method string // GET when empty
	header map[string]string
	// policy marks a request that Serve answers differently from plain
	// http.ServeContent on purpose (too many, unsorted or overlapping
	// ranges); every other case must also match the stdlib exactly.
	policy bool
	want   reply
}

// The fixture of TestServeRanges.
const (
	clipSize = 5000
	htmlPage = "<!DOCTYPE html><html><head><title>x</title></head><body><script>alert(1)</script></body></html>\n"
)

// fixtureTime is the modification time of every fixture file.
func fixtureTime() time.Time { return time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC) }

// rangeCases returns the table of TestServeRanges for fixture files whose
// contents are files and whose ETags are etags.
func rangeCases(files map[string][]byte, etags map[string]string) []rangeCase {
	const (
		lastMod = "Fri, 01 Mar 2024 12:00:00 GMT" // fixtureTime
		older   = "Thu, 29 Feb 2024 12:00:00 GMT"
		newer   = "Sat, 02 Mar 2024 12:00:00 GMT"
		mp3     = "audio/mpeg"
		octet   = "application/octet-stream"
		text    = "text/plain; charset=utf-8"
		size    = clipSize
	)
	clip := files["clip.mp3"]
	etag := etags["clip.mp3"]

	// full is a 200 with the whole of file, served as ctype.
	full := func(file, ctype string) reply {
		data := files[file]
		return reply{
			Status: 200, ContentLength: int64(len(data)), ContentType: ctype, AcceptRanges: "bytes",
			ETag: etags[file], LastModified: lastMod, NoSniff: "nosniff", Body: describe(data, data),
		}
	}
	// partial is a 206 with clip's bytes first to last, inclusive.
	partial := func(first, last int64) reply {
		return reply{
			Status: 206, ContentRange: fmt.Sprintf("bytes %d-%d/%d", first, last, size),
			ContentLength: last - first + 1, ContentType: mp3, AcceptRanges: "bytes",
			ETag: etag, LastModified: lastMod, NoSniff: "nosniff", Body: describe(clip, clip[first:last+1]),
		}
	}
	// multi is a 206 multipart/byteranges with the spans ss of clip.
	multi := func(ss ...span) reply {
		r := reply{
			Status: 206, ContentLength: multipartSize(clip, mp3, ss), ContentType: "multipart/byteranges",
			AcceptRanges: "bytes", ETag: etag, LastModified: lastMod, NoSniff: "nosniff",
		}
		for _, s := range ss {
			r.Parts = append(r.Parts, part{
				ContentRange: fmt.Sprintf("bytes %d-%d/%d", s.start, s.end-1, size),
				ContentType:  mp3,
				Body:         describe(clip, clip[s.start:s.end]),
			})
		}
		return r
	}
	// serveError is what http.ServeContent's serveError sends: a text
	// body, and no ETag or Last-Modified.
	serveError := func(status int, contentRange, msg string) reply {
		return reply{
			Status: status, ContentRange: contentRange, ContentLength: int64(len(msg) + 1),
			ContentType: text, NoSniff: "nosniff", Body: strconv.Quote(msg + "\n"),
		}
	}
	unsatisfiable := serveError(416, "bytes */5000", "invalid range: failed to overlap")
	malformed := serveError(416, "", "invalid range")
	// notModified is a 304: no body, no Content-Type, and no Last-Modified
	// because there is an ETag (RFC 9110 §15.4.5).
	notModified := reply{Status: 304, ETag: etag, NoSniff: "nosniff"}
	failed := reply{
		Status: 412, ContentType: mp3, ETag: etag, LastModified: lastMod, NoSniff: "nosniff",
	}
	// head is r without a body. The client reads a HEAD response's
	// Content-Length from its header, and a 304 has none.
	head := func(r reply) reply {
		r.Body, r.Parts = "", nil
		if r.Status == 304 {
			r.ContentLength = -1
		}
		return r
	}

	h16, s16 := spans(16)
	h17, _ := spans(17)
	// RFC 9110 §14.1.1 calls a zero suffix unsatisfiable; net/http
	// answers it with an empty 206 whose Content-Range ends before it
	// starts. Serve leaves that to net/http.
	return []rangeCase{
		// Single ranges.
		{name: "no range", want: full("clip.mp3", mp3)},
		{name: "first byte", header: map[string]string{"Range": "bytes=0-0"}, want: partial(0, 0)},
		{name: "last byte by suffix", header: map[string]string{"Range": "bytes=-1"}, want: partial(4999, 4999)},
		{name: "open end", header: map[string]string{"Range": "bytes=5-"}, want: partial(5, 4999)},
		{name: "whole file as a range, what players send first", header: map[string]string{"Range": "bytes=0-"}, want: partial(0, 4999)},
		{name: "whole file by first and last", header: map[string]string{"Range": "bytes=0-4999"}, want: partial(0, 4999)},
		{name: "last byte by open end", header: map[string]string{"Range": "bytes=4999-"}, want: partial(4999, 4999)},
		{name: "middle", header: map[string]string{"Range": "bytes=100-199"}, want: partial(100, 199)},
		{name: "suffix larger than the file", header: map[string]string{"Range": "bytes=-10000"}, want: partial(0, 4999)},
		{name: "suffix as large as the file", header: map[string]string{"Range": "bytes=-5000"}, want: partial(0, 4999)},
		{name: "end past EOF is clamped", header: map[string]string{"Range": "bytes=4000-9999"}, want: partial(4000, 4999)},
		{name: "end at MaxInt64 is clamped", header: map[string]string{"Range": "bytes=0-9223372036854775807"}, want: partial(0, 4999)},
		{name: "start at EOF", header: map[string]string{"Range": "bytes=5000-"}, want: unsatisfiable},
		{name: "start past EOF", header: map[string]string{"Range": "bytes=6000-7000"}, want: unsatisfiable},
		{name: "start far past EOF", header: map[string]string{"Range": "bytes=99999999999-"}, want: unsatisfiable},
		// net/http answers a zero suffix with a 206 whose Content-Range is
		// invalid (golang/go#81262); RFC 9110 §14.1.1 calls it unsatisfiable.
		{name: "zero suffix", header: map[string]string{"Range": "bytes=-0"}, policy: true, want: unsatisfiable},
		{name: "zero suffix beside a satisfiable range", header: map[string]string{"Range": "bytes=-0,0-1"}, policy: true, want: partial(0, 1)},
		{name: "zero suffix with a stale If-Range", header: map[string]string{"Range": "bytes=-0", "If-Range": `"stale"`}, policy: true, want: full("clip.mp3", mp3)},
		{name: "zero suffix with a matching If-None-Match", header: map[string]string{"Range": "bytes=-0", "If-None-Match": etag}, policy: true, want: notModified},
		{name: "empty range set", header: map[string]string{"Range": "bytes="}, want: full("clip.mp3", mp3)},
		{name: "only commas", header: map[string]string{"Range": "bytes=,,"}, want: full("clip.mp3", mp3)},

		// Several ranges.
		{name: "two ranges", header: map[string]string{"Range": "bytes=0-1,5-6"}, want: multi(span{0, 2}, span{5, 7})},
		{name: "three sorted ranges", header: map[string]string{"Range": "bytes=0-9,100-199,4990-"}, want: multi(span{0, 10}, span{100, 200}, span{4990, 5000})},
		{name: "adjacent ranges", header: map[string]string{"Range": "bytes=0-1,2-3"}, want: multi(span{0, 2}, span{2, 4})},
		{name: "sorted ranges ending with a suffix", header: map[string]string{"Range": "bytes=0-9,-10"}, want: multi(span{0, 10}, span{4990, 5000})},
		{name: "empty elements are skipped", header: map[string]string{"Range": "bytes=0-1,,5-6,"}, want: multi(span{0, 2}, span{5, 7})},
		{name: "exactly MaxRanges ranges", header: map[string]string{"Range": h16}, want: multi(s16...)},
		{name: "a range past EOF is dropped, leaving one", header: map[string]string{"Range": "bytes=0-1,9000-9001"}, want: partial(0, 1)},
		{name: "MaxRanges+1 ranges", header: map[string]string{"Range": h17}, policy: true, want: full("clip.mp3", mp3)},
		{name: "overlapping", header: map[string]string{"Range": "bytes=0-5,3-8"}, policy: true, want: full("clip.mp3", mp3)},
		{name: "unsorted", header: map[string]string{"Range": "bytes=5-6,0-1"}, policy: true, want: full("clip.mp3", mp3)},
		{name: "duplicate", header: map[string]string{"Range": "bytes=0-1,0-1"}, policy: true, want: full("clip.mp3", mp3)},
		{name: "suffix overlapping an open end", header: map[string]string{"Range": "bytes=4000-,-500"}, policy: true, want: full("clip.mp3", mp3)},
		{name: "unsorted with a plus sign net/http accepts", header: map[string]string{"Range": "bytes=+5-6,0-1"}, policy: true, want: full("clip.mp3", mp3)},
		{name: "unsorted after a malformed spec past EOF", header: map[string]string{"Range": "bytes=9000-x,5-6,0-1"}, policy: true, want: full("clip.mp3", mp3)},

		// Whitespace and leniencies net/http allows.
		{name: "space after bytes=", header: map[string]string{"Range": "bytes= 0-1"}, want: partial(0, 1)},
		{name: "spaces around the dash and commas", header: map[string]string{"Range": "bytes=0 - 1 , 5 - 6"}, want: multi(span{0, 2}, span{5, 7})},
		{name: "tab around a range", header: map[string]string{"Range": "bytes=\t3-4\t"}, want: partial(3, 4)},
		{name: "plus sign", header: map[string]string{"Range": "bytes=+5-9"}, want: partial(5, 9)},

		// Malformed: 416 without Content-Range, as net/http does.
		{name: "letters", header: map[string]string{"Range": "bytes=abc"}, want: malformed},
		{name: "last before first", header: map[string]string{"Range": "bytes=5-2"}, want: malformed},
		{name: "double dash", header: map[string]string{"Range": "bytes=--5"}, want: malformed},
		{name: "space and dash", header: map[string]string{"Range": "bytes= -"}, want: malformed},
		{name: "dash alone", header: map[string]string{"Range": "bytes=-"}, want: malformed},
		{name: "other unit", header: map[string]string{"Range": "items=0-1"}, want: malformed},
		{name: "unit in upper case", header: map[string]string{"Range": "Bytes=0-1"}, want: malformed},
		{name: "no equals sign", header: map[string]string{"Range": "bytes 0-1"}, want: malformed},
		{name: "three numbers", header: map[string]string{"Range": "bytes=1-2-3"}, want: malformed},
		{name: "negative last", header: map[string]string{"Range": "bytes=0--5"}, want: malformed},
		{name: "negative zero last, which net/http takes for 0", header: map[string]string{"Range": "bytes=0--0"}, want: partial(0, 0)},
		{name: "negative suffix", header: map[string]string{"Range": "bytes=--0"}, want: malformed},
		{name: "suffix with a last", header: map[string]string{"Range": "bytes=-5-6"}, want: malformed},
		{name: "hex", header: map[string]string{"Range": "bytes=0x10-0x20"}, want: malformed},
		{name: "number too large", header: map[string]string{"Range": "bytes=0-99999999999999999999"}, want: malformed},
		{name: "malformed spec after a good one", header: map[string]string{"Range": "bytes=0-1,abc"}, want: malformed},
		{name: "malformed spec after MaxRanges+1 good ones", header: map[string]string{"Range": h17 + ",abc"}, want: malformed},

		// HEAD: the same headers, no body.
		{name: "HEAD", method: "HEAD", want: head(full("clip.mp3", mp3))},
		{name: "HEAD with a range", method: "HEAD", header: map[string]string{"Range": "bytes=0-0"}, want: head(partial(0, 0))},
		{name: "HEAD with an unsatisfiable range", method: "HEAD", header: map[string]string{"Range": "bytes=9000-"}, want: head(unsatisfiable)},
		{name: "HEAD with two ranges", method: "HEAD", header: map[string]string{"Range": "bytes=0-1,5-6"}, want: head(multi(span{0, 2}, span{5, 7}))},

		// If-Range.
		{name: "If-Range current ETag", header: map[string]string{"Range": "bytes=0-9", "If-Range": etag}, want: partial(0, 9)},
		{name: "If-Range stale ETag", header: map[string]string{"Range": "bytes=0-9", "If-Range": `"stale"`}, want: full("clip.mp3", mp3)},
		{name: "If-Range weak ETag needs a strong match", header: map[string]string{"Range": "bytes=0-9", "If-Range": "W/" + etag}, want: full("clip.mp3", mp3)},
		{name: "If-Range date equal to Last-Modified", header: map[string]string{"Range": "bytes=0-9", "If-Range": lastMod}, want: partial(0, 9)},
		{name: "If-Range older date", header: map[string]string{"Range": "bytes=0-9", "If-Range": older}, want: full("clip.mp3", mp3)},
		{name: "If-Range newer date", header: map[string]string{"Range": "bytes=0-9", "If-Range": newer}, want: full("clip.mp3", mp3)},
		{name: "If-Range stale with unsorted ranges", header: map[string]string{"Range": "bytes=5-6,0-1", "If-Range": `"stale"`}, policy: true, want: full("clip.mp3", mp3)},

		// If-None-Match and If-Modified-Since.
		{name: "If-None-Match current", header: map[string]string{"If-None-Match": etag}, want: notModified},
		{name: "If-None-Match star", header: map[string]string{"If-None-Match": "*"}, want: notModified},
		{name: "If-None-Match list with a weak match", header: map[string]string{"If-None-Match": `"other", W/` + etag}, want: notModified},
		{name: "If-None-Match other", header: map[string]string{"If-None-Match": `"other"`}, want: full("clip.mp3", mp3)},
		{name: "If-None-Match current wins over Range", header: map[string]string{"If-None-Match": etag, "Range": "bytes=0-9"}, want: notModified},
		{name: "HEAD with If-None-Match current", method: "HEAD", header: map[string]string{"If-None-Match": etag}, want: head(notModified)},
		{name: "If-Modified-Since equal", header: map[string]string{"If-Modified-Since": lastMod}, want: notModified},
		{name: "If-Modified-Since newer", header: map[string]string{"If-Modified-Since": newer}, want: notModified},
		{name: "If-Modified-Since older", header: map[string]string{"If-Modified-Since": older}, want: full("clip.mp3", mp3)},
		{name: "If-Modified-Since ignored when If-None-Match is present", header: map[string]string{"If-Modified-Since": lastMod, "If-None-Match": `"other"`}, want: full("clip.mp3", mp3)},

		// If-Match and If-Unmodified-Since.
		{name: "If-Unmodified-Since older", header: map[string]string{"If-Unmodified-Since": older}, want: failed},
		{name: "If-Unmodified-Since equal", header: map[string]string{"If-Unmodified-Since": lastMod}, want: full("clip.mp3", mp3)},
		{name: "If-Unmodified-Since equal with a range", header: map[string]string{"If-Unmodified-Since": lastMod, "Range": "bytes=10-19"}, want: partial(10, 19)},
		{name: "If-Match other", header: map[string]string{"If-Match": `"other"`}, want: failed},
		{name: "If-Match weak needs a strong match", header: map[string]string{"If-Match": "W/" + etag}, want: failed},
		{name: "If-Match current with a range", header: map[string]string{"If-Match": etag, "Range": "bytes=10-19"}, want: partial(10, 19)},
		{name: "If-Match star", header: map[string]string{"If-Match": "*"}, want: full("clip.mp3", mp3)},
		{name: "If-Match other wins over Range", header: map[string]string{"If-Match": `"other"`, "Range": "bytes=0-0"}, want: failed},

		// Content types: from the table, never sniffed.
		{name: "mkv", file: "movie.mkv", want: full("movie.mkv", "video/x-matroska")},
		{name: "upper-case extension", file: "LOUD.MP3", want: full("LOUD.MP3", mp3)},
		{name: "unknown extension with HTML content", file: "page.unknownext", want: full("page.unknownext", octet)},
		{name: "no extension with HTML content", file: "page", want: full("page", octet)},
		{name: "multipart parts typed from the table", file: "movie.mkv", header: map[string]string{"Range": "bytes=0-1,5-6"}, want: func() reply {
			r := multi(span{0, 2}, span{5, 7})
			r.ContentLength = multipartSize(clip, "video/x-matroska", []span{{0, 2}, {5, 7}})
			for i := range r.Parts {
				r.Parts[i].ContentType = "video/x-matroska"
			}
			return r
		}()},

		// An empty file: net/http ignores an unsatisfiable range there.
		{name: "empty file", file: "empty.mp3", want: full("empty.mp3", mp3)},
		{name: "empty file with bytes=0-", file: "empty.mp3", header: map[string]string{"Range": "bytes=0-"}, want: full("empty.mp3", mp3)},
		{name: "empty file with two ranges", file: "empty.mp3", header: map[string]string{"Range": "bytes=0-1,5-6"}, want: full("empty.mp3", mp3)},
	}
}

// TestServeRanges runs every case against Serve on a real connection, and
// every case that is not a deliberate policy also against plain
// http.ServeContent, which Serve must match exactly.
func TestServeRanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mtime := fixtureTime()
	clip := content(1, clipSize)
	files := map[string][]byte{
		"clip.mp3":        clip,
		"movie.mkv":       clip,
		"LOUD.MP3":        clip,
		"page.unknownext": []byte(htmlPage),
		"page":            []byte(htmlPage),
		"empty.mp3":       nil,
	}
	for name, data := range files {
		writeFile(t, dir, name, data, mtime)
	}
	etags := make(map[string]string)
	for name := range files {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		etags[name] = ETag(fi)
	}

	ours := httptest.NewServer(fileHandler(t, dir, New(10*time.Second).Serve))
	t.Cleanup(ours.Close)
	stdlib := httptest.NewServer(fileHandler(t, dir, serveStdlib))
	t.Cleanup(stdlib.Close)
	client := newClient(t)
	// Paced bodies, handed to the pacer's loop (with ConnContext) or
	// paced in the handler (without), must be the same replies; the
	// burst covers every file, so the test does not wait for the pace.
	handed, copied := pacedServers(t, dir, Policy{Enabled: true, Factor: 1.25, Burst: time.Hour, UnknownRate: 1e9})

	cases := rangeCases(files, etags)
	if len(cases) < 45 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := cmpOr(tc.file, "clip.mp3")
			method := cmpOr(tc.method, http.MethodGet)
			got := fetch(t, client, method, ours.URL+"/"+file, tc.header, files[file])
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Serve: %s %s %v: reply mismatch (-want +got):\n%s", method, file, tc.header, diff)
			}
			for _, paced := range []*httptest.Server{handed, copied} {
				pg := fetch(t, client, method, paced.URL+"/"+file, tc.header, files[file])
				if diff := cmp.Diff(got, pg); diff != "" {
					t.Errorf("ServePaced differs from Serve: %s %s %v (-Serve +ServePaced):\n%s", method, file, tc.header, diff)
				}
			}
			if tc.policy {
				return
			}
			ref := fetch(t, client, method, stdlib.URL+"/"+file, tc.header, files[file])
			if diff := cmp.Diff(ref, got); diff != "" {
				t.Errorf("Serve differs from http.ServeContent: %s %s %v (-stdlib +Serve):\n%s", method, file, tc.header, diff)
			}
		})
	}
}

// cmpOr returns s, or def when s is empty.
func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestServeETag checks that the ETag is strong, the same on every request
// for an unchanged file, and different once the file's mtime changes, so
// that If-None-Match and If-Range stop matching.
func TestServeETag(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := content(2, 1000)
	p := writeFile(t, dir, "song.flac", data, fixtureTime())
	srv := httptest.NewServer(fileHandler(t, dir, New(10*time.Second).Serve))
	t.Cleanup(srv.Close)
	client := newClient(t)
	url := srv.URL + "/song.flac"

	first := fetch(t, client, "GET", url, nil, data)
	second := fetch(t, client, "GET", url, nil, data)
	if first.ETag == "" || strings.HasPrefix(first.ETag, "W/") || first.ETag != second.ETag {
		t.Fatalf("ETags %q then %q: want the same strong ETag twice", first.ETag, second.ETag)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if first.ETag != ETag(fi) {
		t.Errorf("served ETag %q, ETag(fi) = %q", first.ETag, ETag(fi))
	}
	if got := fetch(t, client, "GET", url, map[string]string{"If-None-Match": first.ETag}, data); got.Status != 304 {
		t.Errorf("If-None-Match with the current ETag: status %d, want 304", got.Status)
	}

	later := fixtureTime().Add(time.Second)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	third := fetch(t, client, "GET", url, nil, data)
	if third.ETag == first.ETag {
		t.Errorf("ETag %q unchanged after the mtime changed", third.ETag)
	}
	if got := fetch(t, client, "GET", url, map[string]string{"If-None-Match": first.ETag}, data); got.Status != 200 || got.Body != describe(data, data) {
		t.Errorf("If-None-Match with the old ETag: status %d body %s, want 200 and the file", got.Status, got.Body)
	}
	got := fetch(t, client, "GET", url, map[string]string{"If-Range": first.ETag, "Range": "bytes=0-9"}, data)
	if got.Status != 200 || got.Body != describe(data, data) {
		t.Errorf("If-Range with the old ETag: status %d body %s, want 200 and the file", got.Status, got.Body)
	}
}

// fakeInfo is an fs.FileInfo with only a modification time and a size.
type fakeInfo struct {
	fs.FileInfo
	mtime time.Time
	size  int64
}

func (fi fakeInfo) ModTime() time.Time { return fi.mtime }
func (fi fakeInfo) Size() int64        { return fi.size }

func TestETag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		mtime time.Time
		size  int64
		want  string
	}{
		{name: "epoch, empty", mtime: time.Unix(0, 0), size: 0, want: `"0-0"`},
		{name: "base 36", mtime: time.Unix(0, 36), size: 35, want: `"10-z"`},
		{name: "nanoseconds count", mtime: time.Unix(1, 1), size: 1, want: `"gjdgxt-1"`},
		{name: "huge file", mtime: time.Unix(0, 0), size: 5 << 30, want: `"0-2gse2gw"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ETag(fakeInfo{mtime: tc.mtime, size: tc.size})
			if got != tc.want {
				t.Errorf("ETag(%v, %d) = %s, want %s", tc.mtime, tc.size, got, tc.want)
			}
		})
	}
}

// TestServeHugeSparseFile serves ranges near the end of a 5 GiB sparse
// file: every offset and the size in Content-Range need 64 bits.
func TestServeHugeSparseFile(t *testing.T) {
	t.Parallel()
	const size = 5 << 30 // 5368709120
	dir := t.TempDir()
	p := filepath.Join(dir, "huge.mkv")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	marker := []byte(strings.Repeat("end-of-a-5GiB-file|", 7)[:120])
	if err := f.Truncate(size); err != nil {
		f.Close()
		t.Skipf("the filesystem of %s refuses a sparse 5 GiB file: %v", dir, err)
	}
	if _, err := f.WriteAt(marker, size-120); err != nil {
		f.Close()
		t.Skipf("the filesystem of %s refuses a write at 5 GiB: %v", dir, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fileHandler(t, dir, New(10*time.Second).Serve))
	t.Cleanup(srv.Close)
	client := newClient(t)

	for _, tc := range []struct {
		name         string
		method       string
		rangeHeader  string
		status       int
		contentRange string
		length       int64
		body         []byte
	}{
		{name: "last 120 bytes by first-last", method: "GET", rangeHeader: "bytes=5368709000-5368709119", status: 206, contentRange: "bytes 5368709000-5368709119/5368709120", length: 120, body: marker},
		{name: "last 120 bytes by suffix", method: "GET", rangeHeader: "bytes=-120", status: 206, contentRange: "bytes 5368709000-5368709119/5368709120", length: 120, body: marker},
		{name: "open end near the end", method: "GET", rangeHeader: "bytes=5368709100-", status: 206, contentRange: "bytes 5368709100-5368709119/5368709120", length: 20, body: marker[100:]},
		{name: "across the 4 GiB boundary, in the hole", method: "GET", rangeHeader: "bytes=4294967294-4294967297", status: 206, contentRange: "bytes 4294967294-4294967297/5368709120", length: 4, body: make([]byte, 4)},
		{name: "start at EOF", method: "GET", rangeHeader: "bytes=5368709120-", status: 416, contentRange: "bytes */5368709120", length: int64(len("invalid range: failed to overlap\n")), body: []byte("invalid range: failed to overlap\n")},
		{name: "HEAD of the whole file", method: "HEAD", status: 200, length: size},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.method, srv.URL+"/huge.mkv", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.rangeHeader != "" {
				req.Header.Set("Range", tc.rangeHeader)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Range") != tc.contentRange || resp.ContentLength != tc.length {
				t.Errorf("got %d, Content-Range %q, Content-Length %d; want %d, %q, %d",
					resp.StatusCode, resp.Header.Get("Content-Range"), resp.ContentLength, tc.status, tc.contentRange, tc.length)
			}
			if !bytes.Equal(body, tc.body) {
				t.Errorf("body %q, want %q", body, tc.body)
			}
		})
	}
}

func TestParseRanges(t *testing.T) {
	t.Parallel()
	for _, tc := range parseCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRanges(tc.header, tc.size)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseRanges(%q, %d) error %v, want error: %t", tc.header, tc.size, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseRanges(%q, %d) mismatch (-want +got):\n%s", tc.header, tc.size, diff)
			}
		})
	}
}

// parseCase is one case of TestParseRanges, also a seed of FuzzParseRanges.
type parseCase struct {
	name    string
	header  string
	size    int64
	want    []Range
	wantErr bool
}

func parseCases() []parseCase {
	return []parseCase{
		{name: "first byte", header: "bytes=0-0", size: 10, want: []Range{{0, 1}}},
		{name: "open end", header: "bytes=5-", size: 10, want: []Range{{5, 5}}},
		{name: "whole", header: "bytes=0-", size: 10, want: []Range{{0, 10}}},
		{name: "suffix", header: "bytes=-3", size: 10, want: []Range{{7, 3}}},
		{name: "suffix larger than size", header: "bytes=-30", size: 10, want: []Range{{0, 10}}},
		{name: "last clamped", header: "bytes=8-100", size: 10, want: []Range{{8, 2}}},
		{name: "several in order given", header: "bytes=5-6,0-1,-1", size: 10, want: []Range{{5, 2}, {0, 2}, {9, 1}}},
		{name: "overlapping kept as given", header: "bytes=0-5,3-8", size: 10, want: []Range{{0, 6}, {3, 6}}},
		{name: "whitespace", header: "bytes= 1 - 2 ,\t4-5 ", size: 10, want: []Range{{1, 2}, {4, 2}}},
		{name: "empty elements", header: "bytes=,1-2,,", size: 10, want: []Range{{1, 2}}},
		{name: "empty set", header: "bytes=", size: 10, want: nil},
		{name: "start at size is dropped", header: "bytes=10-", size: 10, want: nil},
		{name: "start past size is dropped among others", header: "bytes=0-1,20-30", size: 10, want: []Range{{0, 2}}},
		{name: "zero suffix is unsatisfiable", header: "bytes=-0", size: 10, want: nil},
		{name: "suffix of an empty file", header: "bytes=-5", size: 0, want: nil},
		{name: "open end of an empty file", header: "bytes=0-", size: 0, want: nil},
		{name: "64-bit offsets", header: "bytes=5368709000-5368709119", size: 5 << 30, want: []Range{{5368709000, 120}}},
		{name: "MaxInt64 last", header: "bytes=0-9223372036854775807", size: 10, want: []Range{{0, 10}}},
		// net/http parses numbers with strconv.ParseInt, which takes a
		// sign; ParseRanges must see the ranges ServeContent will serve.
		{name: "plus sign", header: "bytes=+1-+2", size: 10, want: []Range{{1, 2}}},
		{name: "plus sign suffix", header: "bytes=-+2", size: 10, want: []Range{{8, 2}}},
		// net/http drops a spec that starts past the end before it looks
		// at its last-byte-pos.
		{name: "bad last of a spec past the end", header: "bytes=20-x,0-1", size: 10, want: []Range{{0, 2}}},
		{name: "last before first past the end", header: "bytes=20-15", size: 10, want: nil},

		{name: "other unit", header: "items=0-1", size: 10, wantErr: true},
		{name: "no header", header: "", size: 10, wantErr: true},
		{name: "unit case", header: "Bytes=0-1", size: 10, wantErr: true},
		{name: "no dash", header: "bytes=5", size: 10, wantErr: true},
		{name: "letters", header: "bytes=abc", size: 10, wantErr: true},
		{name: "last before first", header: "bytes=5-2", size: 10, wantErr: true},
		{name: "double dash", header: "bytes=--5", size: 10, wantErr: true},
		{name: "dash alone", header: "bytes=-", size: 10, wantErr: true},
		{name: "space dash", header: "bytes= -", size: 10, wantErr: true},
		{name: "three numbers", header: "bytes=1-2-3", size: 10, wantErr: true},
		{name: "negative last", header: "bytes=0--5", size: 10, wantErr: true},
		{name: "minus plus", header: "bytes=-+-2", size: 10, wantErr: true},
		{name: "negative zero suffix", header: "bytes=--0", size: 10, wantErr: true},
		// ... but net/http takes a last-byte-pos of -0, which is 0.
		{name: "negative zero last", header: "bytes=0--0", size: 10, want: []Range{{0, 1}}},
		{name: "overflow", header: "bytes=0-99999999999999999999", size: 10, wantErr: true},
		{name: "malformed after good", header: "bytes=0-1,x", size: 10, wantErr: true},
		{name: "vertical tab", header: "bytes=\v0-1", size: 10, wantErr: true},
		{name: "no-break space", header: "bytes=\u00a00-1", size: 10, wantErr: true},
		{name: "underscore", header: "bytes=1_0-20", size: 100, wantErr: true},
	}
}

// deadlineServer starts a server whose handler serves dir with a Server of
// the given stall, and "plain" at /plain with no Server at all. It signals served (without blocking) after each Serve
// returns and closed when a connection is closed. When sndbuf > 0 every
// accepted connection's send buffer is set to it, so that the server
// blocks on the socket early.
func deadlineServer(t *testing.T, dir string, stall time.Duration, sndbuf int) (srv *httptest.Server, served, closed <-chan struct{}) {
	t.Helper()
	servedc := make(chan struct{}, 1)
	closedc := make(chan struct{}, 1)
	s := New(stall)
	mux := http.NewServeMux()
	mux.Handle("/", fileHandler(t, dir, func(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo) {
		s.Serve(w, r, f, fi)
		select {
		case servedc <- struct{}{}:
		default:
		}
	}))
	// Another handler on the same connections, which sets no deadline.
	mux.HandleFunc("/plain", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "plain")
	})
	srv = httptest.NewUnstartedServer(mux)
	if sndbuf > 0 {
		srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			if err := c.(*net.TCPConn).SetWriteBuffer(sndbuf); err != nil {
				t.Errorf("SetWriteBuffer: %v", err)
			}
			return ctx
		}
	}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			select {
			case closedc <- struct{}{}:
			default:
			}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, servedc, closedc
}

// dialSmall connects to addr with a receive buffer of rcvbuf bytes, set
// before the handshake so that the advertised window is small from the
// start.
func dialSmall(t *testing.T, addr string, rcvbuf int) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSlowClientOutlivesStall streams a file to a client that reads
// slowly but steadily, for several times the stall deadline in total: the
// server must block on the socket again and again and never cut the
// client, which gets every byte.
//
// The rate is a trade-off that TCP imposes. The server sees progress only
// when the client's kernel reopens its receive window, in steps of about
// its buffer (4 KB here, a small but sane size): a reader of 2 KB/s would
// show the server nothing for two seconds at a time, which is a stall by
// definition. At 24 KB/s the steps come every 0.2 s, a tenth of the
// deadline (2 s: with 1 s, a loaded machine running the whole suite under
// -race once starved the reader's ticker long enough to be cut), while
// the first chunk (64 KiB, 2.7 s) still cannot finish within it, which is
// what used to cut such clients.
func TestSlowClientOutlivesStall(t *testing.T) {
	t.Parallel()
	const (
		stall  = 2 * time.Second
		size   = 128 << 10
		rcvbuf = 4096
		piece  = 1200                  // bytes per tick:
		tick   = 50 * time.Millisecond // 24 KB/s, so about 5.5 s for the file
	)
	dir := t.TempDir()
	data := content(3, size)
	writeFile(t, dir, "slow.mp3", data, fixtureTime())
	srv, served, _ := deadlineServer(t, dir, stall, 4096)

	conn := dialSmall(t, srv.Listener.Addr().String(), rcvbuf)
	if _, err := io.WriteString(conn, "GET /slow.mp3 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(conn, 64)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("status %d, Content-Length %d; want 200, %d", resp.StatusCode, resp.ContentLength, size)
	}

	// Rate shaping: at most piece bytes per tick.
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	var got []byte
	buf := make([]byte, piece)
	readWhenServed := -1 // bytes the client had read when Serve returned
	for {
		<-ticker.C
		if readWhenServed < 0 {
			select {
			case <-served:
				readWhenServed = len(got)
			default:
			}
		}
		n, err := resp.Body.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v (the server cut a slow but steady client)", len(got), size, err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %s, want the whole file", describe(data, got))
	}
	if readWhenServed < 0 {
		<-served
		readWhenServed = len(got)
	}
	// The test means something only if Serve was blocked on the socket
	// for much of the transfer, i.e. for several stall periods: it returns
	// when the last bytes are in the kernel's buffers, so the client must
	// have read most of the file by then.
	t.Logf("the client had read %d of %d bytes when Serve returned", readWhenServed, size)
	if readWhenServed < size/2 {
		t.Errorf("Serve returned when the client had read only %d of %d bytes: the socket buffers absorbed the file and the test proves nothing", readWhenServed, size)
	}
}

// TestStalledClientIsCut checks that a client that stops reading loses its
// connection: the server's Serve returns and the connection is closed,
// whether it stops in the middle of a large body or after pipelining
// requests for small ranges whose responses fill the socket buffers.
func TestStalledClientIsCut(t *testing.T) {
	t.Parallel()
	const stall = 500 * time.Millisecond
	dir := t.TempDir()
	big := filepath.Join(dir, "big.mkv")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: 64 MiB that no kernel buffer can absorb, without writing it.
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	writeFile(t, dir, "small.mp3", content(4, 1000), fixtureTime())

	for _, tc := range []struct {
		name     string
		requests string
		cut      func(body io.Reader) error // reads what the client had received; nil if it proves a cut
	}{
		{
			name:     "large body",
			requests: "GET /big.mkv HTTP/1.1\r\nHost: test\r\n\r\n",
			cut: func(r io.Reader) error {
				resp, err := http.ReadResponse(bufio.NewReader(r), nil)
				if err != nil {
					return err
				}
				n, err := io.Copy(io.Discard, resp.Body)
				if err == nil || n >= 64<<20 {
					return fmt.Errorf("read %d bytes of %d and error %v: want a truncated body", n, 64<<20, err)
				}
				return nil
			},
		},
		{
			name:     "pipelined small ranges",
			requests: strings.Repeat("GET /small.mp3 HTTP/1.1\r\nHost: test\r\nRange: bytes=0-99\r\n\r\n", 2000),
			cut: func(r io.Reader) error {
				br := bufio.NewReader(r)
				var n int
				for ; ; n++ {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						break
					}
					if resp.StatusCode != 206 || resp.ContentLength != 100 {
						return fmt.Errorf("response %d: status %d, Content-Length %d; want 206, 100", n, resp.StatusCode, resp.ContentLength)
					}
					if _, err := io.Copy(io.Discard, resp.Body); err != nil {
						break
					}
				}
				if n >= 2000 {
					return fmt.Errorf("read all %d responses", n)
				}
				return nil
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, served, closed := deadlineServer(t, dir, stall, 4096)
			conn := dialSmall(t, srv.Listener.Addr().String(), 4096)
			// Writing may block once the server stops reading; it ends when
			// the connection is closed.
			wrote := make(chan error, 1)
			go func() {
				_, err := io.WriteString(conn, tc.requests)
				wrote <- err
			}()
			// The client reads nothing until the server gives up.

			guard := time.NewTimer(30 * time.Second) // failure guard only
			defer guard.Stop()
			select {
			case <-served:
			case <-guard.C:
				t.Fatal("Serve did not return within 30 s of the client's stopping reading")
			}
			select {
			case <-closed:
			case <-guard.C:
				t.Fatal("the server did not close the connection within 30 s of the client's stopping reading")
			}
			if err := tc.cut(conn); err != nil {
				t.Error(err)
			}
			conn.Close()
			<-wrote
		})
	}
}

// readFromRecorder is a ResponseWriter wrapper that records the readers
// its ReadFrom is given and delegates to the wrapped ReadFrom.
type readFromRecorder struct {
	http.ResponseWriter
	mu    sync.Mutex
	calls []string
	n     int64
}

func (w *readFromRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	desc := fmt.Sprintf("%T", src)
	if lr, ok := src.(*io.LimitedReader); ok {
		desc += fmt.Sprintf(" over %T", lr.R)
	}
	n, err := w.ResponseWriter.(io.ReaderFrom).ReadFrom(src)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, desc)
	w.n += n
	return n, err
}

// TestServeUsesReaderFrom guards the sendfile path: the body must reach
// the connection's ReadFrom as an *io.LimitedReader over the *os.File,
// the one shape net/http hands to sendfile.
func TestServeUsesReaderFrom(t *testing.T) {
	t.Parallel()
	const size = 3 << 20 // several chunks
	dir := t.TempDir()
	data := content(5, size)
	writeFile(t, dir, "film.mp4", data, fixtureTime())
	s := New(10 * time.Second)

	for _, tc := range []struct {
		name        string
		rangeHeader string
		status      int
		body        []byte
	}{
		{name: "no range", status: 200, body: data},
		{name: "one range", rangeHeader: "bytes=1000-2000999", status: 206, body: data[1000:2001000]},
		{name: "suffix", rangeHeader: "bytes=-100", status: 206, body: data[size-100:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := make(chan *readFromRecorder, 1)
			srv := httptest.NewServer(fileHandler(t, dir, func(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo) {
				rw := &readFromRecorder{ResponseWriter: w}
				s.Serve(rw, r, f, fi)
				rec <- rw
			}))
			t.Cleanup(srv.Close)
			var header map[string]string
			if tc.rangeHeader != "" {
				header = map[string]string{"Range": tc.rangeHeader}
			}
			got := fetch(t, newClient(t), "GET", srv.URL+"/film.mp4", header, data)
			if got.Status != tc.status || got.Body != describe(data, tc.body) {
				t.Errorf("status %d body %s, want %d %s", got.Status, got.Body, tc.status, describe(data, tc.body))
			}
			rw := <-rec
			if len(rw.calls) == 0 {
				t.Fatal("ReadFrom was never called: the body bypassed sendfile")
			}
			for i, c := range rw.calls {
				if c != "*io.LimitedReader over *os.File" {
					t.Errorf("ReadFrom call %d got a %s, want *io.LimitedReader over *os.File", i, c)
				}
			}
			if rw.n != int64(len(tc.body)) {
				t.Errorf("ReadFrom copied %d bytes, want %d", rw.n, len(tc.body))
			}
		})
	}
}

// TestDeadlineClearedAfterResponse fetches a file, waits longer than the
// stall deadline, and sends another request on the same kept-alive
// connection: the first response's deadline must not cut the second,
// including responses that write no body and so never set one, and
// another handler's. Since Go 1.20 net/http also clears the write
// deadline after each response, so this guards the behaviour end to end
// rather than bodyWriter.finish alone.
func TestDeadlineClearedAfterResponse(t *testing.T) {
	t.Parallel()
	const stall = 300 * time.Millisecond
	dir := t.TempDir()
	data := content(6, 200<<10)
	writeFile(t, dir, "track.ogg", data, fixtureTime())
	srv, _, _ := deadlineServer(t, dir, stall, 0)

	fi, err := os.Stat(filepath.Join(dir, "track.ogg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		header map[string]string
		status int
		body   []byte
	}{
		{name: "GET", method: "GET", status: 200, body: data},
		{name: "another handler", method: "GET", path: "/plain", status: 200, body: []byte("plain")},
		{name: "precondition failed", method: "GET", header: map[string]string{"If-Match": `"other"`}, status: 412},
		{name: "HEAD", method: "HEAD", status: 200},
		{name: "not modified", method: "GET", header: map[string]string{"If-None-Match": ETag(fi)}, status: 304},
		{name: "small range", method: "GET", header: map[string]string{"Range": "bytes=0-99"}, status: 206, body: data[:100]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client := newClient(t)
			var reused []bool
			trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { reused = append(reused, ci.Reused) }}
			do := func(method, path string, header map[string]string) reply {
				req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, srv.URL+cmpOr(path, "/track.ogg"), nil)
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range header {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s after %v idle: %v", method, 2*stall, err)
				}
				return readReply(t, resp, data)
			}

			if got := do("GET", "", nil); got.Status != 200 || got.Body != describe(data, data) {
				t.Fatalf("first GET: status %d body %s", got.Status, got.Body)
			}
			// The behaviour under test: the connection sits idle for
			// longer than the first response's stall deadline.
			idle := time.NewTimer(2 * stall)
			<-idle.C
			got := do(tc.method, tc.path, tc.header)
			if got.Status != tc.status || got.Body != describe(data, tc.body) {
				t.Errorf("second request: status %d body %s, want %d %s", got.Status, got.Body, tc.status, describe(data, tc.body))
			}
			if !cmp.Equal(reused, []bool{false, true}) {
				t.Errorf("connection reused: %v, want [false true] (one kept-alive connection)", reused)
			}
		})
	}
}
