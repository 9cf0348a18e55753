package loadgen

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// At 1 Mbit/s one second of media is 125,000 bytes.
const (
	mbit      = 1_000_000
	secOfMbit = 125_000
)

// ms is a shorthand for readable timelines.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// steady returns n samples of one second of 1 Mbit/s media each, every
// step from first on, on top of base bytes already received.
func steady(first, step time.Duration, n int, base int64) []sample {
	s := make([]sample, n)
	for i := range s {
		s[i] = sample{at: first + time.Duration(i)*step, bytes: base + int64(i+1)*secOfMbit}
	}
	return s
}

func TestSimulate(t *testing.T) {
	t.Parallel()
	def := model{bitrate: mbit, startup: 2 * time.Second, rebuffer: time.Second}
	gap := append(steady(ms(500), ms(500), 8, 0), steady(ms(12500), ms(500), 4, 8*secOfMbit)...)
	burst := []sample{{0, 3 * secOfMbit}, {ms(500), 6 * secOfMbit}, {ms(1000), 9 * secOfMbit}, {ms(1500), 12 * secOfMbit}}
	for _, tc := range []struct {
		name     string
		m        model
		limit    time.Duration
		timeline []sample
		eof      bool
		stopAt   time.Duration
		want     outcome
	}{
		{
			// 1 s of media each second: 2 s buffered at t=2, and the
			// buffer stays 1-2 s ahead to the end.
			name:     "arriving at 1x",
			timeline: steady(time.Second, time.Second, 10, 0),
			eof:      true,
			want:     outcome{Started: true, Startup: 2 * time.Second, Played: 10 * time.Second, Done: true, Duration: 10 * time.Second},
		},
		{
			name:     "arriving at 2x",
			timeline: steady(ms(500), ms(500), 10, 0),
			eof:      true,
			want:     outcome{Started: true, Startup: time.Second, Played: 10 * time.Second, Done: true, Duration: 5 * time.Second},
		},
		{
			// Playing since t=2 with no stall: 8.5 s played at t=10.5.
			name:     "connection ends before the file",
			timeline: steady(time.Second, time.Second, 10, 0),
			stopAt:   ms(10500),
			want:     outcome{Started: true, Startup: 2 * time.Second, Played: ms(8500), Duration: ms(10500)},
		},
		{
			// 8 s received by t=4 at 2x, playing since t=1: 3 s played,
			// the buffer runs dry at t=9. Media comes again at t=12.5;
			// 1 s buffered resumes at once: a 3.5 s stall. The last 4 s
			// arrive by t=14 and are played out.
			name:     "gap stalls",
			timeline: gap,
			eof:      true,
			want:     outcome{Started: true, Startup: time.Second, Stalls: 1, Stalled: ms(3500), Played: 12 * time.Second, Done: true, Duration: 14 * time.Second},
		},
		{
			// The same, but the watch time (6 s) ends at t=7, before the
			// buffer runs dry: the player leaves at t=7, no stall.
			name:     "watch time ends before the gap shows",
			limit:    6 * time.Second,
			timeline: gap,
			eof:      true,
			want:     outcome{Started: true, Startup: time.Second, Played: 6 * time.Second, Done: true, Duration: 7 * time.Second},
		},
		{
			// Dry at t=9, and the run ends at t=10 mid-stall.
			name:     "stall cut short by the end of the run",
			timeline: steady(ms(500), ms(500), 8, 0),
			stopAt:   10 * time.Second,
			want:     outcome{Started: true, Startup: time.Second, Stalls: 1, Stalled: time.Second, Played: 8 * time.Second, Duration: 10 * time.Second},
		},
		{
			// With startup 1 s the buffer is empty exactly when each
			// second arrives: that is no stall.
			name:     "buffer empty just as media arrives",
			m:        model{bitrate: mbit, startup: time.Second, rebuffer: time.Second},
			timeline: steady(time.Second, time.Second, 4, 0),
			eof:      true,
			want:     outcome{Started: true, Startup: time.Second, Played: 4 * time.Second, Done: true, Duration: 4 * time.Second},
		},
		{
			name:     "file shorter than the startup buffer",
			timeline: []sample{{ms(500), secOfMbit / 2}},
			eof:      true,
			want:     outcome{Started: true, Startup: ms(500), Played: ms(500), Done: true, Duration: ms(500)},
		},
		{
			name:     "never starts",
			timeline: []sample{{time.Second, secOfMbit}},
			stopAt:   30 * time.Second,
			want:     outcome{Duration: 30 * time.Second},
		},
		{
			// 3 s at t=0 starts playback. At t=0.5: 6 s received, 0.5 s
			// played, 5.5 s buffered: 1.5 s over 4 s, so the player
			// reads again at t=2 (9 s received, 2 s played: 3 s over)
			// and at t=5, when the end of the file arrives.
			name:     "max buffer holds reading back",
			m:        model{bitrate: mbit, startup: 2 * time.Second, rebuffer: time.Second, maxBuffer: 4 * time.Second},
			timeline: burst,
			eof:      true,
			want:     outcome{Started: true, Played: 12 * time.Second, Paused: ms(4500), Done: true, Duration: 5 * time.Second},
		},
		{
			// As above, but 4 s of watch time end at t=4, during the
			// second pause (from t=2): 1.5 + 2 s paused.
			name:     "watch time ends while reading is held back",
			m:        model{bitrate: mbit, startup: 2 * time.Second, rebuffer: time.Second, maxBuffer: 4 * time.Second},
			limit:    4 * time.Second,
			timeline: burst,
			eof:      true,
			want:     outcome{Started: true, Played: 4 * time.Second, Paused: ms(3500), Done: true, Duration: 4 * time.Second},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := tc.m
			if m.bitrate == 0 {
				m = def
			}
			limit := tc.limit
			if limit == 0 {
				limit = time.Minute
			}
			got := simulate(m, limit, tc.timeline, tc.eof, tc.stopAt)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("simulate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMediaTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		bytes, bitrate int64
		want           time.Duration
	}{
		{secOfMbit, mbit, time.Second},
		{40_000, 320_000, time.Second},
		{1, 320_000, 25 * time.Microsecond},
		{1, 3, 2666666666}, // 8/3 s, rounded down
		{1 << 40, 320_000, 27487790694400 * time.Microsecond},
		{0, mbit, 0},
	} {
		if got := mediaTime(tc.bytes, tc.bitrate); got != tc.want {
			t.Errorf("mediaTime(%d, %d) = %v, want %v", tc.bytes, tc.bitrate, got, tc.want)
		}
	}
}
