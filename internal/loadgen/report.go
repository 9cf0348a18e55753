package loadgen

import (
	"math"
	"slices"
	"time"
)

// Report is the result of a run. Its JSON field names are stable.
type Report struct {
	Summary Summary  `json:"summary"`
	Players []Player `json:"players"`
}

// A player's status: how the server answered it.
const (
	StatusOK       = "ok"       // 200 or 206 to every request
	StatusRejected = "rejected" // 503 (after retries, with RetryRejected)
	StatusFailed   = "failed"   // another status, a transport error, wrong bytes
)

// Why a player stopped.
const (
	EndWatch  = "watch"  // its watch time was over
	EndEOF    = "eof"    // the end of the file
	EndCancel = "cancel" // the run's timeout or cancellation
	EndError  = "error"  // a request failed or was rejected
)

// Player is what one simulated player did and experienced. Times are in
// seconds or milliseconds as the names say; startup_ms and rate_bps are
// null when there is nothing to measure.
type Player struct {
	ID      int    `json:"id"`
	URL     string `json:"url"`
	Bitrate int64  `json:"bitrate"` // of the media, bits/s, as configured
	Status  string `json:"status"`  // StatusOK, StatusRejected or StatusFailed
	Error   string `json:"error,omitempty"`
	End     string `json:"end"`         // EndWatch, EndEOF, EndCancel or EndError
	HTTP    int    `json:"http_status"` // of the last response; 0 if none

	Start float64 `json:"start"` // since the run started
	// StartupMS is from the first request sent (with retries or
	// resumes before the first answer, the first attempt) until Startup
	// of media was buffered; null if never.
	StartupMS      *float64  `json:"startup_ms"`
	Bytes          int64     `json:"bytes"` // body bytes of all requests
	WatchedSeconds float64   `json:"watched_seconds"`
	Stalls         int       `json:"stalls"`
	StallSeconds   float64   `json:"stall_seconds"`
	Seeks          int       `json:"seeks"`   // requests after a seek
	SeekMS         []float64 `json:"seek_ms"` // per seek that buffered Startup again
	// RateBPS is the delivery rate of the first response, bits/s, from
	// RateFrom after its request until the player stopped reading it;
	// null if it stopped less than a second after RateFrom.
	RateBPS *float64 `json:"rate_bps"`
	// Trace is the first response's body bytes per second since its
	// request, and its resumes', up to maxTrace seconds.
	Trace      []int64 `json:"trace"`
	RetryAfter float64 `json:"retry_after"` // seconds, of the last 503; 0 if none
	// Resumes is how many requests continued a cut body or retried a
	// failed request (Config.Resume).
	Resumes    int  `json:"resumes"`
	Redirects  int  `json:"redirects"`   // followed, over all its requests
	WrongBytes bool `json:"wrong_bytes"` // Config.Verify failed it
}

// Summary sums up the players of a run.
type Summary struct {
	Players   int `json:"players"`
	OK        int `json:"ok"`
	Rejected  int `json:"rejected"`
	Failed    int `json:"failed"`
	StallFree int `json:"stall_free"` // ok players that started and never stalled
	Stalls    int `json:"stalls"`     // of all players
	// StallSeconds is the stall time of all players.
	StallSeconds float64   `json:"stall_seconds"`
	StartupMS    Quantiles `json:"startup_ms"` // of ok players that started
	SeekMS       Quantiles `json:"seek_ms"`    // of every seek of every player
	Bytes        int64     `json:"bytes"`
	Duration     float64   `json:"duration_seconds"`
	// RateRatio is rate_bps / bitrate over the ok players whose rate
	// was measured.
	RateRatio  Ratio `json:"rate_ratio"`
	Resumes    int   `json:"resumes"`     // of all players
	Redirects  int   `json:"redirects"`   // of all players
	WrongBytes int   `json:"wrong_bytes"` // players that Config.Verify failed
}

// Quantiles of a set of values, by the nearest-rank method; all zero for
// an empty set.
type Quantiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Ratio sums up rate ratios; the median is the nearest-rank 50th
// percentile. All zero for an empty set.
type Ratio struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

func summarize(players []Player, d time.Duration) Summary {
	s := Summary{Players: len(players), Duration: round(d.Seconds(), 3)}
	var startups, seeks, ratios []float64
	for _, p := range players {
		switch p.Status {
		case StatusOK:
			s.OK++
			if p.StartupMS != nil {
				startups = append(startups, *p.StartupMS)
				if p.Stalls == 0 {
					s.StallFree++
				}
			}
			if p.RateBPS != nil {
				ratios = append(ratios, *p.RateBPS/float64(p.Bitrate))
			}
		case StatusRejected:
			s.Rejected++
		default:
			s.Failed++
		}
		s.Stalls += p.Stalls
		s.StallSeconds += p.StallSeconds
		s.Bytes += p.Bytes
		s.Resumes += p.Resumes
		s.Redirects += p.Redirects
		if p.WrongBytes {
			s.WrongBytes++
		}
		seeks = append(seeks, p.SeekMS...)
	}
	s.StallSeconds = round(s.StallSeconds, 3)
	s.StartupMS = quantiles(startups)
	s.SeekMS = quantiles(seeks)
	if len(ratios) > 0 {
		slices.Sort(ratios)
		s.RateRatio = Ratio{N: len(ratios), Min: round(ratios[0], 4),
			Median: round(rank(ratios, 50), 4), Max: round(ratios[len(ratios)-1], 4)}
	}
	return s
}

func quantiles(v []float64) Quantiles {
	if len(v) == 0 {
		return Quantiles{}
	}
	slices.Sort(v)
	return Quantiles{N: len(v), P50: rank(v, 50), P95: rank(v, 95), P99: rank(v, 99), Max: v[len(v)-1]}
}

// rank returns the p-th percentile of sorted v by nearest rank: the
// smallest value with at least p% of the values at or below it.
func rank(sorted []float64, p int) float64 {
	i := (p*len(sorted)+99)/100 - 1
	return sorted[max(i, 0)]
}

// round rounds x to n decimals, to keep reports readable.
func round(x float64, n int) float64 {
	f := math.Pow10(n)
	return math.Round(x*f) / f
}

// millis returns d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }
