package stream

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var contentRangeRE = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+)$`)

// FuzzServeRange sends any Range header to Serve over a real file and
// checks the reply a player would get: 200 with the whole file, 206 with
// valid Content-Range headers and the exact bytes (at most MaxRanges parts,
// ascending, not overlapping), or 416 — never an invalid Content-Range,
// never a byte that is not the file's, never a body much larger than the
// file.
func FuzzServeRange(f *testing.F) {
	const size = 1000
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i/256)
	}
	path := filepath.Join(f.TempDir(), "x.mp3")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		f.Fatal(err)
	}
	for _, h := range []string{
		"bytes=0-", "bytes=-0", "bytes=-0,0-1", "bytes=0-0,2-2", "bytes=5-1", "bytes=999-",
		"bytes=1000-", "bytes=0-1,0-1", "bytes=+5-6,0-1", "bytes=0--0", "bytes=-0,-0",
		"bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16,18-18,20-20,22-22,24-24,26-26,28-28,30-30,32-32",
	} {
		f.Add(h)
	}
	s := New(time.Minute)
	f.Fuzz(func(t *testing.T, h string) {
		file, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		fi, err := file.Stat()
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/x.mp3", nil)
		r.Header.Set("Range", h)
		w := httptest.NewRecorder()
		s.Serve(w, r, file, fi)
		body := w.Body.Bytes()
		if len(body) > size+MaxRanges*256 {
			t.Fatalf("Range %q: %d-byte body for a %d-byte file", h, len(body), size)
		}
		switch w.Code {
		case http.StatusOK:
			if !bytes.Equal(body, data) {
				t.Fatalf("Range %q: 200 with a body that is not the file", h)
			}
		case http.StatusRequestedRangeNotSatisfiable:
			if cr := w.Header().Get("Content-Range"); cr != "" && cr != "bytes */1000" {
				t.Fatalf("Range %q: 416 with Content-Range %q", h, cr)
			}
		case http.StatusPartialContent:
			mt, params, err := mime.ParseMediaType(w.Header().Get("Content-Type"))
			if err != nil {
				t.Fatalf("Range %q: Content-Type: %v", h, err)
			}
			if mt != "multipart/byteranges" {
				checkPart(t, h, w.Header().Get("Content-Range"), body, data)
				return
			}
			mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
			parts, end := 0, int64(-1)
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("Range %q: part %d: %v", h, parts, err)
				}
				pb, err := io.ReadAll(p)
				if err != nil {
					t.Fatalf("Range %q: part %d: %v", h, parts, err)
				}
				start := checkPart(t, h, p.Header.Get("Content-Range"), pb, data)
				if start <= end {
					t.Fatalf("Range %q: part %d starts at %d, inside or before the previous part", h, parts, start)
				}
				end = start + int64(len(pb)) - 1
				parts++
			}
			if parts < 2 || parts > MaxRanges {
				t.Fatalf("Range %q: multipart with %d parts", h, parts)
			}
		default:
			t.Fatalf("Range %q: status %d", h, w.Code)
		}
	})
}

// checkPart checks one range of the reply against the file and returns its
// first byte's offset.
func checkPart(t *testing.T, h, contentRange string, got, data []byte) int64 {
	t.Helper()
	m := contentRangeRE.FindStringSubmatch(contentRange)
	if m == nil {
		t.Fatalf("Range %q: Content-Range %q", h, contentRange)
	}
	first, _ := strconv.ParseInt(m[1], 10, 64)
	last, _ := strconv.ParseInt(m[2], 10, 64)
	total, _ := strconv.ParseInt(m[3], 10, 64)
	if total != int64(len(data)) || first > last || last >= total {
		t.Fatalf("Range %q: invalid Content-Range %q", h, contentRange)
	}
	if !bytes.Equal(got, data[first:last+1]) {
		t.Fatalf("Range %q: bytes of %q are not the file's", h, contentRange)
	}
	return first
}
