package stream

import (
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// zeros is an io.ReaderAt of endless zero bytes, so that http.ServeContent
// can serve a representation of any size without it being allocated.
type zeros struct{}

func (zeros) ReadAt(p []byte, _ int64) (int, error) {
	clear(p)
	return len(p), nil
}

// FuzzParseRanges checks ParseRanges' invariants on any header and size,
// and cross-checks it against net/http: for the same header and size,
// http.ServeContent must serve exactly the ranges ParseRanges returns
// (ignoring the zero-length ranges net/http serves for a suffix of 0),
// answer 416 without Content-Range exactly when ParseRanges reports a
// malformed header, and answer 206 whenever ParseRanges finds ranges whose
// total fits in the size. Serve's range policy judges ParseRanges' view of
// a header, so any disagreement would let ServeContent serve ranges the
// policy never saw.
func FuzzParseRanges(f *testing.F) {
	for _, tc := range parseCases() {
		f.Add(tc.header, tc.size)
	}
	files := map[string][]byte{"clip.mp3": make([]byte, clipSize)}
	for _, tc := range rangeCases(files, map[string]string{"clip.mp3": `"x"`}) {
		if h := tc.header["Range"]; h != "" {
			f.Add(h, int64(clipSize))
			f.Add(h, int64(0))
			f.Add(h, int64(math.MaxInt64))
		}
	}

	f.Fuzz(func(t *testing.T, h string, size int64) {
		rs, err := ParseRanges(h, size)
		if size < 0 {
			return // no representation has a negative size; only no panic
		}
		for i, r := range rs {
			if r.Start < 0 || r.Length <= 0 || r.End() > size || r.End() < r.Start {
				t.Fatalf("ParseRanges(%q, %d) range %d is %+v: outside [0, %d) or empty", h, size, i, r, size)
			}
		}
		if h == "" {
			return // no Range header: ServeContent serves 200
		}

		// Small representations are served with their bodies, so that
		// every part of a multipart response can be read; large ones by
		// HEAD, which has the same status and headers.
		method := http.MethodGet
		if size > 1<<16 {
			method = http.MethodHead
		}
		req := httptest.NewRequest(method, "/", nil)
		req.Header["Range"] = []string{h}
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(rec, req, "", time.Time{}, io.NewSectionReader(zeros{}, 0, size))
		resp := rec.Result()
		cr := resp.Header.Get("Content-Range")

		// net/http ignores a header with more than 200 specs
		// (GODEBUG httpservecontentmaxranges), before parsing it.
		if spec, ok := strings.CutPrefix(h, "bytes="); ok && strings.Count(spec, ",")+1 > 200 {
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("ServeContent answered %d to %d specs, want 200", resp.StatusCode, strings.Count(spec, ",")+1)
			}
			return
		}

		if err != nil {
			if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || cr != "" {
				t.Fatalf("ParseRanges(%q, %d): %v, but ServeContent answered %d with Content-Range %q, not 416 for a malformed header", h, size, err, resp.StatusCode, cr)
			}
			return
		}
		// sum wraps as net/http's sumRangesSize does.
		var sum int64
		for _, r := range rs {
			sum += r.Length
		}
		switch resp.StatusCode {
		case http.StatusRequestedRangeNotSatisfiable:
			if len(rs) != 0 || cr != "bytes */"+strconv.FormatInt(size, 10) {
				t.Fatalf("ParseRanges(%q, %d) = %v, but ServeContent answered 416 with Content-Range %q", h, size, rs, cr)
			}
		case http.StatusOK:
			if len(rs) != 0 && sum <= size {
				t.Fatalf("ParseRanges(%q, %d) = %v, totalling %d, but ServeContent answered 200, not 206", h, size, rs, sum)
			}
		case http.StatusPartialContent:
			served, ok := servedRanges(t, resp, method, size)
			if !ok {
				return // a multipart HEAD response: no parts to compare
			}
			if diff := cmp.Diff(rs, served); diff != "" {
				t.Fatalf("ParseRanges(%q, %d) differs from the ranges ServeContent served (-ParseRanges +served):\n%s", h, size, diff)
			}
		default:
			t.Fatalf("ServeContent answered %d to Range %q", resp.StatusCode, h)
		}
	})
}

// servedRanges returns the non-empty ranges of a 206 response, from its
// Content-Range or its parts' Content-Range; ok is false for a multipart
// answer to HEAD, which has no parts.
func servedRanges(t *testing.T, resp *http.Response, method string, size int64) (rs []Range, ok bool) {
	t.Helper()
	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "multipart/byteranges" {
		return appendRange(t, nil, resp.Header.Get("Content-Range"), size), true
	}
	if method == http.MethodHead {
		return nil, false
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return rs, true
		}
		if err != nil {
			t.Fatalf("multipart body: %v", err)
		}
		rs = appendRange(t, rs, p.Header.Get("Content-Range"), size)
	}
}

// appendRange appends the range that Content-Range value cr describes,
// unless it is empty: net/http describes the empty range of a zero suffix
// as "bytes SIZE-(SIZE-1)/SIZE".
func appendRange(t *testing.T, rs []Range, cr string, size int64) []Range {
	t.Helper()
	spec, ok := strings.CutPrefix(cr, "bytes ")
	spec, total, ok2 := strings.Cut(spec, "/")
	first, last, ok3 := strings.Cut(spec, "-")
	start, err1 := strconv.ParseInt(first, 10, 64)
	end, err2 := strconv.ParseInt(last, 10, 64)
	if !ok || !ok2 || !ok3 || err1 != nil || err2 != nil || total != strconv.FormatInt(size, 10) {
		t.Fatalf("ServeContent sent Content-Range %q for size %d", cr, size)
	}
	if end < start {
		return rs
	}
	return append(rs, Range{Start: start, Length: end - start + 1})
}
