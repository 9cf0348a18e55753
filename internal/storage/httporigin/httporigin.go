// Package httporigin is the storage backend of a library whose files live
// on another HTTP server: nginx or Apache with a directory index (nginx's
// autoindex_format json, or the HTML index of either), or another
// MuStServ. Folders are listed with a GET of their URL, files described
// with a HEAD and read with Range GETs through storage.OpenRemote, which
// does the read-ahead and caching.
//
// It only reads: it never writes to the origin, never follows a redirect
// to another host, and never lets a name from the origin reach outside the
// folder that listed it. Credentials (the URL's user:password or a bearer
// token) go out as headers and never appear in an error or in String.
package httporigin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"mustserv/internal/storage"
)

// Options configure a Backend. The zero value is sane.
type Options struct {
	// Client sends the requests; nil means a client of the backend's own
	// (dial 5 s, response header 15 s). Either way redirects to another
	// host or scheme are refused.
	Client *http.Client
	// Token, if set, is sent as "Authorization: Bearer <Token>" on every
	// request (another MuStServ's API key).
	Token string
	// Remote tunes the files Open returns (storage.OpenRemote).
	Remote storage.RemoteOptions
	// Timeout bounds each metadata request (a HEAD or a listing, its body
	// included); 0 means 15 s.
	Timeout time.Duration
}

var _ storage.Backend = (*Backend)(nil)

// Backend is a storage.Backend over the files below one HTTP(S) URL.
// It is safe for concurrent use.
type Backend struct {
	base    *url.URL // ends with "/", no userinfo
	auth    string   // the Authorization header, "" for none
	client  *http.Client
	own     bool // client was made here (Close closes its connections)
	remote  storage.RemoteOptions
	timeout time.Duration
}

// New returns the backend of the files below base, an http or https URL
// (a "/" is added to its path if missing). A user:password in base is sent
// as Basic authentication.
func New(base *url.URL, opt Options) (*Backend, error) {
	if base == nil {
		return nil, errors.New("httporigin: no URL")
	}
	u := *base
	u.User = nil
	if err := checkBase(&u); err != nil {
		return nil, fmt.Errorf("httporigin: %s: %w", u.String(), err)
	}
	auth, err := authorization(base.User, opt.Token)
	if err != nil {
		return nil, fmt.Errorf("httporigin: %s: %w", u.String(), err)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	b := &Backend{base: &u, auth: auth, client: newClient(opt.Client), own: opt.Client == nil,
		remote: opt.Remote, timeout: opt.Timeout}
	if b.timeout <= 0 {
		b.timeout = 15 * time.Second
	}
	return b, nil
}

// checkBase reports what makes u unusable as the root of a library.
func checkBase(u *url.URL) error {
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("the URL must be http or https")
	case u.Host == "" || u.Opaque != "":
		return errors.New("the URL has no host")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return errors.New("the URL must not have a query or fragment")
	}
	return nil
}

// authorization is the Authorization header for the URL's userinfo or the
// token; both at once are refused, since only one can be sent.
func authorization(user *url.Userinfo, token string) (string, error) {
	switch {
	case user != nil && token != "":
		return "", errors.New("both a user in the URL and a token: choose one")
	case token != "":
		return "Bearer " + token, nil
	case user != nil:
		pass, _ := user.Password()
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user.Username()+":"+pass)), nil
	}
	return "", nil
}

// String returns the base URL without credentials.
func (b *Backend) String() string { return b.base.String() }

// Remote reports true: the files are fetched over the network.
func (b *Backend) Remote() bool { return true }

// Close closes the idle connections of the backend's own client.
func (b *Backend) Close() error {
	if b.own {
		b.client.CloseIdleConnections()
	}
	return nil
}

// Stat describes the file or folder name: a file by a HEAD, a folder by
// its entry in its parent's listing.
func (b *Backend) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	if err := storage.ValidName("stat", name); err != nil {
		return nil, err
	}
	fi, err := b.stat(ctx, name)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return fi, nil
}

// stat is Stat after the name's check, with unwrapped errors.
func (b *Backend) stat(ctx context.Context, name string) (fs.FileInfo, error) {
	if name == "." {
		return b.statDir(ctx, name)
	}
	v, err := b.head(ctx, name)
	if errors.Is(err, errFolder) {
		return b.statDir(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	return v.info(path.Base(name)), nil
}

// statDir describes the folder name as its parent's listing does (so that
// Stat and ReadDir agree on its time); a folder the parent does not list
// (nginx hides dot-folders) is confirmed by listing it, and has no time.
func (b *Backend) statDir(ctx context.Context, name string) (fs.FileInfo, error) {
	base := path.Base(name)
	if name != "." {
		if entries, err := b.list(ctx, path.Dir(name)); err == nil {
			for _, e := range entries {
				if e.name == base && e.dir {
					return e.info(), nil
				}
			}
		}
	}
	if _, err := b.list(ctx, name); err != nil {
		return nil, err
	}
	return storage.FileInfo{Base: base, Dir: true}, nil
}

// Open opens the file name: a HEAD learns its size and validators, and
// reads are Range GETs that fail with storage.ErrChanged once the file
// is no longer the one opened.
func (b *Backend) Open(ctx context.Context, name string) (storage.File, error) {
	if err := storage.ValidName("open", name); err != nil {
		return nil, err
	}
	if name == "." {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: a folder", fs.ErrNotExist)}
	}
	v, err := b.head(ctx, name)
	if errors.Is(err, errFolder) {
		err = fmt.Errorf("%w: a folder", fs.ErrNotExist)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	f := &fetcher{b: b, name: name, url: b.fileURL(name), v: v}
	o := storage.Object{Info: v.info(path.Base(name)), Key: b.key(name, v), Fetch: f.fetch}
	return storage.OpenRemote(ctx, o, b.remote), nil
}

// key identifies this version of the file for the range cache; a file
// with neither ETag nor Last-Modified cannot be told from its next
// version, so it is never cached.
func (b *Backend) key(name string, v version) string {
	if v.etag == "" && v.mtime.IsZero() {
		return ""
	}
	return fmt.Sprintf("%s %q %d %d", b.fileURL(name), v.etag, v.size, v.mtime.Unix())
}

// ReadDir lists the folder name. Entries an HTML index gives without size
// and time are described by a HEAD each, a few at a time.
func (b *Backend) ReadDir(ctx context.Context, name string) ([]fs.FileInfo, error) {
	if err := storage.ValidName("readdir", name); err != nil {
		return nil, err
	}
	entries, err := b.list(ctx, name)
	if err == nil {
		var infos []fs.FileInfo
		infos, err = b.describe(ctx, name, entries)
		if err == nil {
			return infos, nil
		}
	}
	return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
}

// fileURL is the URL of the file name.
func (b *Backend) fileURL(name string) *url.URL {
	u := *b.base
	if name == "." {
		return &u
	}
	u.Path += name
	u.RawPath = b.base.EscapedPath() + escapeName(name)
	return &u
}

// dirURL is the URL of the folder name's listing.
func (b *Backend) dirURL(name string) *url.URL {
	u := b.fileURL(name)
	if name != "." {
		u.Path += "/"
		u.RawPath += "/"
	}
	return u
}

// escapeName escapes every segment of name, so that ?, #, % and the rest
// reach the origin as part of the path.
func escapeName(name string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
