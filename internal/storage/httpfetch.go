package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file holds what the backends that read over HTTP (httporigin, s3)
// share: their client, the sentinel of a transport error, the checks of a
// range's answer and the reader that yields exactly its bytes. What one
// server speaks and the other does not (S3's XML errors, an autoindex's
// folder redirects, the preconditions each can honour) stays in its
// backend.

// NewHTTPClient returns a copy of c with checkRedirect as its redirect
// policy, or, when c is nil, a client of its own: dial 5 s, TLS handshake
// 10 s and response header 15 s (a stalled server is an error, not a hang),
// keeping maxIdlePerHost idle connections per host.
func NewHTTPClient(c *http.Client, maxIdlePerHost int, checkRedirect func(*http.Request, []*http.Request) error) *http.Client {
	var cl http.Client
	if c != nil {
		cl = *c
	} else {
		dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
		cl.Transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 15 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   maxIdlePerHost,
		}
	}
	cl.CheckRedirect = checkRedirect
	return &cl
}

// NewRequest is a request without a body of the URL u with the headers
// h, asking for the bytes as stored: a compressed body's bytes are not
// the file's, and its lengths and ranges would be wrong.
func NewRequest(ctx context.Context, method string, u *url.URL, h http.Header) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept-Encoding", "identity")
	return req, nil
}

// ClassifyTransport wraps an error of sending a request or reading its
// answer with the sentinel its caller maps to a status: a timeout is
// ErrTimeout, the caller's cancellation stays context.Canceled, anything
// else (refused, reset, a redirect refused) is ErrUnavailable.
func ClassifyTransport(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// ReadBody reads at most limit bytes of resp's body (a listing); more is
// an error wrapping ErrUnavailable.
func ReadBody(resp *http.Response, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, ClassifyTransport(err)
	}
	if int64(len(body)) > limit {
		return nil, unavailable("an answer longer than %d bytes", limit)
	}
	return body, nil
}

// CheckRangeRequest refuses a range [off, off+n) that is not inside a file
// of size bytes before it is asked for: an empty file has none.
func CheckRangeRequest(off, n, size int64) error {
	if off < 0 || n <= 0 || off+n > size {
		return fmt.Errorf("range %d+%d outside the file's %d bytes", off, n, size)
	}
	return nil
}

// RangeHeader is the Range header of bytes [off, off+n) (RFC 9110 14.2).
func RangeHeader(off, n int64) string {
	return fmt.Sprintf("bytes=%d-%d", off, off+n-1)
}

// CheckContentRange accepts the Content-Range header of exactly bytes
// [off, off+n) of a file of size bytes, "bytes off-(off+n-1)/size", and
// nothing else. Another total means the file changed since it was
// opened: the error then wraps ErrChanged as well as ErrUnavailable.
func CheckContentRange(header string, off, n, size int64) error {
	first, last, total, ok := ParseContentRange(header)
	switch {
	case !ok:
		return unavailable("Content-Range %q", header)
	case total != size:
		return Changed("Content-Range %q: the file had %d bytes", header, size)
	case first != off || last != off+n-1:
		return unavailable("Content-Range %q for bytes %d-%d", header, off, off+n-1)
	}
	return nil
}

// ParseContentRange parses "bytes first-last/total" (RFC 9110 14.4); ok
// is false for anything else, an unsatisfied "bytes */total" included.
func ParseContentRange(s string) (first, last, total int64, ok bool) {
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

// CheckContentLength refuses an answer whose Content-Length, if it has
// one, is not the n bytes asked for.
func CheckContentLength(resp *http.Response, n int64) error {
	if resp.ContentLength >= 0 && resp.ContentLength != n {
		return unavailable("Content-Length %d for a range of %d bytes", resp.ContentLength, n)
	}
	return nil
}

// Changed is the error of an answer from another version of a file than
// the one opened: it wraps ErrChanged and ErrUnavailable.
func Changed(format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", ErrChanged, ErrUnavailable, fmt.Sprintf(format, args...))
}

// unavailable is an answer the storage cannot have meant.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

// ExactBody returns a reader of exactly n bytes of body: a body that ends
// sooner is an error wrapping ErrUnavailable and io.ErrUnexpectedEOF, one
// that fails is classified by ClassifyTransport, and nothing past n bytes
// is read. Every error is passed through wrap (which names the file).
// Closing it closes body.
func ExactBody(body io.ReadCloser, n int64, wrap func(error) error) io.ReadCloser {
	return &exactBody{body: body, left: n, wrap: wrap}
}

// exactBody yields exactly left bytes of body, or an error.
type exactBody struct {
	body io.ReadCloser
	left int64
	wrap func(error) error
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
		err = fmt.Errorf("%w: %w: the answer ended %d bytes short", ErrUnavailable, io.ErrUnexpectedEOF, r.left)
	default:
		err = ClassifyTransport(err)
	}
	return n, r.wrap(err)
}

// Close closes the answer's body.
func (r *exactBody) Close() error { return r.body.Close() }

// FileInfo is the fs.FileInfo of a remote backend's file or folder: read
// only (0444, a folder 0555), with no Sys.
type FileInfo struct {
	Base  string    // the last element of the name
	Bytes int64     // a file's size
	MTime time.Time // zero where the storage does not tell
	Dir   bool
}

func (fi FileInfo) Name() string       { return fi.Base }
func (fi FileInfo) Size() int64        { return fi.Bytes }
func (fi FileInfo) ModTime() time.Time { return fi.MTime }
func (fi FileInfo) IsDir() bool        { return fi.Dir }
func (fi FileInfo) Sys() any           { return nil }

func (fi FileInfo) Mode() fs.FileMode {
	if fi.Dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
