package s3

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"mustserv/internal/storage"
)

// maxListBody bounds one ListObjectsV2 answer: 1000 keys of 1024 bytes,
// escaped, with their XML, stay well below.
const maxListBody = 16 << 20

// listResult is the part of a ListObjectsV2 answer a listing needs.
type listResult struct {
	XMLName               xml.Name `xml:"ListBucketResult"`
	IsTruncated           bool     `xml:"IsTruncated"`
	NextContinuationToken string   `xml:"NextContinuationToken"`
	EncodingType          string   `xml:"EncodingType"`
	Contents              []struct {
		Key          string `xml:"Key"`
		LastModified string `xml:"LastModified"`
		Size         int64  `xml:"Size"`
	} `xml:"Contents"`
	CommonPrefixes []struct {
		Prefix string `xml:"Prefix"`
	} `xml:"CommonPrefixes"`
}

// page is one ListObjectsV2 answer, read.
type page struct {
	entries []storage.FileInfo // the folder's entries that can be names
	count   int                // keys and prefixes in the answer, usable or not
	next    string             // the continuation token, "" on the last page
}

// parsePage reads a ListObjectsV2 answer to a listing of the keys that
// begin with dirKey, delimited by "/". An entry whose name is not a
// single valid path segment is left out, as is the folder's own marker
// object (dirKey itself); an answer that is not XML, lists keys outside
// dirKey, or is truncated without a token is an error.
func parsePage(body []byte, dirKey string) (page, error) {
	var r listResult
	if err := xml.Unmarshal(body, &r); err != nil {
		return page{}, unavailable("a listing that is not ListObjectsV2 XML: %v", err)
	}
	if r.IsTruncated && r.NextContinuationToken == "" {
		return page{}, unavailable("a truncated listing without a continuation token")
	}
	p := page{count: len(r.Contents) + len(r.CommonPrefixes)}
	if r.IsTruncated {
		p.next = r.NextContinuationToken
	}
	encoded := r.EncodingType == "url"
	for _, c := range r.CommonPrefixes {
		name, err := entryName(c.Prefix, dirKey, encoded)
		if err != nil {
			return page{}, err
		}
		if name, ok := strings.CutSuffix(name, "/"); ok && validSegment(name) {
			p.entries = append(p.entries, storage.FileInfo{Base: name, Dir: true})
		}
	}
	for _, c := range r.Contents {
		name, err := entryName(c.Key, dirKey, encoded)
		if err != nil {
			return page{}, err
		}
		if !validSegment(name) {
			continue // the folder's marker, "a/" markers, names we cannot serve
		}
		if c.Size < 0 {
			return page{}, unavailable("key %q: size %d", name, c.Size)
		}
		mtime, err := parseListTime(c.LastModified)
		if err != nil {
			return page{}, unavailable("key %q: LastModified %q", name, c.LastModified)
		}
		p.entries = append(p.entries, storage.FileInfo{Base: name, Bytes: c.Size, MTime: mtime})
	}
	return p, nil
}

// entryName is key (URL-decoded if encoded) without dirKey.
func entryName(key, dirKey string, encoded bool) (string, error) {
	if encoded {
		k, err := decodeKey(key)
		if err != nil {
			return "", unavailable("listed key %q: %v", key, err)
		}
		key = k
	}
	name, ok := strings.CutPrefix(key, dirKey)
	if !ok {
		return "", unavailable("key %q listed for the prefix %q", key, dirKey)
	}
	return name, nil
}

// decodeKey undoes encoding-type=url. S3 escapes a key as a query value
// is escaped, a space as "+" and a "+" as "%2B"; a server that writes
// %20 for a space is read right too.
func decodeKey(s string) (string, error) {
	return url.QueryUnescape(s)
}

// validSegment reports whether name can be one segment of a name a
// Backend serves: not empty, ".", "..", without "/", valid UTF-8.
func validSegment(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.Contains(name, "/") && utf8.ValidString(name)
}

// parseListTime parses a listing's LastModified (ISO 8601, often with
// milliseconds) to whole seconds in UTC, as HEAD's Last-Modified gives it,
// so that a file's time is the same from a listing and from Stat.
func parseListTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.Truncate(time.Second).UTC(), nil
}

// listPage asks for one page of the keys below dirKey, after the
// continuation token (if not "").
func (b *Backend) listPage(ctx context.Context, dirKey, token string, maxKeys int) (page, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	q := url.Values{
		"list-type":     {"2"},
		"prefix":        {dirKey},
		"delimiter":     {"/"},
		"encoding-type": {"url"},
		"max-keys":      {strconv.Itoa(maxKeys)},
	}
	if token != "" {
		q.Set("continuation-token", token)
	}
	resp, err := b.do(ctx, http.MethodGet, b.loc.bucketURL(q), nil)
	if err != nil {
		return page{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return page{}, statusError(resp)
	}
	body, err := storage.ReadBody(resp, maxListBody)
	if err != nil {
		return page{}, err
	}
	return parsePage(body, dirKey)
}

// list returns the entries of the folder whose keys begin with dirKey,
// every page of them, and how many keys and prefixes it found. A name that is both a file and a folder (keys
// "a" and "a/b") is the file, as Stat finds it.
func (b *Backend) list(ctx context.Context, dirKey string) ([]storage.FileInfo, int, error) {
	var all []storage.FileInfo
	count := 0
	at := map[string]int{}
	seen := map[string]bool{}
	token := ""
	for {
		p, err := b.listPage(ctx, dirKey, token, b.maxKeys)
		if err != nil {
			return nil, 0, err
		}
		count += p.count
		for _, e := range p.entries {
			i, dup := at[e.Base]
			switch {
			case !dup:
				at[e.Base] = len(all)
				all = append(all, e)
			case all[i].Dir && !e.Dir:
				all[i] = e
			}
		}
		if p.next == "" {
			return all, count, nil
		}
		if seen[p.next] {
			return nil, 0, unavailable("the listing's continuation token %q came back", p.next)
		}
		seen[p.next] = true
		token = p.next
	}
}
