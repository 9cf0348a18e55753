package s3

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The examples of AWS's "Signature Calculations for the Authorization
// Header" and "Authenticating Requests: Using Query Parameters" pages of
// the S3 API reference: their credentials, time and signatures.
var (
	exampleSigner = signer{access: "AKIAIOSFODNN7EXAMPLE", secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1"}
	exampleTime   = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
)

func TestSignAWSExamples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		url    string
		header http.Header
		want   string
	}{
		{
			name:   "GET object with a range",
			url:    "https://examplebucket.s3.amazonaws.com/test.txt",
			header: http.Header{"Range": {"bytes=0-9"}},
			want: "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
				"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date," +
				"Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		},
		{
			name: "GET bucket, a listing with a query",
			url:  "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
			want: "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request," +
				"SignedHeaders=host;x-amz-content-sha256;x-amz-date," +
				"Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(http.MethodGet, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			exampleSigner.sign(req, exampleTime, emptyHash)
			if got := req.Header.Get("Authorization"); got != tt.want {
				t.Errorf("Authorization\n got %s\nwant %s", got, tt.want)
			}
			if got := req.Header.Get("X-Amz-Date"); got != "20130524T000000Z" {
				t.Errorf("X-Amz-Date %q", got)
			}
		})
	}
}

func TestPresignAWSExample(t *testing.T) {
	t.Parallel()
	// Through the backend: AWS's example is virtual-host style on the
	// global endpoint.
	u, _ := url.Parse("s3://examplebucket?endpoint=https://s3.amazonaws.com&style=virtual&region=us-east-1")
	b, err := New(u, Options{AccessKey: exampleSigner.access, SecretKey: exampleSigner.secret,
		Now: func() time.Time { return exampleTime.In(time.FixedZone("elsewhere", 3600)) }})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.RedirectURL(t.Context(), "test.txt", 86400)
	if err != nil {
		t.Fatal(err)
	}
	const want = "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
		"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
		"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
		"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	if got != want {
		t.Errorf("RedirectURL\n got %s\nwant %s", got, want)
	}
}

func TestPresignLimits(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("s3://examplebucket/lib?endpoint=http://127.0.0.1:9000")
	b, err := New(u, Options{AccessKey: "a", SecretKey: "s", SessionToken: "tok/en+=",
		Now: func() time.Time { return exampleTime }})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.RedirectURL(t.Context(), "a b/c+d#e?.mp3", 30*24*3600)
	if err != nil {
		t.Fatal(err)
	}
	p, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if p.EscapedPath() != "/examplebucket/lib/a%20b/c%2Bd%23e%3F.mp3" {
		t.Errorf("path %q", p.EscapedPath())
	}
	q := p.Query()
	if q.Get("X-Amz-Expires") != "604800" {
		t.Errorf("X-Amz-Expires = %q, want SigV4's limit 604800", q.Get("X-Amz-Expires"))
	}
	if q.Get("X-Amz-Security-Token") != "tok/en+=" {
		t.Errorf("X-Amz-Security-Token = %q", q.Get("X-Amz-Security-Token"))
	}
	for _, ttl := range []int{0, -1} {
		if _, err := b.RedirectURL(t.Context(), "x.mp3", ttl); err == nil {
			t.Errorf("RedirectURL with ttl %d: no error", ttl)
		}
	}
	if _, err := b.RedirectURL(t.Context(), "../x.mp3", 60); err == nil {
		t.Error("RedirectURL of ../x.mp3: no error")
	}
}

func TestSignSessionToken(t *testing.T) {
	t.Parallel()
	s := exampleSigner
	s.token = "session-token"
	req, _ := http.NewRequest(http.MethodHead, "http://127.0.0.1:9000/b/k", nil)
	s.sign(req, exampleTime, emptyHash)
	if got := req.Header.Get("X-Amz-Security-Token"); got != "session-token" {
		t.Errorf("X-Amz-Security-Token = %q", got)
	}
	if got := req.Header.Get("Authorization"); !strings.Contains(got, "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,") {
		t.Errorf("the token is not signed: %s", got)
	}
}

func TestEscape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, path, query string
	}{
		{"plain-Name_1.2~", "plain-Name_1.2~", "plain-Name_1.2~"},
		{"a b", "a%20b", "a%20b"},
		{"a+b", "a%2Bb", "a%2Bb"},
		{"#?%&=", "%23%3F%25%26%3D", "%23%3F%25%26%3D"},
		{"dir/sub/f.mp3", "dir/sub/f.mp3", "dir%2Fsub%2Ff.mp3"},
		{"ü 日本", "%C3%BC%20%E6%97%A5%E6%9C%AC", "%C3%BC%20%E6%97%A5%E6%9C%AC"},
		{"*'()!$,;:@", "%2A%27%28%29%21%24%2C%3B%3A%40", "%2A%27%28%29%21%24%2C%3B%3A%40"},
	}
	for _, tt := range tests {
		if got := escapePath(tt.in); got != tt.path {
			t.Errorf("escapePath(%q) = %q, want %q", tt.in, got, tt.path)
		}
		if got := escape(tt.in, false); got != tt.query {
			t.Errorf("escape(%q, false) = %q, want %q", tt.in, got, tt.query)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	t.Parallel()
	q := url.Values{
		"prefix":    {"a b/+"},
		"list-type": {"2"},
		"a":         {"2", "1"},
		"a-b":       {"x"},
		"empty":     {""},
	}
	// Sorted by escaped name, then value: "a" before "a-b", though
	// "a-b=" sorts before "a=" as strings.
	const want = "a=1&a=2&a-b=x&empty=&list-type=2&prefix=a%20b%2F%2B"
	if got := canonicalQuery(q); got != want {
		t.Errorf("canonicalQuery\n got %s\nwant %s", got, want)
	}
}
