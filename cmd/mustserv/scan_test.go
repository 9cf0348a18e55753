package main

import (
	"bytes"
	"context"
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
