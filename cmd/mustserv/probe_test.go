package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
)

// TestProbeCommand: `mustserv probe --json` prints one report per file
// with the stable field names, keeps going past a file it cannot read, and
// then exits 1.
func TestProbeCommand(t *testing.T) {
	t.Parallel()
	good := filepath.Join("..", "..", "testdata", "media", "Music", "Sine Band", "First Album", "01 Sine Ä.mp3")
	missing := filepath.Join(t.TempDir(), "missing.mp3")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"probe", "--json", good, missing}, func(string) string { return "" }, &stdout, &stderr)
	if err == nil || exitCode(err) != 1 {
		t.Errorf("run = %v (exit %d), want exit 1 for the missing file", err, exitCode(err))
	}
	var reports []map[string]any
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		reports = append(reports, m)
	}
	if len(reports) != 2 {
		t.Fatalf("%d reports, want 2:\n%s", len(reports), stdout.String())
	}
	for _, key := range []string{"file", "container", "duration_seconds", "bitrate_avg_bps", "bitrate_peak_bps", "peak_window_seconds", "peak_method", "streams", "tags"} {
		if _, ok := reports[0][key]; !ok {
			t.Errorf("report has no %q field: %v", key, reports[0])
		}
	}
	if reports[0]["container"] != "mp3" || reports[0]["error"] != nil {
		t.Errorf("good file: %v", reports[0])
	}
	// The fixture is 40 s of 32 kbit/s CBR (testdata/make-media.sh).
	if d, _ := reports[0]["duration_seconds"].(float64); d < 39.9 || d > 40.1 {
		t.Errorf("duration %v, want 40 s", reports[0]["duration_seconds"])
	}
	if e, _ := reports[1]["error"].(string); e == "" {
		t.Errorf("missing file: no error in %v", reports[1])
	}
}
