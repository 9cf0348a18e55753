package loadgen

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// version is what identifies the file a response holds, so that a resume
// can tell the same file from another version of it.
type version struct {
	etag, lastModified string
	size               int64 // -1 if the response does not say
}

func versionOf(resp *http.Response) version {
	return version{
		etag:         resp.Header.Get("ETag"),
		lastModified: resp.Header.Get("Last-Modified"),
		size:         fileSize(resp),
	}
}

// ifRange returns the If-Range a resume sends: the ETag, if it is strong.
// "A client MUST NOT generate an If-Range header field containing an
// entity tag that is marked as weak" (RFC 9110, section 13.1.5), and a
// date is only a weak validator here. A server that honours it answers a
// changed file with a 200, which continues rejects.
func (v version) ifRange() string {
	if v.etag == "" || strings.HasPrefix(v.etag, "W/") {
		return ""
	}
	return v.etag
}

// continues returns why resp, the answer to a resume from offset, does
// not continue the file v describes at that offset, or nil if it does: a
// player must never splice bytes of two versions of a file.
func (v version) continues(resp *http.Response, offset int64) error {
	if resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("HTTP %s to a Range request: the file from its start (changed, or no Range support), not spliced", resp.Status)
	}
	got := versionOf(resp)
	if got.etag != v.etag {
		return fmt.Errorf("ETag %q, the first response's was %q: another version of the file, not spliced", got.etag, v.etag)
	}
	if got.lastModified != v.lastModified {
		return fmt.Errorf("Last-Modified %q, the first response's was %q: another version of the file, not spliced",
			got.lastModified, v.lastModified)
	}
	if v.size >= 0 && got.size != v.size {
		return fmt.Errorf("file size %d, the first response's was %d: another version of the file, not spliced", got.size, v.size)
	}
	cr := resp.Header.Get("Content-Range")
	if first, _, _, ok := contentRange(cr); !ok || first != offset {
		return fmt.Errorf("Content-Range %q does not start at the byte asked for, not spliced", cr)
	}
	return nil
}

// span returns where a 200 or 206's body lies in the file: the offset of
// its first byte, and the end (exclusive) that its Content-Range or
// Content-Length promises, or -1. asked is the Range's start, for a 206
// without a Content-Range.
func span(resp *http.Response, asked int64) (start, end int64) {
	start, end = 0, -1
	if resp.StatusCode == http.StatusPartialContent {
		if first, last, _, ok := contentRange(resp.Header.Get("Content-Range")); ok {
			return first, last + 1
		}
		start = asked
	}
	if resp.ContentLength >= 0 {
		end = start + resp.ContentLength
	}
	return start, end
}

// contentRange parses a single range's Content-Range, "bytes
// first-last/size" or "bytes first-last/*" (RFC 9110, section 14.4);
// size is -1 for "*".
func contentRange(v string) (first, last, size int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	r, total, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(r, "-")
	if !found {
		return 0, 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, 0, false
	}
	size = -1
	if total != "*" {
		n, err := strconv.ParseInt(total, 10, 64)
		if err != nil || n <= last {
			return 0, 0, 0, false
		}
		size = n
	}
	return first, last, size, true
}
