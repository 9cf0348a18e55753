package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/loadgen"
	"mustserv/internal/probe"
	"mustserv/internal/stream"
	"mustserv/internal/testenv"
)

// Pacing end to end: a real server paces files that ffmpeg encodes at test
// time (long enough to measure 30 s of paced delivery, too big to commit),
// and players simulated by internal/loadgen, or plain clients, take them.

// pacedFile is a media file encoded for a pacing test and what the probe
// finds in it.
type pacedFile struct {
	name string   // in the library folder
	args []string // ffmpeg's inputs and encoder options, before the output
	// Bits per second, by probe.Probe with the server's default 4 s
	// window; peak is what the server paces by (stream.PeakRate: the
	// probe's peak scaled by the file's bytes per media byte).
	peak, avg int64
}

// vbrMP3Args are ffmpeg's options for a VBR MP3 of seconds. Each source
// lasts its own duration, so the mix ends with them.
func vbrMP3Args(seconds int) []string {
	d := strconv.Itoa(seconds)
	return []string{
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=" + d,
		"-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.5:sample_rate=44100:seed=1:duration=" + d,
		// Noise that swells and fades every 10 s makes the VBR encoder's
		// frame sizes, and so the 4 s peak, differ from the average.
		"-filter_complex", "[1]volume='0.5+0.5*sin(2*PI*t/10)':eval=frame[n];[0][n]amix=inputs=2",
		"-c:a", "libmp3lame", "-q:a", "2",
	}
}

// cbrMP3Args are ffmpeg's options for a 128 kbit/s CBR MP3 of a tone.
func cbrMP3Args(seconds int) []string {
	return []string{
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=" + strconv.Itoa(seconds),
		"-c:a", "libmp3lame", "-b:a", "128k",
	}
}

// h264Args is about 2 Mbit/s of testsrc2 with a tone; the caller adds the
// audio encoder and container options.
func h264Args(seconds int, audio ...string) []string {
	d := strconv.Itoa(seconds)
	return append([]string{
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=" + d,
		"-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100:duration=" + d,
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
	}, audio...)
}

// makePacedFiles encodes files into dir, all at once, and probes each one
// as the server will.
func makePacedFiles(t *testing.T, dir string, files []pacedFile) {
	t.Helper()
	testenv.NeedTool(t, "ffmpeg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := playerCtx(t)
	start := time.Now()
	cmds := make([]*exec.Cmd, len(files))
	outs := make([]bytes.Buffer, len(files))
	for i, f := range files {
		args := append([]string{"-nostdin", "-v", "error", "-y"}, f.args...)
		cmds[i] = exec.CommandContext(ctx, "ffmpeg", append(args, filepath.Join(dir, f.name))...)
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], &outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Errorf("start ffmpeg for %s: %v", f.name, err)
			cmds[i] = nil
		}
	}
	for i, c := range cmds {
		if c == nil {
			continue
		}
		if err := c.Wait(); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(c.Args, " "), err, tail(outs[i].String(), 4000))
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("encoded %d files in %v", len(files), time.Since(start).Round(time.Millisecond))

	for i := range files {
		f := &files[i]
		name := filepath.Join(dir, f.name)
		file, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := file.Stat()
		if err != nil {
			file.Close()
			t.Fatal(err)
		}
		rep, err := probe.Probe(ctx, file, fi.Size(), fi.Name(), probe.Options{Window: 4 * time.Second})
		file.Close()
		if err != nil {
			t.Fatalf("probe %s: %v", f.name, err)
		}
		if rep.BitratePeak <= 0 || rep.BitrateAvg <= 0 {
			t.Fatalf("probe %s: peak %d, average %d bit/s; the server would pace it at unknown_rate", f.name, rep.BitratePeak, rep.BitrateAvg)
		}
		// The players consume the file's bytes at its average rate on
		// the wire (container included), as a player reading it does.
		f.peak, f.avg = stream.PeakRate(rep, fi.Size()), int64(float64(fi.Size())*8/rep.Duration)
		t.Logf("%s: %d bytes, %.3f s, average %d bit/s, peak %d bit/s (%s), paced by %d, peak/average %.3f",
			f.name, fi.Size(), rep.Duration, f.avg, rep.BitratePeak, rep.PeakMethod, f.peak, float64(f.peak)/float64(f.avg))
	}
}

// pacedRate is the rate in bits/s a stream of a file of peak bits/s is
// paced at after its burst with the default factor 1.25 and no uplink
// budget, computed as the server does: the peak in whole bytes per second
// (stream.ServePaced) times the factor.
func pacedRate(peak int64) float64 { return float64(peak/8*8) * 1.25 }

// TestPacingAccuracy is the acceptance of pacing: for a VBR MP3, an H.264
// MP4 and an MKV, after the burst each stream is delivered within ±5% of
// peak × factor over at least 30 s, players whose bitrate matches never
// stall, and startup latency's p95 is under a second (the burst). Three
// players per file play at the same time, for 40 s each.
func TestPacingAccuracy(t *testing.T) {
	t.Parallel()
	// 80 s of media: the burst (8 s at the peak) and 40 s at peak × 1.25
	// carry 58 s × the peak, less than the file while its peak is below
	// 1.38 × its average (the fixtures' are 1.04 to 1.25). Each player
	// must leave at its watch time, not at the end of the file, so that
	// its rate covers more than 30 s of paced delivery.
	const seconds = 80
	dir := filepath.Join(t.TempDir(), "Pacing")
	files := []pacedFile{
		{name: "vbr.mp3", args: vbrMP3Args(seconds)},
		{name: "h264.mp4", args: h264Args(seconds, "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart")},
		{name: "h264.mkv", args: h264Args(seconds, "-c:a", "libvorbis", "-q:a", "4")},
	}
	makePacedFiles(t, dir, files)
	s := startServer(t, dir) // the default [pace]: factor 1.25, burst 8s, window 4s, no budget

	const (
		perFile = 3
		watch   = 40 * time.Second
		// The burst is 8 s of media sent at full speed: on the loopback
		// it is over within a fraction of a second, so bytes counted
		// from 3 s on are paced ones.
		rateFrom = 3 * time.Second
		minSpan  = 30 * time.Second
	)
	byURL := map[string]pacedFile{}
	var targets []loadgen.Target
	for _, f := range files {
		u := s.URL + "/stream/Pacing/" + f.name
		byURL[u] = f
		// The player needs the average bitrate to play without stalls.
		targets = append(targets, loadgen.Target{URL: u, Bitrate: f.avg})
	}
	start := time.Now()
	rep, err := loadgen.Run(context.Background(), loadgen.Config{
		URLs:     targets,
		Players:  perFile * len(files),
		WatchMin: watch,
		RateFrom: rateFrom,
		Seed:     1,
		Timeout:  watch + 30*time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d players in %v", len(rep.Players), time.Since(start).Round(time.Millisecond))

	for _, p := range rep.Players {
		f := byURL[p.URL]
		want := pacedRate(f.peak)
		startup := -1.0
		if p.StartupMS != nil {
			startup = *p.StartupMS
		}
		rate, ratio := -1.0, -1.0
		if p.RateBPS != nil {
			rate = *p.RateBPS
			ratio = rate / want
		}
		// Playback starts at startup and lasts watched + stalled seconds;
		// the rate counts from rateFrom until then.
		span := time.Duration((startup/1e3+p.WatchedSeconds+p.StallSeconds)*float64(time.Second)) - rateFrom
		t.Logf("%s player %d: rate %.0f bit/s = %.4f × peak×1.25 (%.0f bit/s); startup %.1f ms; stalls %d; end %s; measured over %.1f s; first seconds (bytes/s) %v",
			f.name, p.ID, rate, ratio, want, startup, p.Stalls, p.End, span.Seconds(), p.Trace[:min(len(p.Trace), 5)])

		if p.Status != loadgen.StatusOK {
			t.Errorf("%s player %d: status %s (%s), want ok", f.name, p.ID, p.Status, p.Error)
			continue
		}
		if p.End != loadgen.EndWatch {
			t.Errorf("%s player %d ended by %q, want %q (the file is long enough to watch %v)", f.name, p.ID, p.End, loadgen.EndWatch, watch)
		}
		if span < minSpan {
			t.Errorf("%s player %d: rate measured over %v, want at least %v", f.name, p.ID, span, minSpan)
		}
		if p.RateBPS == nil {
			t.Errorf("%s player %d: no delivered rate measured", f.name, p.ID)
		} else if ratio < 0.95 || ratio > 1.05 {
			t.Errorf("%s player %d: delivered %.0f bit/s after the burst, %.2f%% of peak × 1.25 = %.0f bit/s, want within ±5%%; trace (bytes/s): %v",
				f.name, p.ID, rate, 100*ratio, want, p.Trace)
		}
		if p.Stalls != 0 {
			t.Errorf("%s player %d at the file's average bitrate stalled %d times (%.3f s)", f.name, p.ID, p.Stalls, p.StallSeconds)
		}
	}

	sum := rep.Summary
	t.Logf("summary: startup ms %+v; rate ratio (of the average bitrate) %+v; stall-free %d of %d",
		sum.StartupMS, sum.RateRatio, sum.StallFree, sum.Players)
	if sum.StartupMS.N != len(rep.Players) {
		t.Errorf("%d of %d players started", sum.StartupMS.N, len(rep.Players))
	}
	// The burst is what this checks: without it the 2 s of media a player
	// starts with would take 1.6 s at 1.25 × the rate. The 200 ms target
	// is a figure of quiet runs (10–16 ms, 35–128 ms with -race;
	// docs/benchmarks.md), not a bound a loaded 2-core CI box keeps
	// (353 ms seen while other packages' tests ran).
	if sum.StartupMS.P95 > 1000 {
		t.Errorf("startup latency p95 = %.1f ms, want ≤ 1 s: the burst did not come at full speed (%+v)", sum.StartupMS.P95, sum.StartupMS)
	}

	m := scrapeMetrics(t, s.URL)
	t.Logf("server: admitted %v, stalls %v, cut %v, sent %v bytes of which %v in bursts",
		m["mustserv_streams_admitted_total"], m["mustserv_stream_stalls_total"], m["mustserv_streams_cut_total"],
		m["mustserv_stream_sent_bytes_total"], m["mustserv_stream_burst_bytes_total"])
	if n := m["mustserv_stream_stalls_total"]; n != 0 {
		t.Errorf("the server counted %v stalls of clients that read greedily", n)
	}
}

// scrapeMetrics fetches /metrics and returns each sample's value by its
// name (with labels, if any: the pacer's metrics have none).
func scrapeMetrics(t testing.TB, base string) map[string]float64 {
	t.Helper()
	resp, body := get(t, base+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s\n%s", resp.Status, body)
	}
	m, err := parseExposition(string(body))
	if err != nil {
		t.Fatalf("/metrics: %v\n%s", err, body)
	}
	return m
}

// parseExposition reads Prometheus' text format as "name value" lines,
// skipping comments; a timestamp after the value is ignored.
func parseExposition(text string) (map[string]float64, error) {
	m := map[string]float64{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("sample line %q has no value", line)
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("sample line %q: %v", line, err)
		}
		if _, dup := m[f[0]]; dup {
			return nil, fmt.Errorf("sample %s twice", f[0])
		}
		m[f[0]] = v
	}
	return m, nil
}

// waitMetrics polls /metrics until ok accepts a scrape: the server notices
// a closed connection only at its stream's next write. Bounded: 400 polls
// 25 ms apart.
func waitMetrics(t testing.TB, base, what string, ok func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	var m map[string]float64
	for range 400 {
		if m = scrapeMetrics(t, base); ok(m) {
			return m
		}
		time.Sleep(25 * time.Millisecond) // a polling interval, bounded by the loop
	}
	t.Fatalf("/metrics never showed %s; last scrape: %v", what, m)
	return nil
}

// metricSamples returns the named samples of m; a missing one is -1.
func metricSamples(m map[string]float64, names ...string) map[string]float64 {
	out := map[string]float64{}
	for _, n := range names {
		v, ok := m[n]
		if !ok {
			v = -1
		}
		out[n] = v
	}
	return out
}

// streamClient makes one connection per request, as players do, so that
// closing a body closes its connection.
func streamClient(t testing.TB) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// openStream sends a GET of url and returns the response with its body
// unread.
func openStream(t testing.TB, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestPacingMetrics fills an uplink budget that holds exactly two streams of
// a file: the third is refused with 503, and /metrics shows the streams,
// what they reserve and the budget while they run, and the counters after
// they end.
func TestPacingMetrics(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "Metrics")
	files := []pacedFile{{name: "tone.mp3", args: cbrMP3Args(30)}}
	makePacedFiles(t, dir, files)
	f := files[0]

	reserve := f.peak / 8 * 8 // bits/s one stream reserves: its peak in whole bytes/s
	// Two streams and half of one: the third does not fit. A multiple of
	// 8, so the budget in bytes/s is exact too.
	uplink := 2*reserve + reserve/16*8
	// unknown_rate may not exceed the budget (config rejects it); the file's
	// rate is known, so it is not used.
	conf := writeConfig(t, fmt.Sprintf("[pace]\nuplink = %q\nunknown_rate = \"64kbit\"\n", strconv.FormatInt(uplink, 10)))
	s := startServer(t, "--config", conf, dir)
	url := s.URL + "/stream/Metrics/" + f.name
	c := streamClient(t)

	const chunk = 16 << 10
	var read int64
	var open []*http.Response
	for i := range 2 {
		resp := openStream(t, c, url)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %s, want 200", i+1, resp.Status)
		}
		n, err := io.ReadFull(resp.Body, make([]byte, chunk))
		read += int64(n)
		if err != nil {
			t.Fatalf("stream %d: reading: %v", i+1, err)
		}
		open = append(open, resp)
	}

	third := openStream(t, c, url)
	body, err := io.ReadAll(third.Body)
	if err != nil {
		t.Fatalf("reading the 503's body: %v", err)
	}
	if third.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third stream: %s, want 503", third.Status)
	}
	retry, err := strconv.Atoi(third.Header.Get("Retry-After"))
	if err != nil || retry < 1 {
		t.Errorf("503's Retry-After = %q, want a positive number of seconds", third.Header.Get("Retry-After"))
	}
	if ct := third.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("503's Content-Type = %q, want text/plain", ct)
	}
	if !strings.Contains(string(body), "streaming capacity") || !strings.Contains(string(body), "try again") {
		t.Errorf("503's body = %q, want it to say the server is at capacity and to try again", body)
	}
	t.Logf("third stream: %s, Retry-After %s, %q", third.Status, third.Header.Get("Retry-After"), body)

	running := []string{
		"mustserv_streams_active", "mustserv_uplink_reserved_bits_per_second",
		"mustserv_uplink_budget_bits_per_second", "mustserv_streams_admitted_total",
		"mustserv_streams_rejected_total", "mustserv_streams_queued_total",
	}
	// Admission happens before the headers are sent: no waiting here.
	got := metricSamples(scrapeMetrics(t, s.URL), running...)
	want := map[string]float64{
		"mustserv_streams_active":                  2,
		"mustserv_uplink_reserved_bits_per_second": float64(2 * reserve),
		"mustserv_uplink_budget_bits_per_second":   float64(uplink),
		"mustserv_streams_admitted_total":          2,
		"mustserv_streams_rejected_total":          1,
		"mustserv_streams_queued_total":            0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/metrics while two streams run (-want +got):\n%s", diff)
	}

	for _, resp := range open {
		resp.Body.Close()
	}
	m := waitMetrics(t, s.URL, "no active or handed stream", func(m map[string]float64) bool {
		return m["mustserv_streams_active"] == 0 && m["mustserv_streams_handed"] == 0
	})
	got = metricSamples(m, append(running, "mustserv_streams_handed")...)
	want["mustserv_streams_active"] = 0
	want["mustserv_uplink_reserved_bits_per_second"] = 0
	want["mustserv_streams_handed"] = 0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/metrics after the streams ended (-want +got):\n%s", diff)
	}

	// The access lines of the two streams carry the bytes the pacer
	// sent; the counter is their sum.
	var lines []map[string]string
	s.Stderr.waitFor(t, 20*time.Second, "both streams' access lines", func(text string) bool {
		lines = requestLines(text, "/stream/Metrics/"+f.name, http.StatusOK)
		return len(lines) == 2
	})
	var logged int64
	for _, l := range lines {
		n, _ := strconv.ParseInt(l["bytes"], 10, 64)
		logged += n
	}
	sent := m["mustserv_stream_sent_bytes_total"]
	burst := m["mustserv_stream_burst_bytes_total"]
	t.Logf("clients read %d bytes; the access log says %d sent; /metrics: sent %v, burst %v", read, logged, sent, burst)
	if sent < float64(read) {
		t.Errorf("mustserv_stream_sent_bytes_total = %v, less than the %d bytes the clients read", sent, read)
	}
	if sent != float64(logged) {
		t.Errorf("mustserv_stream_sent_bytes_total = %v, the streams' access lines say %d", sent, logged)
	}
	if burst <= 0 || burst > sent {
		t.Errorf("mustserv_stream_burst_bytes_total = %v, want more than 0 and at most the %v sent", burst, sent)
	}
	if n := len(requestLines(s.Stderr.String(), "/stream/Metrics/"+f.name, http.StatusServiceUnavailable)); n != 1 {
		t.Errorf("%d access lines of a 503, want 1", n)
	}
}

// requestLines returns the fields of the access lines of path with status
// in text, in order.
func requestLines(text, path string, status int) []map[string]string {
	var out []map[string]string
	for line := range strings.Lines(text) {
		kv := parseLogfmt(strings.TrimSpace(line))
		if kv["msg"] == "request" && kv["path"] == path && kv["status"] == strconv.Itoa(status) {
			out = append(out, kv)
		}
	}
	return out
}

// TestPacedAccessLog checks that a paced stream's access line is written
// when its body ends, not when its handler returns, with the bytes that
// were sent: all of them to a client that reads to the end, fewer and the
// error to one that leaves early.
func TestPacedAccessLog(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "Log")
	// 12 s of 128 kbit/s: 8 s go in the burst, the last 4 s of media take
	// the pacer about 3 s at peak × 1.25.
	files := []pacedFile{{name: "whole.mp3", args: cbrMP3Args(12)}, {name: "left.mp3", args: cbrMP3Args(12)}}
	makePacedFiles(t, dir, files)
	s := startServer(t, dir)
	c := streamClient(t)

	t.Run("whole", func(t *testing.T) {
		t.Parallel()
		path := "/stream/Log/whole.mp3"
		size := int64(len(readFile(t, filepath.Join(dir, "whole.mp3"))))
		resp := openStream(t, c, s.URL+path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: %s, want 200", resp.Status)
		}
		// Once a request made after these headers is in the log, every
		// line written before it is too (the log is batched, in order).
		// The stream's body is still being paced: no line yet.
		// (Not /healthz: a successful health check is not logged.)
		probeURL := s.URL + "/after-whole"
		get(t, probeURL)
		text := s.Stderr.waitFor(t, 20*time.Second, "the access line of "+probeURL, func(text string) bool {
			return len(requestLines(text, "/after-whole", http.StatusNotFound)) > 0
		})
		if l := requestLines(text, path, http.StatusOK); len(l) > 0 {
			t.Errorf("access line written while the body was being paced: %v", l)
		}

		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || n != size {
			t.Fatalf("read %d bytes, %v; want all %d", n, err, size)
		}
		var lines []map[string]string
		s.Stderr.waitFor(t, 20*time.Second, "the stream's access line", func(text string) bool {
			lines = requestLines(text, path, http.StatusOK)
			return len(lines) > 0
		})
		want := []map[string]string{{"bytes": strconv.FormatInt(size, 10), "err": ""}}
		if diff := cmp.Diff(want, logFields(lines, "bytes", "err")); diff != "" {
			t.Errorf("access line of a whole paced body (-want +got):\n%s", diff)
		}
		t.Logf("whole: %v", lines)
	})

	t.Run("left early", func(t *testing.T) {
		t.Parallel()
		path := "/stream/Log/left.mp3"
		size := int64(len(readFile(t, filepath.Join(dir, "left.mp3"))))
		resp := openStream(t, c, s.URL+path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET: %s, want 200", resp.Status)
		}
		const read = 4 << 10
		if _, err := io.ReadFull(resp.Body, make([]byte, read)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // with unread bytes: the server's next write fails
		var lines []map[string]string
		s.Stderr.waitFor(t, 20*time.Second, "the stream's access line", func(text string) bool {
			lines = requestLines(text, path, http.StatusOK)
			return len(lines) > 0
		})
		if len(lines) != 1 {
			t.Fatalf("%d access lines, want 1: %v", len(lines), lines)
		}
		l := lines[0]
		n, err := strconv.ParseInt(l["bytes"], 10, 64)
		if err != nil || n < read || n >= size {
			t.Errorf("access line bytes=%q, want at least the %d read and fewer than the file's %d", l["bytes"], read, size)
		}
		if l["err"] == "" {
			t.Errorf("access line of a body cut by the client has no err: %v", l)
		}
		t.Logf("left early: %v", l)
	})
}

// logFields returns the named fields of each line, "" when absent.
func logFields(lines []map[string]string, keys ...string) []map[string]string {
	var out []map[string]string
	for _, l := range lines {
		m := map[string]string{}
		for _, k := range keys {
			m[k] = l[k]
		}
		out = append(out, m)
	}
	return out
}
