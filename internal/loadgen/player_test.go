package loadgen

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

const testURL = "http://media.test/a.mp3"

// runPiped runs cfg's players against h over an in-memory network, in the
// calling synctest bubble.
func runPiped(t *testing.T, h http.Handler, cfg Config) *Report {
	t.Helper()
	l := newPipeListener()
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	defer srv.Close()
	if cfg.URLs == nil {
		cfg.URLs = []Target{{URL: testURL, Bitrate: mbit}}
	}
	rep, err := run(t.Context(), cfg, l.dial)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func ptr(f float64) *float64 { return &f }

// cutFirst cuts the first response after 4 s of 1 Mbit/s media.
func cutFirst(n int) int64 {
	if n == 0 {
		return 4 * secOfMbit
	}
	return 0
}

// The players below meet a server that sends one second of 1 Mbit/s media
// per chunk, on a schedule, in the bubble's time: every number is exact.
func TestPlayerTimed(t *testing.T) {
	t.Parallel()
	secs := func(n int64) int64 { return n * secOfMbit }
	twice := every(500 * time.Millisecond) // 2x the bitrate
	for _, tc := range []struct {
		name string
		srv  *mediaServer
		cfg  Config
		want Player
	}{
		{
			// Chunks at 0, 0.5, ...: 2 s buffered at 0.5. Watching 5.25 s
			// ends at 5.75, after the chunk of 5.5. From 2 s on: the
			// chunks of 2.5..5.5, 7 Mbit in 3.75 s.
			name: "paced at twice the bitrate",
			srv:  &mediaServer{size: secs(20), chunk: secOfMbit, at: twice},
			cfg:  Config{WatchMin: ms(5250), RateFrom: 2 * time.Second},
			want: Player{
				Status: StatusOK, End: EndWatch, HTTP: http.StatusPartialContent,
				StartupMS: ptr(500), Bytes: secs(12), WatchedSeconds: 5.25,
				RateBPS: ptr(1866667), Trace: []int64{secs(2), secs(2), secs(2), secs(2), secs(2), secs(2)},
			},
		},
		{
			// 4 s received by 1.5, playing since 0.5: dry at 4.5. The
			// fifth second comes at 7.5 and resumes playback (1 s
			// buffered): a 3 s stall. The last chunk, at 10, ends the file.
			name: "gap in delivery stalls",
			srv: &mediaServer{size: secs(10), chunk: secOfMbit, at: func(k int) time.Duration {
				if k < 4 {
					return twice(k)
				}
				return ms(7500) + twice(k-4)
			}},
			cfg: Config{RateFrom: 2 * time.Second},
			want: Player{
				Status: StatusOK, End: EndEOF, HTTP: http.StatusPartialContent,
				StartupMS: ptr(500), Bytes: secs(10), WatchedSeconds: 10, Stalls: 1, StallSeconds: 3,
				RateBPS: ptr(750000), // 6 Mbit from 2 s to 10 s
				Trace:   []int64{secs(2), secs(2), 0, 0, 0, 0, 0, secs(1), secs(2), secs(2), secs(1)},
			},
		},
		{
			// Headers, then nothing until the run's timeout.
			name: "no data before the timeout",
			srv: &mediaServer{size: secs(10), chunk: secOfMbit, at: func(int) time.Duration {
				return time.Hour
			}},
			cfg:  Config{Timeout: 5 * time.Second},
			want: Player{Status: StatusOK, End: EndCancel, HTTP: http.StatusPartialContent, Trace: []int64{}},
		},
		{
			// Retried after 2 s, then as the first case: startup at
			// 2.5 s from the first try, the watch time over at 4.75.
			name: "rejected once, retried",
			srv: &mediaServer{size: secs(20), chunk: secOfMbit, at: twice, reject: func(n int) (string, bool) {
				return "2", n == 0
			}},
			cfg: Config{WatchMin: ms(2250), RetryRejected: true},
			want: Player{
				Status: StatusOK, End: EndWatch, HTTP: http.StatusPartialContent, RetryAfter: 2,
				StartupMS: ptr(2500), Bytes: secs(6), WatchedSeconds: 2.25,
				Trace: []int64{secs(2), secs(2), secs(2)},
			},
		},
		{
			name: "rejected",
			srv: &mediaServer{size: secs(20), chunk: secOfMbit, at: twice, reject: func(n int) (string, bool) {
				return "2", true
			}},
			want: Player{
				Status: StatusRejected, Error: "HTTP 503 Service Unavailable", End: EndError,
				HTTP: http.StatusServiceUnavailable, RetryAfter: 2, Trace: []int64{},
			},
		},
		{
			// Cut after 4 s of media, at 1.5 (playing since 0.5: dry at
			// 4.5). The resume at once and the next five get a 502, each
			// after a back-off of 0.1, 0.2, 0.4, 0.8, 1 s; the seventh, at
			// 5, is served from the next byte: 1 s buffered at once
			// resumes playback after a 0.5 s stall, not a new startup.
			// The rest arrives by 7.5 and ends the file.
			name: "cut, resumed through 502s",
			srv: &mediaServer{size: secs(10), chunk: secOfMbit, at: twice,
				cut: cutFirst,
				status: func(n int) int {
					if n >= 1 && n <= 6 {
						return http.StatusBadGateway
					}
					return 0
				}},
			cfg: Config{Resume: 10},
			want: Player{
				Status: StatusOK, End: EndEOF, HTTP: http.StatusPartialContent,
				StartupMS: ptr(500), Bytes: secs(10), WatchedSeconds: 10, Stalls: 1, StallSeconds: 0.5,
				Trace:   []int64{secs(2), secs(2), 0, 0, 0, secs(2), secs(2), secs(2)},
				Resumes: 7,
			},
		},
		{
			// The same cut without Resume: 1 s played when it fails.
			name: "cut, no resume",
			srv: &mediaServer{size: secs(10), chunk: secOfMbit, at: twice,
				cut: cutFirst},
			want: Player{
				Status: StatusFailed, Error: "body cut at byte 500000: unexpected EOF", End: EndError,
				HTTP: http.StatusPartialContent, StartupMS: ptr(500), Bytes: secs(4), WatchedSeconds: 1,
				Trace: []int64{secs(2), secs(2)},
			},
		},
		{
			// Without RetryRejected a 503 is resumed after 0.1 s; then as
			// "rejected once, retried".
			name: "rejected once, resumed",
			srv: &mediaServer{size: secs(20), chunk: secOfMbit, at: twice, reject: func(n int) (string, bool) {
				return "2", n == 0
			}},
			cfg: Config{WatchMin: ms(2250), Resume: 1},
			want: Player{
				Status: StatusOK, End: EndWatch, HTTP: http.StatusPartialContent, RetryAfter: 2,
				StartupMS: ptr(600), Bytes: secs(6), WatchedSeconds: 2.25,
				Trace: []int64{secs(2), secs(2), secs(2)}, Resumes: 1,
			},
		},
		{
			name: "no resume left",
			srv: &mediaServer{size: secs(20), chunk: secOfMbit, at: twice,
				status: func(int) int { return http.StatusGatewayTimeout }},
			cfg: Config{Resume: 2},
			want: Player{
				Status: StatusFailed, Error: "HTTP 504 Gateway Timeout (no resume left of 2)", End: EndError,
				HTTP: http.StatusGatewayTimeout, Trace: []int64{}, Resumes: 2,
			},
		},
		{
			// Watching 2.25 s ends at 2.75, during the back-offs after the
			// cut at 1.5 (4 s buffered): the player leaves, no stall.
			name: "watch time ends while resuming",
			srv: &mediaServer{size: secs(10), chunk: secOfMbit, at: twice,
				cut: cutFirst,
				status: func(n int) int {
					if n >= 1 {
						return http.StatusBadGateway
					}
					return 0
				}},
			cfg: Config{WatchMin: ms(2250), Resume: 1000},
			want: Player{
				Status: StatusOK, End: EndWatch, HTTP: http.StatusBadGateway,
				StartupMS: ptr(500), Bytes: secs(4), WatchedSeconds: 2.25,
				Trace: []int64{secs(2), secs(2)}, Resumes: 5, // at 1.5, 1.6, 1.8, 2.2, 3.0
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				rep := runPiped(t, tc.srv, tc.cfg)
				want := tc.want
				want.URL, want.Bitrate, want.SeekMS = testURL, mbit, []float64{}
				if diff := cmp.Diff([]Player{want}, rep.Players); diff != "" {
					t.Errorf("players (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// A player with a maximum buffer reads only what keeps it that full; a
// greedy one reads what the server sends.
func TestPlayerMaxBuffer(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fast := func(int) time.Duration { return 0 }
		srv := &mediaServer{size: 20 * secOfMbit, chunk: secOfMbit, at: fast}
		rep := runPiped(t, srv, Config{WatchMin: 6 * time.Second, MaxBuffer: 4 * time.Second})
		p := rep.Players[0]
		// Watched 6 s with 4 s buffered, give or take the reads that
		// overshoot the buffer.
		if lo, hi := int64(10*secOfMbit), int64(10*secOfMbit+2*readSize); p.Bytes < lo || p.Bytes > hi {
			t.Errorf("bytes = %d, want %d..%d", p.Bytes, lo, hi)
		}
		if p.End != EndWatch || p.WatchedSeconds != 6 || p.Stalls != 0 || p.StartupMS == nil || *p.StartupMS != 0 {
			t.Errorf("player = %+v, want 6 s watched from t=0, no stall", p)
		}

		srv = &mediaServer{size: 20 * secOfMbit, chunk: secOfMbit, at: fast}
		rep = runPiped(t, srv, Config{WatchMin: 6 * time.Second})
		if p := rep.Players[0]; p.Bytes != 20*secOfMbit || p.End != EndEOF || p.WatchedSeconds != 6 {
			t.Errorf("greedy player = %+v, want the whole file read at once and 6 s watched", p)
		}
	})
}

// Seeks go to offsets drawn from the seed, and each buffers again in
// 0.5 s at twice the bitrate.
func TestPlayerSeeks(t *testing.T) {
	t.Parallel()
	const size = 3600 * secOfMbit // an hour: no seek lands near the end
	cfg := Config{WatchMin: 10 * time.Second, SeekEvery: 2 * time.Second, Seed: 7}

	// The draws, in the player's order: watch time, then per segment the
	// playback time to the next seek and, if within the watch time, its
	// offset.
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0))
	watch := cfg.WatchMin + time.Duration(rng.Int64N(1))
	wantRanges := []string{"bytes=0-"}
	var played time.Duration
	for {
		seekAt := time.Duration(rng.ExpFloat64() * float64(cfg.SeekEvery))
		if seekAt >= watch-played {
			break
		}
		played += seekAt
		wantRanges = append(wantRanges, fmt.Sprintf("bytes=%d-", rng.Int64N(size)))
	}
	if len(wantRanges) < 3 {
		t.Fatalf("seed %d gives %d seeks; pick one with more", cfg.Seed, len(wantRanges)-1)
	}

	synctest.Test(t, func(t *testing.T) {
		srv := &mediaServer{size: size, chunk: secOfMbit, at: every(500 * time.Millisecond)}
		p := runPiped(t, srv, cfg).Players[0]
		if diff := cmp.Diff(wantRanges, srv.requested()); diff != "" {
			t.Errorf("ranges requested (-want +got):\n%s", diff)
		}
		wantSeekMS := make([]float64, len(wantRanges)-1)
		for i := range wantSeekMS {
			wantSeekMS[i] = 500
		}
		if diff := cmp.Diff(wantSeekMS, p.SeekMS); diff != "" {
			t.Errorf("seek_ms (-want +got):\n%s", diff)
		}
		if p.Seeks != len(wantSeekMS) || p.WatchedSeconds != 10 || p.End != EndWatch || p.Stalls != 0 {
			t.Errorf("player = %+v, want %d seeks, 10 s watched, no stall", p, len(wantSeekMS))
		}
	})
}

// Players join at their interval and the summary adds them up.
func TestRunJoinAndSummary(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		srv := &mediaServer{size: 20 * secOfMbit, chunk: secOfMbit, at: every(500 * time.Millisecond)}
		rep := runPiped(t, srv, Config{
			Players: 3, Join: time.Second, WatchMin: ms(3250), RateFrom: time.Second,
		})
		var starts []float64
		for _, p := range rep.Players {
			starts = append(starts, p.Start)
		}
		if diff := cmp.Diff([]float64{0, 1, 2}, starts); diff != "" {
			t.Errorf("starts (-want +got):\n%s", diff)
		}
		// Each player: startup 0.5 s, stops at 3.75 s; from 1 s on the
		// chunks of 1.5..3.5, 5 Mbit in 2.75 s: 1.8182 x the bitrate.
		want := Summary{
			Players: 3, OK: 3, StallFree: 3,
			StartupMS: Quantiles{N: 3, P50: 500, P95: 500, P99: 500, Max: 500},
			Bytes:     3 * 8 * secOfMbit,
			Duration:  5.75,
			RateRatio: Ratio{N: 3, Min: 1.8182, Median: 1.8182, Max: 1.8182},
		}
		if diff := cmp.Diff(want, rep.Summary); diff != "" {
			t.Errorf("summary (-want +got):\n%s", diff)
		}
	})
}
