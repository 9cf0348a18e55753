package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"mustserv/internal/storage"
)

// fetcher reads ranges of one version of one object.
type fetcher struct {
	b    *Backend
	name string
	url  *url.URL
	v    version
}

// fetch is the storage.FetchFunc of an opened file: a signed GET of bytes
// [off, off+n) that S3 answers only while the object has the ETag it was
// opened with.
func (f *fetcher) fetch(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if off < 0 || n <= 0 || off+n > f.v.size {
		// Never a request: an empty object has no range to ask for.
		return nil, f.err(fmt.Errorf("range %d+%d outside the object's %d bytes", off, n, f.v.size))
	}
	h := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", off, off+n-1)}}
	if f.v.etag != "" {
		h.Set("If-Match", f.v.etag)
	} else {
		h.Set("If-Unmodified-Since", f.v.mtime.Format(http.TimeFormat))
	}
	resp, err := f.b.do(ctx, http.MethodGet, f.url, h)
	if err != nil {
		return nil, f.err(err)
	}
	if err := f.check(resp, off, n); err != nil {
		resp.Body.Close()
		return nil, f.err(err)
	}
	return &exactBody{f: f, body: resp.Body, left: n}, nil
}

// err names the file in a fetch's error.
func (f *fetcher) err(err error) error {
	return &fs.PathError{Op: "read", Path: f.name, Err: err}
}

// changed is the error of an answer from another version of the object.
func changed(format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", storage.ErrChanged, storage.ErrUnavailable, fmt.Sprintf(format, args...))
}

// check accepts an answer only if its body is exactly the asked range of
// the opened version.
func (f *fetcher) check(resp *http.Response, off, n int64) error {
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusPreconditionFailed:
		return changed("S3 answered %s", resp.Status)
	case http.StatusRequestedRangeNotSatisfiable:
		return changed("S3 answered %s: the object is shorter", resp.Status)
	default:
		return statusError(resp)
	}
	if err := f.checkContentRange(resp.Header.Get("Content-Range"), off, n); err != nil {
		return err
	}
	if resp.ContentLength >= 0 && resp.ContentLength != n {
		return unavailable("Content-Length %d for a range of %d bytes", resp.ContentLength, n)
	}
	if etag := resp.Header.Get("ETag"); etag != f.v.etag {
		return changed("ETag %q, opened as %q", etag, f.v.etag)
	}
	return nil
}

// checkContentRange accepts "bytes off-(off+n-1)/size" and nothing else.
func (f *fetcher) checkContentRange(cr string, off, n int64) error {
	first, last, total, ok := parseContentRange(cr)
	switch {
	case !ok:
		return unavailable("Content-Range %q", cr)
	case total != f.v.size:
		return changed("Content-Range %q: the object had %d bytes", cr, f.v.size)
	case first != off || last != off+n-1:
		return unavailable("Content-Range %q for bytes %d-%d", cr, off, off+n-1)
	}
	return nil
}

// parseContentRange parses "bytes first-last/total" (RFC 9110 14.4).
func parseContentRange(s string) (first, last, total int64, ok bool) {
	s, ok = strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, 0, false
	}
	rng, tot, ok1 := strings.Cut(s, "/")
	a, b, ok2 := strings.Cut(rng, "-")
	if !ok1 || !ok2 {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	first, err1 = strconv.ParseInt(a, 10, 64)
	last, err2 = strconv.ParseInt(b, 10, 64)
	total, err3 = strconv.ParseInt(tot, 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || first < 0 || last < first || total <= last {
		return 0, 0, 0, false
	}
	return first, last, total, true
}

// exactBody yields exactly left bytes of body, or an error.
type exactBody struct {
	f    *fetcher
	body io.ReadCloser
	left int64
}

func (r *exactBody) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.body.Read(p)
	r.left -= int64(n)
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF && r.left == 0:
		return n, io.EOF
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("%w: %w: the answer ended %d bytes short", storage.ErrUnavailable, io.ErrUnexpectedEOF, r.left)
	default:
		err = classify(err)
	}
	return n, r.f.err(err)
}

// Close closes the answer's body.
func (r *exactBody) Close() error { return r.body.Close() }
