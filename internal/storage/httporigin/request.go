package httporigin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"mustserv/internal/storage"
)

// errFolder is head's answer for a name the origin redirects to name + "/".
var errFolder = errors.New("a folder")

// errOtherHost refuses a redirect that leaves the origin.
var errOtherHost = errors.New("redirect to another host or scheme refused")

// newClient returns c's settings with our redirect policy, or a client of
// our own when c is nil.
func newClient(c *http.Client) *http.Client {
	// A listing's HEADs reuse connections.
	return storage.NewHTTPClient(c, 2*headConcurrency, checkRedirect)
}

// checkRedirect follows redirects within the origin, refuses those that
// leave it (our Authorization must not go elsewhere, nor our trust), and
// hands a redirect to a folder back to the caller, which is how a HEAD
// learns that a name is a folder.
func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || !strings.EqualFold(req.URL.Host, first.Host) {
		return errOtherHost
	}
	if req.Response != nil && isFolderRedirect(req.Response) {
		return http.ErrUseLastResponse
	}
	if len(via) >= 5 {
		return errors.New("more than 5 redirects")
	}
	return nil
}

// do sends one request to the origin with the backend's headers.
func (b *Backend) do(ctx context.Context, method string, u *url.URL, h http.Header) (*http.Response, error) {
	req, err := storage.NewRequest(ctx, method, u, h)
	if err != nil {
		return nil, err
	}
	if b.auth != "" {
		req.Header.Set("Authorization", b.auth)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		// After a redirect, the error names the redirect's target: a
		// URL of the origin's choosing, which may hold its secrets.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = u.String()
		}
		return nil, storage.ClassifyTransport(err)
	}
	return resp, nil
}

// statusError is the error of an answer whose status is not the one
// asked for.
func statusError(resp *http.Response) error {
	kind := storage.ErrUnavailable
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone:
		kind = fs.ErrNotExist
	case http.StatusForbidden:
		kind = fs.ErrPermission // that file or folder, not all of them
	}
	// 401: the library's credentials (URL user, token) are wrong or
	// missing: this server's configuration, ErrUnavailable (a logged
	// 502), not a client's mistake.
	return fmt.Errorf("%w: the origin answered %s", kind, resp.Status)
}

// unavailable is an answer the origin cannot have meant.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", storage.ErrUnavailable, fmt.Sprintf(format, args...))
}

// version is what a HEAD tells of a file: its bytes are this many, of
// this time, with this ETag, for as long as the origin says so.
type version struct {
	size    int64
	mtime   time.Time // UTC, second precision; zero if not given
	lastMod string    // the Last-Modified header as sent
	etag    string
}

func (v version) info(name string) storage.FileInfo {
	return storage.FileInfo{Base: name, Bytes: v.size, MTime: v.mtime}
}

// strongETag reports whether v's ETag may be used in If-Match (RFC 9110
// 13.1.1: If-Match uses the strong comparison; a weak tag never matches).
func (v version) strongETag() bool {
	return v.etag != "" && !strings.HasPrefix(v.etag, "W/")
}

// head describes the file name with a HEAD; errFolder if it is a folder.
func (b *Backend) head(ctx context.Context, name string) (version, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	resp, err := b.do(ctx, http.MethodHead, b.fileURL(name), nil)
	if err != nil {
		return version{}, err
	}
	resp.Body.Close()
	switch {
	case isFolderRedirect(resp):
		return version{}, errFolder
	case resp.StatusCode != http.StatusOK:
		return version{}, statusError(resp)
	case resp.ContentLength < 0:
		return version{}, unavailable("no Content-Length in the answer to HEAD")
	}
	if err := checkEncoding(resp); err != nil {
		return version{}, err
	}
	v := version{size: resp.ContentLength, etag: resp.Header.Get("ETag"), lastMod: resp.Header.Get("Last-Modified")}
	if v.lastMod != "" {
		if v.mtime, err = parseTime(v.lastMod); err != nil {
			return version{}, unavailable("Last-Modified %q: %v", v.lastMod, err)
		}
	}
	return v, nil
}

// isFolderRedirect reports whether resp redirects to a folder, as nginx,
// Apache and Go's FileServer answer for a folder asked without its slash.
// Only the Location's last character is looked at: Go's FileServer does
// not escape it ("sub dir #1/" is its answer for "sub%20dir%20%231"), so
// its path cannot be compared with ours; Stat confirms by listing.
func isFolderRedirect(resp *http.Response) bool {
	return resp.StatusCode >= 300 && resp.StatusCode <= 399 &&
		strings.HasSuffix(resp.Header.Get("Location"), "/")
}

// checkEncoding refuses a compressed answer, whose lengths and ranges are
// not the file's.
func checkEncoding(resp *http.Response) error {
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return unavailable("the origin sent Content-Encoding %q", ce)
	}
	return nil
}

// parseTime parses an HTTP date (Last-Modified, nginx's JSON mtime) into
// UTC, so that every path to a file's time gives the same time.Time.
func parseTime(s string) (time.Time, error) {
	t, err := http.ParseTime(s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
