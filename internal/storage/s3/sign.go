package s3

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AWS Signature Version 4, as S3 checks it: a canonical form of the
// request (method, path, query, some headers, the payload's hash) is
// hashed into a "string to sign", which is signed with a key derived from
// the secret, the day, the region and the service. The same steps sign a
// request's headers (Authorization) or a URL's query (presigned).

const (
	algorithm = "AWS4-HMAC-SHA256"
	service   = "s3"
	// emptyHash is the SHA-256 of an empty payload: every request here
	// has no body, so every one can sign its payload for free.
	emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// unsignedPayload is the payload hash of a presigned URL, whose
	// body the signer never sees.
	unsignedPayload = "UNSIGNED-PAYLOAD"
	amzDate         = "20060102T150405Z"
	// maxExpires is the longest validity SigV4 allows a presigned URL:
	// seven days.
	maxExpires = 7 * 24 * 60 * 60
)

// signer signs requests for one set of credentials in one region.
type signer struct {
	access, secret, token string
	region                string
}

// scope is the credential scope of a signature made at t.
func (s signer) scope(t time.Time) string {
	return t.Format("20060102") + "/" + s.region + "/" + service + "/aws4_request"
}

// sign adds the x-amz-* headers and the Authorization header to req, as
// of time t; payload is the SHA-256 of its body in hex (emptyHash for
// the requests the backend sends). Every header req carries that S3
// could act on (Range, If-Match) is signed, with Host and the x-amz ones.
func (s signer) sign(req *http.Request, t time.Time, payload string) {
	t = t.UTC()
	req.Header.Set("X-Amz-Date", t.Format(amzDate))
	req.Header.Set("X-Amz-Content-Sha256", payload)
	if s.token != "" {
		req.Header.Set("X-Amz-Security-Token", s.token)
	}
	names, canonHeaders := canonicalHeaders(req)
	cr := canonicalRequest(req.Method, req.URL, canonHeaders, names, payload)
	sig := s.signature(t, cr)
	req.Header.Set("Authorization", algorithm+" Credential="+s.access+"/"+s.scope(t)+
		",SignedHeaders="+names+",Signature="+sig)
}

// presign returns u (a GET of an object) with a query that authorises a
// GET for expires seconds from t, signed over the Host header only, so
// that any client (with any Range) can use it.
func (s signer) presign(u *url.URL, t time.Time, expires int) *url.URL {
	t = t.UTC()
	q := u.Query()
	q.Set("X-Amz-Algorithm", algorithm)
	q.Set("X-Amz-Credential", s.access+"/"+s.scope(t))
	q.Set("X-Amz-Date", t.Format(amzDate))
	q.Set("X-Amz-Expires", strconv.Itoa(expires))
	q.Set("X-Amz-SignedHeaders", "host")
	if s.token != "" {
		q.Set("X-Amz-Security-Token", s.token)
	}
	signed := *u
	signed.RawQuery = canonicalQuery(q)
	cr := canonicalRequest(http.MethodGet, &signed, "host:"+u.Host+"\n", "host", unsignedPayload)
	signed.RawQuery += "&X-Amz-Signature=" + s.signature(t, cr)
	return &signed
}

// signature signs the canonical request cr made at t.
func (s signer) signature(t time.Time, cr string) string {
	sum := sha256.Sum256([]byte(cr))
	toSign := algorithm + "\n" + t.Format(amzDate) + "\n" + s.scope(t) + "\n" + hex.EncodeToString(sum[:])
	return hex.EncodeToString(hmacSHA256(s.key(t), toSign))
}

// key derives the signing key of the day of t from the secret.
func (s signer) key(t time.Time) []byte {
	k := hmacSHA256([]byte("AWS4"+s.secret), t.Format("20060102"))
	k = hmacSHA256(k, s.region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalRequest is the text SigV4 hashes: method, escaped path,
// canonical query, the signed headers (each "name:value\n") and their
// names, and the payload's hash.
func canonicalRequest(method string, u *url.URL, headers, names, payload string) string {
	return strings.Join([]string{method, escapePath(u.Path), canonicalQuery(u.Query()),
		headers, names, payload}, "\n")
}

// signedHeader reports whether the header name (lower case) is signed:
// Host, what S3 acts on for a GET, and S3's own.
func signedHeader(name string) bool {
	switch name {
	case "host", "range", "if-match", "if-unmodified-since":
		return true
	}
	return strings.HasPrefix(name, "x-amz-")
}

// canonicalHeaders returns the signed headers' names ("a;b;c") and their
// canonical lines, sorted by name, values trimmed and their runs of
// spaces folded.
func canonicalHeaders(req *http.Request) (names, lines string) {
	h := map[string]string{"host": req.URL.Host}
	if req.Host != "" {
		h["host"] = req.Host
	}
	for k, v := range req.Header {
		lk := strings.ToLower(k)
		if signedHeader(lk) {
			vals := make([]string, len(v))
			for i, s := range v {
				vals[i] = strings.Join(strings.Fields(s), " ")
			}
			h[lk] = strings.Join(vals, ",")
		}
	}
	keys := slices.Sorted(maps.Keys(h))
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + ":" + h[k] + "\n")
	}
	return strings.Join(keys, ";"), b.String()
}

// canonicalQuery is q sorted by name then value, each escaped by AWS's
// rules and joined with "&". It is also the query the request sends, so
// that S3 sees exactly what was signed.
func canonicalQuery(q url.Values) string {
	type pair struct{ k, v string }
	var pairs []pair
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, pair{escape(k, false), escape(v, false)})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		return cmp.Or(strings.Compare(a.k, b.k), strings.Compare(a.v, b.v))
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// escapePath escapes an object's path for the URL and the canonical
// request alike: every segment escaped, the slashes kept.
func escapePath(p string) string {
	return escape(p, true)
}

// escape is AWS's URI encoding: A-Z a-z 0-9 - . _ ~ stay, every other
// byte of the UTF-8 becomes %XX in upper case (a space is %20, never
// "+"), and "/" stays only if keepSlash.
func escape(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (c == '/' && keepSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
