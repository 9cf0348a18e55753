package s3

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseLocation(t *testing.T) {
	t.Parallel()
	// What a test compares: the location with its endpoint as a string.
	type want struct {
		Endpoint, Region, Bucket, Prefix string
		Virtual                          bool
		ObjectURL                        string // of the key "k/ü x+.mp3"
	}
	env := map[string]string{}
	tests := []struct {
		name string
		url  string
		env  map[string]string
		want want
	}{
		{
			name: "AWS, region from the URL",
			url:  "s3://media/lib?region=eu-west-3",
			want: want{"https://s3.eu-west-3.amazonaws.com", "eu-west-3", "media", "lib", true,
				"https://media.s3.eu-west-3.amazonaws.com/k/%C3%BC%20x%2B.mp3"},
		},
		{
			name: "AWS, region from AWS_REGION",
			url:  "s3://media",
			env:  map[string]string{"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "sa-east-1"},
			want: want{"https://s3.ap-south-1.amazonaws.com", "ap-south-1", "media", "", true,
				"https://media.s3.ap-south-1.amazonaws.com/k/%C3%BC%20x%2B.mp3"},
		},
		{
			name: "AWS, region from AWS_DEFAULT_REGION",
			url:  "s3://media/",
			env:  map[string]string{"AWS_DEFAULT_REGION": "sa-east-1"},
			want: want{"https://s3.sa-east-1.amazonaws.com", "sa-east-1", "media", "", true,
				"https://media.s3.sa-east-1.amazonaws.com/k/%C3%BC%20x%2B.mp3"},
		},
		{
			name: "AWS, no region anywhere",
			url:  "s3://media/a/b/",
			want: want{"https://s3.us-east-1.amazonaws.com", "us-east-1", "media", "a/b", true,
				"https://media.s3.us-east-1.amazonaws.com/k/%C3%BC%20x%2B.mp3"},
		},
		{
			name: "endpoint: path style",
			url:  "s3://media/music?endpoint=http://127.0.0.1:9000&region=us-east-1",
			want: want{"http://127.0.0.1:9000", "us-east-1", "media", "music", false,
				"http://127.0.0.1:9000/media/k/%C3%BC%20x%2B.mp3"},
		},
		{
			name: "endpoint with a slash, virtual asked for",
			url:  "s3://media?endpoint=https://minio.example:9000/&style=virtual",
			want: want{"https://minio.example:9000", "us-east-1", "media", "", true,
				"https://media.minio.example:9000/k/%C3%BC%20x%2B.mp3"},
		},
		{
			name: "AWS in path style",
			url:  "s3://Legacy_Bucket?style=path",
			want: want{"https://s3.us-east-1.amazonaws.com", "us-east-1", "Legacy_Bucket", "", false,
				"https://s3.us-east-1.amazonaws.com/Legacy_Bucket/k/%C3%BC%20x%2B.mp3"},
		},
		{
			name: "escaped prefix",
			url:  "s3://media/My%20Music/%C3%BC?endpoint=http://h:1",
			want: want{"http://h:1", "us-east-1", "media", "My Music/ü", false,
				"http://h:1/media/k/%C3%BC%20x%2B.mp3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			e := env
			if tt.env != nil {
				e = tt.env
			}
			loc, err := parseLocation(u, func(k string) string { return e[k] })
			if err != nil {
				t.Fatal(err)
			}
			ou := loc.objectURL("k/ü x+.mp3")
			got := want{loc.endpoint.String(), loc.region, loc.bucket, loc.prefix, loc.virtual, ou.String()}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if ou.EscapedPath() != escapePath(ou.Path) {
				t.Errorf("the URL's path %q is not the signed %q", ou.EscapedPath(), escapePath(ou.Path))
			}
		})
	}
}

func TestParseLocationErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ url, want string }{
		{"http://bucket/x", "s3://"},
		{"s3:///prefix", "no bucket"},
		{"s3://key:secret@bucket/x", "credentials"},
		{"s3://bucket/a/../b", "prefix"},
		{"s3://bucket/a//b", "prefix"},
		{"s3://bucket?endpont=http://x", "unknown parameter"},
		{"s3://bucket?style=dns", "style"},
		{"s3://bucket?endpoint=ftp://x", "http or https"},
		{"s3://bucket?endpoint=http://x/sub", "alone"},
		{"s3://bucket?endpoint=http://u:p@x", "alone"},
		{"s3://bad_bucket?style=virtual", "character"},
		{"s3://a..b", "not a host name"},
		{"s3://bucket#frag", "s3://"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseLocation(u, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseLocation(%s) = %v, want an error about %q", tt.url, err, tt.want)
		}
	}
}

func TestCredentials(t *testing.T) {
	t.Parallel()
	env := map[string]string{"AWS_ACCESS_KEY_ID": "envkey", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "envtok"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name    string
		opt     Options
		env     func(string) string
		want    signer
		wantErr bool
	}{
		{name: "options", opt: Options{AccessKey: "k", SecretKey: "s"}, env: getenv, want: signer{access: "k", secret: "s"}},
		{name: "environment", env: getenv, want: signer{access: "envkey", secret: "envsecret", token: "envtok"}},
		{name: "only an access key", opt: Options{AccessKey: "k"}, env: getenv, wantErr: true},
		{name: "none", env: func(string) string { return "" }, wantErr: true},
	}
	for _, tt := range tests {
		got, err := credentials(tt.opt, tt.env)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: error %v, want error %v", tt.name, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestStringHasNoSecret(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("s3://media/lib?endpoint=http://127.0.0.1:9000")
	b, err := New(u, Options{AccessKey: "AKIDPUBLIC", SecretKey: "topsecret", SessionToken: "tokensecret"})
	if err != nil {
		t.Fatal(err)
	}
	const want = "s3://media/lib (http://127.0.0.1:9000)"
	if got := b.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
