package httporigin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"mustserv/internal/storage"
)

const (
	// maxListing bounds a listing's body: an origin that sends more is
	// not sending a listing.
	maxListing = 32 << 20
	// headConcurrency is how many HEADs describe an HTML listing's files
	// at once.
	headConcurrency = 8
)

// entry is one child of a folder as its listing gives it.
type entry struct {
	name string
	dir  bool
	// known reports that the listing gave size and mtime (JSON); an
	// HTML index's files need a HEAD.
	known bool
	size  int64
	mtime time.Time
}

func (e entry) info() storage.FileInfo {
	return storage.FileInfo{Base: e.name, Bytes: e.size, MTime: e.mtime, Dir: e.dir}
}

// list fetches and parses the listing of the folder name.
func (b *Backend) list(ctx context.Context, name string) ([]entry, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	resp, err := b.do(ctx, http.MethodGet, b.dirURL(name), http.Header{"Accept": {"application/json"}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	if !strings.HasSuffix(resp.Request.URL.Path, "/") {
		// Go's FileServer redirects "file/" to "file": not a folder.
		return nil, fmt.Errorf("%w: not a folder", fs.ErrNotExist)
	}
	if err := checkEncoding(resp); err != nil {
		return nil, err
	}
	body, err := storage.ReadBody(resp, maxListing)
	if err != nil {
		return nil, err
	}
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return parseJSONListing(body)
	case mt == "text/html" || mt == "application/xhtml+xml":
		return parseHTMLListing(body), nil
	}
	return nil, unavailable("a listing of type %q", ct)
}

// jsonEntry is one element of nginx's autoindex_format json (and of
// another MuStServ's folder answer).
type jsonEntry struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	MTime string `json:"mtime"`
	Size  *int64 `json:"size"`
}

// parseJSONListing parses a JSON listing. Entries that are neither files
// nor folders (nginx's "other": broken links, fifos), or whose name is not
// one safe path segment, are left out; a file without a size, or a time
// that is not an HTTP date, make the listing garbled.
func parseJSONListing(body []byte) ([]entry, error) {
	var raw []jsonEntry
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, unavailable("garbled JSON listing: %v", err)
	}
	if raw == nil {
		return nil, unavailable("JSON listing is not an array")
	}
	var entries []entry
	seen := make(map[string]bool)
	for _, r := range raw {
		if !validSegment(r.Name) || seen[r.Name] || (r.Type != "file" && r.Type != "directory") {
			continue
		}
		seen[r.Name] = true
		e := entry{name: r.Name, dir: r.Type == "directory", known: true}
		if r.MTime != "" {
			t, err := parseTime(r.MTime)
			if err != nil {
				return nil, unavailable("garbled JSON listing: %q: mtime %q", r.Name, r.MTime)
			}
			e.mtime = t
		}
		if !e.dir {
			if r.Size == nil || *r.Size < 0 {
				return nil, unavailable("garbled JSON listing: %q: no size", r.Name)
			}
			e.size = *r.Size
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// parseHTMLListing returns the children an HTML index links to, in order
// and once each: links to "name" are files, to "name/" folders. The rest
// of the page (the parent link, sort links, absolute URLs, links into
// sub-folders) is ignored.
func parseHTMLListing(body []byte) []entry {
	var entries []entry
	seen := make(map[string]bool)
	for _, href := range anchorHrefs(string(body)) {
		name, dir, ok := childLink(href)
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		entries = append(entries, entry{name: name, dir: dir})
	}
	return entries
}

// childLink returns the child named by href, a link of an index page, if
// it is a relative link to a file or folder right below the page.
func childLink(href string) (name string, dir, ok bool) {
	if rel, found := strings.CutPrefix(href, "./"); found {
		href = rel // Apache writes "./a:b" so that a colon is not a scheme
	} else if i := strings.IndexAny(href, ":/"); i >= 0 && href[i] == ':' {
		return "", false, false // a scheme: an absolute URL
	}
	// A raw ? or # starts a query (sort links: "?C=N;O=D") or fragment;
	// in a name they are escaped.
	if href == "" || href[0] == '/' || strings.ContainsAny(href, "?#") {
		return "", false, false
	}
	href, dir = strings.CutSuffix(href, "/")
	if strings.Contains(href, "/") {
		return "", false, false
	}
	name, err := url.PathUnescape(href)
	if err != nil || !validSegment(name) {
		return "", false, false
	}
	return name, dir, true
}

// validSegment reports whether name is one path segment a Backend may
// show: not "", ".", "..", and without "/" (even one the origin sent
// escaped).
func validSegment(name string) bool {
	return name != "." && !strings.Contains(name, "/") && fs.ValidPath(name)
}

// anchorHrefs returns the href of every <a> tag of an HTML page, entities
// decoded. It is a tokenizer for index pages, not an HTML parser: it knows
// tags, quoted and unquoted attributes, and comments.
func anchorHrefs(page string) []string {
	var hrefs []string
	for {
		lt := strings.IndexByte(page, '<')
		if lt < 0 {
			return hrefs
		}
		page = page[lt+1:]
		if rest, ok := strings.CutPrefix(page, "!--"); ok {
			end := strings.Index(rest, "-->")
			if end < 0 {
				return hrefs
			}
			page = rest[end+3:]
			continue
		}
		n := 0
		for n < len(page) && isAlnum(page[n]) {
			n++
		}
		if n == 0 { // an end tag, <!DOCTYPE>, or a stray "<"
			continue
		}
		tag := page[:n]
		href, found, rest := tagHref(page[n:])
		page = rest
		if found && strings.EqualFold(tag, "a") {
			hrefs = append(hrefs, html.UnescapeString(href))
		}
	}
}

// tagHref reads the attributes of a tag up to its ">", and returns its
// first href and what follows the tag.
func tagHref(s string) (href string, found bool, rest string) {
	const space = " \t\n\r\f"
	for {
		s = strings.TrimLeft(s, space+"/")
		if s == "" {
			return href, found, s
		}
		if s[0] == '>' {
			return href, found, s[1:]
		}
		n := strings.IndexAny(s[1:], space+"/>=") + 1 // a leading "=" is part of the name
		if n == 0 {
			n = len(s)
		}
		key, val := s[:n], ""
		s = s[n:]
		if after, ok := strings.CutPrefix(strings.TrimLeft(s, space), "="); ok {
			val, s = attrValue(strings.TrimLeft(after, space))
		}
		if !found && strings.EqualFold(key, "href") {
			href, found = val, true
		}
	}
}

// attrValue reads a quoted or unquoted attribute value.
func attrValue(s string) (val, rest string) {
	if s != "" && (s[0] == '"' || s[0] == '\'') {
		end := strings.IndexByte(s[1:], s[0])
		if end < 0 {
			return s[1:], ""
		}
		return s[1 : 1+end], s[2+end:]
	}
	n := strings.IndexAny(s, " \t\n\r\f>")
	if n < 0 {
		n = len(s)
	}
	return s[:n], s[n:]
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// describe turns the entries of the folder dir into FileInfos, with a
// HEAD for each file whose size and time the listing did not give (at
// most headConcurrency at once). A file gone or forbidden by then is left
// out; any other failure fails the listing, since a listing with files
// missing would look like their deletion.
func (b *Backend) describe(ctx context.Context, dir string, entries []entry) ([]fs.FileInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	infos := make([]fs.FileInfo, len(entries))
	sem := make(chan struct{}, headConcurrency)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i, e := range entries {
		if e.dir || e.known {
			infos[i] = e.info()
			continue
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			fi, err := b.describeFile(ctx, path.Join(dir, e.name))
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
				return
			}
			if fi != nil {
				infos[i] = fi
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	if first != nil {
		return nil, first
	}
	return compact(infos), nil
}

// describeFile describes a file an HTML index links to: nil if it is gone
// or forbidden (a broken symlink nginx still lists is a 404), a folder if
// the origin redirects it to its "/" form.
func (b *Backend) describeFile(ctx context.Context, name string) (fs.FileInfo, error) {
	v, err := b.head(ctx, name)
	switch {
	case errors.Is(err, errFolder):
		return storage.FileInfo{Base: path.Base(name), Dir: true}, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return v.info(path.Base(name)), nil
}

// compact drops the nil entries of infos.
func compact(infos []fs.FileInfo) []fs.FileInfo {
	out := infos[:0]
	for _, fi := range infos {
		if fi != nil {
			out = append(out, fi)
		}
	}
	return out
}
