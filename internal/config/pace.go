package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Pace holds the pacing settings, section [pace]. Its keys are fixed:
// other tools write them.
type Pace struct {
	// Enabled paces /stream responses of media files.
	Enabled bool `toml:"enabled"`
	// Factor multiplies a file's peak bitrate once its burst is over.
	Factor float64 `toml:"factor"`
	// Burst is how much media time goes at full speed first, and after
	// every seek.
	Burst Duration `toml:"burst"`
	// Window is the peak bitrate's window: the highest average over any
	// span this long.
	Window Duration `toml:"window"`
	// Uplink is the total budget; 0 is unlimited.
	Uplink Bitrate `toml:"uplink"`
	// PerClient caps one client's aggregate across its connections; 0 is
	// unlimited.
	PerClient Bitrate `toml:"per_client"`
	// UnknownRate paces files whose bitrate is unknown.
	UnknownRate Bitrate `toml:"unknown_rate"`
	// OnFull is "reject" (503 with Retry-After) or "queue".
	OnFull string `toml:"on_full"`
}

// PaceOverride is a library's [library.pace]: the keys it sets replace
// the [pace] ones for its files.
type PaceOverride struct {
	Enabled     *bool     `toml:"enabled"`
	Factor      *float64  `toml:"factor"`
	Burst       *Duration `toml:"burst"`
	UnknownRate *Bitrate  `toml:"unknown_rate"`
}

// PaceFor returns the pacing settings of library lib: [pace] with the
// library's overrides applied.
func (c *Config) PaceFor(lib string) Pace {
	p := c.Pace
	for _, l := range c.Libraries {
		if l.Name != lib || l.Pace == nil {
			continue
		}
		o := l.Pace
		if o.Enabled != nil {
			p.Enabled = *o.Enabled
		}
		if o.Factor != nil {
			p.Factor = *o.Factor
		}
		if o.Burst != nil {
			p.Burst = *o.Burst
		}
		if o.UnknownRate != nil {
			p.UnknownRate = *o.UnknownRate
		}
	}
	return p
}

func validatePace(where string, p Pace) error {
	switch {
	case math.IsNaN(p.Factor) || p.Factor < 1 || p.Factor > 100:
		return fmt.Errorf("%s.factor must be between 1 and 100, got %v", where, p.Factor)
	case p.Burst < 0:
		return fmt.Errorf("%s.burst must not be negative, got %s", where, p.Burst)
	case p.Window < Duration(100*time.Millisecond) || p.Window > Duration(time.Minute):
		return fmt.Errorf("%s.window must be between 100ms and 1m, got %s", where, p.Window)
	case p.UnknownRate <= 0:
		return fmt.Errorf("%s.unknown_rate must be positive", where)
	}
	switch p.OnFull {
	case "reject", "queue":
	default:
		return fmt.Errorf("%s.on_full %q: want \"reject\" or \"queue\"", where, p.OnFull)
	}
	if p.Uplink > 0 && p.UnknownRate > p.Uplink {
		return fmt.Errorf("%s.unknown_rate %s exceeds the uplink %s: no such stream could start", where, p.UnknownRate, p.Uplink)
	}
	return nil
}

// Bitrate is a rate in bits per second, written "8Mbit", "128kbit",
// "1.5Gbit" or a plain number of bits per second; units are decimal (SI)
// and may end in "/s" or "ps" ("100Mbps"). "" and "0" mean none
// (unlimited where the key allows it).
type Bitrate int64

var bitUnits = []struct {
	suffix string
	mult   float64
}{
	{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1},
	{"g", 1e9}, {"m", 1e6}, {"k", 1e3},
}

// ParseBitrate parses a Bitrate.
func ParseBitrate(s string) (Bitrate, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" || t == "0" {
		return 0, nil
	}
	t = strings.TrimSuffix(t, "/s")
	if strings.HasSuffix(t, "bps") {
		t = strings.TrimSuffix(t, "ps") + "it"
	}
	mult := 1.0
	for _, u := range bitUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || v < 0 || v*mult > 1e15 {
		return 0, fmt.Errorf("bitrate %q: want a number of bits per second such as \"8Mbit\" or \"128kbit\"", s)
	}
	return Bitrate(math.Round(v * mult)), nil
}

// UnmarshalText parses a bitrate string.
func (b *Bitrate) UnmarshalText(t []byte) error {
	v, err := ParseBitrate(string(t))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalText writes the bitrate with the largest unit that keeps it exact.
func (b Bitrate) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// String writes the bitrate as ParseBitrate reads it: "8Mbit", "0".
func (b Bitrate) String() string {
	switch {
	case b == 0:
		return "0"
	case b%1e9 == 0:
		return fmt.Sprintf("%dGbit", b/1e9)
	case b%1e6 == 0:
		return fmt.Sprintf("%dMbit", b/1e6)
	case b%1e3 == 0:
		return fmt.Sprintf("%dkbit", b/1e3)
	}
	return fmt.Sprintf("%dbit", int64(b))
}

// BytesPerSecond converts the rate.
func (b Bitrate) BytesPerSecond() int64 { return int64(b) / 8 }
