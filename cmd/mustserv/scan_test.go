package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"mustserv/internal/index"
)

// TestScanCommand runs `mustserv scan` twice on a library with a file
// that cannot be probed: the first probes everything and names the broken
// file, the second finds nothing changed; both exit 0.
func TestScanCommand(t *testing.T) {
	t.Parallel()
	lib := filepath.Join(t.TempDir(), "Lib")
	for _, f := range []struct{ src, dst string }{
		{mediaDir + "/Music/Sine Band/First Album/01 Sine Ä.mp3", "a/1.mp3"},
		{mediaDir + "/Music/Lossless/tone.flac", "b/2.flac"},
		{mediaDir + "/Videos/clip.mp4", "3.mp4"},
		{"../../internal/probe/testdata/mp3/random.mp3", "b/broken.mp3"},
	} {
		dst := filepath.Join(lib, f.dst)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, readFile(t, f.src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := t.TempDir()
	summary := regexp.MustCompile(`scanned (\d+) files in \S+: (\d+) probed, (\d+) unchanged, (\d+) failed, (\d+) removed`)
	for i, want := range [][]string{{"4", "4", "0", "1", "0"}, {"4", "0", "4", "0", "0"}} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{"scan", "--data", data, lib}, func(string) string { return "" }, &stdout, &stderr); err != nil {
			t.Fatalf("scan %d: %v\n%s", i, err, stderr.String())
		}
		m := summary.FindStringSubmatch(stdout.String())
		if m == nil || strings.Join(m[1:], " ") != strings.Join(want, " ") {
			t.Errorf("scan %d printed %q, want files/probed/unchanged/failed/removed %v", i, stdout.String(), want)
		}
		if i == 0 && !strings.Contains(stderr.String(), "broken.mp3") {
			t.Errorf("scan %d did not name the broken file on stderr:\n%s", i, stderr.String())
		}
	}
	idx, err := index.Open(t.Context(), filepath.Join(data, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	if n, err := idx.Count(t.Context(), "Lib"); err != nil || n != 4 {
		t.Errorf("index holds %d items (%v), want 4", n, err)
	}
}

// TestAwkwardNamesRoundTrip: files whose names have spaces, #, ?, %, emoji
// or bytes that are not UTF-8 are indexed, listed by the API with stream
// URLs that lead back to exactly their bytes, and found by search.
func TestAwkwardNamesRoundTrip(t *testing.T) {
	t.Parallel()
	lib := filepath.Join(t.TempDir(), "Odd")
	src := readFile(t, mediaDir+"/Music/Sine Band/First Album/01 Sine Ä.mp3")
	names := []string{"a b #1 ?x=1&y=2 100%.mp3", "emoji 🎵 ünï.mp3", "bad \xff\xfe utf8.mp3", "semi;colon's \"q\".mp3", "+plus=eq[1]{2}.mp3"}
	if err := os.MkdirAll(filepath.Join(lib, "dir #?%"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		// Different bytes each, so that a mix-up shows.
		if err := os.WriteFile(filepath.Join(lib, "dir #?%", n), append(bytes.Clone(src), byte(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, lib)
	waitScanned(t, s.URL)
	resp, body := get(t, s.URL+"/api/browse/Odd/"+url.PathEscape("dir #?%"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("browse: %s: %s", resp.Status, body)
	}
	var listing struct {
		Items []struct {
			Name, Stream string
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &listing); err != nil {
		t.Fatal(err)
	}
	if len(listing.Items) != len(names) {
		t.Fatalf("listed %d items, want %d: %s", len(listing.Items), len(names), body)
	}
	for _, it := range listing.Items {
		p, err := url.PathUnescape(strings.TrimPrefix(it.Stream, "/stream/Odd/"))
		if err != nil {
			t.Fatalf("%q: %v", it.Stream, err)
		}
		want := readFile(t, filepath.Join(lib, filepath.FromSlash(p)))
		resp, got := get(t, s.URL+it.Stream)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
			t.Errorf("%q (%q): %s, %d bytes; want the file's %d", it.Name, it.Stream, resp.Status, len(got), len(want))
		}
	}
	for _, q := range []string{"emoji", "plus", "utf8", "semi"} {
		resp, body := get(t, s.URL+"/api/search?q="+q)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"total": 1`)) {
			t.Errorf("search %q: %s %s", q, resp.Status, body)
		}
	}
}

func TestProgressBar(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n     int64
		total int
		want  string
	}{
		{5, 0, ""},
		{0, 10, "[>                   ]   0% "},
		{5, 10, "[==========>         ]  50% "},
		{10, 10, "[====================] 100% "},
		{12, 10, "[====================] 100% "}, // more files than last time
	} {
		if got := progressBar(tc.n, tc.total); got != tc.want {
			t.Errorf("progressBar(%d, %d) = %q, want %q", tc.n, tc.total, got, tc.want)
		}
	}
}
