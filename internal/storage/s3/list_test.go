package s3

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/storage"
)

// listXML is a ListObjectsV2 answer as AWS writes it for prefix "lib/".
const listXML = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Name>media</Name><Prefix>lib%2F</Prefix><KeyCount>7</KeyCount><MaxKeys>1000</MaxKeys>
<Delimiter>%2F</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
<Contents><Key>lib%2F</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified><Size>0</Size></Contents>
<Contents><Key>lib%2Fa+b%2Bc%26%23%3F%25.mp3</Key><LastModified>2024-01-02T03:04:05.678Z</LastModified><ETag>"x"</ETag><Size>11</Size></Contents>
<Contents><Key>lib%2F%C3%BC%20%E6%97%A5.flac</Key><LastModified>2024-01-02T03:04:05Z</LastModified><Size>3</Size></Contents>
<Contents><Key>lib%2F..</Key><LastModified>2024-01-02T03:04:05Z</LastModified><Size>3</Size></Contents>
<Contents><Key>lib%2Fbad%FF.mp3</Key><LastModified>2024-01-02T03:04:05Z</LastModified><Size>3</Size></Contents>
<CommonPrefixes><Prefix>lib%2FSub+Folder%2F</Prefix></CommonPrefixes>
<CommonPrefixes><Prefix>lib%2F%2F</Prefix></CommonPrefixes>
</ListBucketResult>`

func TestParsePage(t *testing.T) {
	t.Parallel()
	p, err := parsePage([]byte(listXML), "lib/")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	want := page{
		entries: []storage.FileInfo{
			{Base: "Sub Folder", Dir: true},
			{Base: "a b+c&#?%.mp3", Bytes: 11, MTime: at},
			{Base: "ü 日.flac", Bytes: 3, MTime: at},
		},
		count: 7,
		next:  "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=",
	}
	if diff := cmp.Diff(want, p, cmp.AllowUnexported(page{})); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestParsePageRaw(t *testing.T) {
	t.Parallel()
	// versitygw v1.8.0 ignores encoding-type=url: raw keys, an empty
	// EncodingType. A "+" is then a "+".
	const raw = `<ListBucketResult><EncodingType></EncodingType><IsTruncated>false</IsTruncated>
<Contents><Key>a+b %41.mp3</Key><LastModified>2026-11-24T17:58:21Z</LastModified><Size>1</Size></Contents>
<CommonPrefixes><Prefix>x+y/</Prefix></CommonPrefixes></ListBucketResult>`
	p, err := parsePage([]byte(raw), "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range p.entries {
		names = append(names, e.Base)
	}
	if diff := cmp.Diff([]string{"x+y", "a+b %41.mp3"}, names); diff != "" {
		t.Errorf("names (-want +got)\n%s", diff)
	}
	if p.next != "" {
		t.Errorf("next = %q on the last page", p.next)
	}
}

func TestParsePageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body string }{
		{"not XML", "<html>502 Bad Gateway"},
		{"truncated without token", `<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>`},
		{"key outside the prefix", `<ListBucketResult><Contents><Key>other/x</Key><LastModified>2024-01-02T03:04:05Z</LastModified><Size>1</Size></Contents></ListBucketResult>`},
		{"prefix outside the prefix", `<ListBucketResult><CommonPrefixes><Prefix>other/</Prefix></CommonPrefixes></ListBucketResult>`},
		{"negative size", `<ListBucketResult><Contents><Key>lib/x</Key><LastModified>2024-01-02T03:04:05Z</LastModified><Size>-1</Size></Contents></ListBucketResult>`},
		{"size not a number", `<ListBucketResult><Contents><Key>lib/x</Key><LastModified>2024-01-02T03:04:05Z</LastModified><Size>1k</Size></Contents></ListBucketResult>`},
		{"bad time", `<ListBucketResult><Contents><Key>lib/x</Key><LastModified>yesterday</LastModified><Size>1</Size></Contents></ListBucketResult>`},
		{"bad escape", `<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>lib/%zz</Key><LastModified>2024-01-02T03:04:05Z</LastModified><Size>1</Size></Contents></ListBucketResult>`},
	}
	for _, tt := range tests {
		_, err := parsePage([]byte(tt.body), "lib/")
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s: %v, want storage.ErrUnavailable", tt.name, err)
		}
	}
}

// FuzzParsePage checks that no answer, however garbled, panics the
// parser or yields a name that is not one path segment.
func FuzzParsePage(f *testing.F) {
	f.Add([]byte(listXML), "lib/")
	f.Add([]byte(listXML), "")
	f.Add([]byte(`<ListBucketResult><Contents><Key>a/b</Key><Size>1</Size></Contents><CommonPrefixes><Prefix>../</Prefix></CommonPrefixes></ListBucketResult>`), "")
	f.Add([]byte(`<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>.%2F.</Key><LastModified>2024-01-02T03:04:05Z</LastModified><Size>1</Size></Contents></ListBucketResult>`), "")
	f.Fuzz(func(t *testing.T, body []byte, dirKey string) {
		p, err := parsePage(body, dirKey)
		if err != nil {
			if !errors.Is(err, storage.ErrUnavailable) {
				t.Fatalf("error %v does not wrap storage.ErrUnavailable", err)
			}
			return
		}
		if len(p.entries) > p.count {
			t.Fatalf("%d entries of %d keys", len(p.entries), p.count)
		}
		for _, e := range p.entries {
			if !validSegment(e.Base) || strings.Contains(e.Base, "/") || e.Base == "." || e.Base == ".." {
				t.Fatalf("name %q", e.Base)
			}
			if e.Bytes < 0 || e.MTime.Nanosecond() != 0 {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}
