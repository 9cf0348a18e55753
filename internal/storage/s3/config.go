package s3

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
)

// location is where a library's objects are: a bucket on an endpoint,
// and a prefix of their keys.
type location struct {
	endpoint *url.URL // scheme and host only
	region   string
	bucket   string
	prefix   string // "" or a valid path without leading or trailing "/"
	virtual  bool   // virtual-host style: bucket.host/key
}

// parseLocation reads an s3://bucket/prefix?endpoint=&region=&style= URL;
// getenv supplies the region when the URL has none.
func parseLocation(u *url.URL, getenv func(string) string) (location, error) {
	if u.Scheme != "s3" {
		return location{}, errors.New("the URL must be s3://bucket/prefix")
	}
	if u.User != nil {
		return location{}, errors.New("credentials do not belong in the URL: use the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment")
	}
	if u.Opaque != "" || u.Fragment != "" {
		return location{}, errors.New("the URL must be s3://bucket/prefix")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return location{}, fmt.Errorf("query: %w", err)
	}
	for k := range q {
		if k != "endpoint" && k != "region" && k != "style" {
			return location{}, fmt.Errorf("unknown parameter %q (endpoint, region and style are known)", k)
		}
	}
	loc := location{bucket: u.Host, prefix: strings.Trim(u.Path, "/")}
	if loc.prefix != "" && !fs.ValidPath(loc.prefix) {
		return location{}, fmt.Errorf("prefix %q: empty, . or .. segments", loc.prefix)
	}
	loc.region = cmp.Or(q.Get("region"), getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"), "us-east-1")
	if err := loc.setEndpoint(q.Get("endpoint"), q.Get("style")); err != nil {
		return location{}, err
	}
	if err := checkBucket(loc.bucket, loc.virtual); err != nil {
		return location{}, err
	}
	return loc, nil
}

// setEndpoint sets the endpoint and the addressing style: path style by
// default on a given endpoint (what self-hosted servers expect),
// virtual-host style on AWS's (what AWS prefers).
func (loc *location) setEndpoint(endpoint, style string) error {
	switch style {
	case "", "path", "virtual":
	default:
		return fmt.Errorf("style %q: path or virtual", style)
	}
	loc.virtual = style == "virtual" || style == "" && endpoint == ""
	if endpoint == "" {
		endpoint = "https://s3." + loc.region + ".amazonaws.com"
	}
	e, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("endpoint: %w", err)
	}
	switch {
	case e.Scheme != "http" && e.Scheme != "https":
		return fmt.Errorf("endpoint %q: must be http or https", endpoint)
	case e.Host == "" || e.User != nil || e.RawQuery != "" || e.Fragment != "" || strings.Trim(e.Path, "/") != "":
		return fmt.Errorf("endpoint %q: must be scheme://host[:port] alone", endpoint)
	}
	loc.endpoint = &url.URL{Scheme: e.Scheme, Host: e.Host}
	return nil
}

// checkBucket refuses a bucket name S3 could not have; a virtual-host
// bucket must also be a DNS name.
func checkBucket(bucket string, virtual bool) error {
	if bucket == "" {
		return errors.New("no bucket: the URL must be s3://bucket/prefix")
	}
	for _, c := range []byte(bucket) {
		ok := 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-'
		if !ok && !virtual {
			ok = 'A' <= c && c <= 'Z' || c == '_' // legacy us-east-1 names
		}
		if !ok {
			return fmt.Errorf("bucket %q: character %q", bucket, c)
		}
	}
	if virtual && (strings.HasPrefix(bucket, ".") || strings.HasSuffix(bucket, ".") || strings.Contains(bucket, "..")) {
		return fmt.Errorf("bucket %q: not a host name, use style=path", bucket)
	}
	return nil
}

// key is the object key of the name (fs.ValidPath; "." is the prefix).
func (loc location) key(name string) string {
	switch {
	case name == ".":
		return loc.prefix
	case loc.prefix == "":
		return name
	}
	return loc.prefix + "/" + name
}

// dirKey is the prefix of the keys inside the folder name: its key and
// "/", or "" for the root of a bucket.
func (loc location) dirKey(name string) string {
	if k := loc.key(name); k != "" {
		return k + "/"
	}
	return ""
}

// objectURL is the URL of the object key ("" for the bucket itself),
// with its path escaped as SigV4 wants it.
func (loc location) objectURL(key string) *url.URL {
	u := *loc.endpoint
	if loc.virtual {
		u.Host = loc.bucket + "." + u.Host
		u.Path = "/" + key
	} else {
		u.Path = "/" + loc.bucket + "/" + key
	}
	u.RawPath = escapePath(u.Path)
	return &u
}

// bucketURL is the URL of the bucket with the query q (a listing).
func (loc location) bucketURL(q url.Values) *url.URL {
	u := loc.objectURL("")
	u.RawQuery = canonicalQuery(q)
	return u
}
