package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
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
	for _, key := range []string{"file", "container", "duration_seconds", "bitrate_avg_bps", "bitrate_peak_bps", "peak_window_seconds", "peak_method", "streams", "tags", "pace_bps"} {
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
	// The server paces by the peak scaled to the file's bytes: never
	// below the peak.
	if pace, peak := reports[0]["pace_bps"].(float64), reports[0]["bitrate_peak_bps"].(float64); pace < peak || pace > 1.2*peak {
		t.Errorf("pace_bps %v for a peak of %v", pace, peak)
	}
	if _, ok := reports[1]["pace_bps"]; ok {
		t.Errorf("missing file has a pace_bps: %v", reports[1])
	}
}

// TestProbeEveryFixture runs `mustserv probe --json` and plain `mustserv
// probe` over every fixture of package probe: each gets one report with
// every stable field; the damaged ones (empty, random, truncated) carry an
// error and make the command exit 1, the others carry a container, a
// duration and bitrates and no error.
func TestProbeEveryFixture(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "..", "internal", "probe", "testdata", "*", "*.*"))
	if err != nil {
		t.Fatal(err)
	}
	var fixtures []string
	for _, f := range files {
		if filepath.Ext(f) != ".sh" && !strings.Contains(f, string(filepath.Separator)+"fuzz"+string(filepath.Separator)) {
			fixtures = append(fixtures, f)
		}
	}
	if len(fixtures) < 30 {
		t.Fatalf("only %d fixtures found", len(fixtures))
	}
	damaged := func(f string) bool {
		base := filepath.Base(f)
		return strings.HasPrefix(base, "empty") || strings.HasPrefix(base, "random") || strings.HasPrefix(base, "truncated")
	}

	var stdout, stderr bytes.Buffer
	err = run(context.Background(), append([]string{"probe", "--json"}, fixtures...), func(string) string { return "" }, &stdout, &stderr)
	if err == nil || exitCode(err) != 1 {
		t.Errorf("run = %v (exit %d), want exit 1: some fixtures are damaged", err, exitCode(err))
	}
	var reports []map[string]any
	for line := range strings.Lines(stdout.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		reports = append(reports, m)
	}
	if len(reports) != len(fixtures) {
		t.Fatalf("%d reports for %d files", len(reports), len(fixtures))
	}
	for i, rep := range reports {
		f := fixtures[i]
		if rep["file"] != f {
			t.Errorf("report %d is for %v, want %s", i, rep["file"], f)
		}
		for _, key := range []string{"container", "duration_seconds", "bitrate_avg_bps", "bitrate_peak_bps", "peak_window_seconds", "peak_method", "streams", "tags"} {
			if _, ok := rep[key]; !ok {
				t.Errorf("%s: report has no %q field: %v", f, key, rep)
			}
		}
		e, _ := rep["error"].(string)
		if damaged(f) {
			if e == "" {
				t.Errorf("%s: damaged file reported without an error: %v", f, rep)
			}
			continue
		}
		d, _ := rep["duration_seconds"].(float64)
		avg, _ := rep["bitrate_avg_bps"].(float64)
		if e != "" || rep["container"] == "" || d <= 0 || avg <= 0 {
			t.Errorf("%s: %v", f, rep)
		}
	}

	// The human-readable form: one summary line per file.
	stdout.Reset()
	run(context.Background(), append([]string{"probe"}, fixtures...), func(string) string { return "" }, &stdout, &stderr)
	for _, f := range fixtures {
		if !strings.Contains(stdout.String(), f+": ") {
			t.Errorf("plain output has no line for %s", f)
		}
	}
}
