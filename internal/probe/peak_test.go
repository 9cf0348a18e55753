package probe

import "testing"

func TestPeak(t *testing.T) {
	t.Parallel()
	// 10 s of 1,000-byte packets every 0.5 s (16 kbit/s), with a burst of
	// 3 extra packets at 6 s.
	var steady []Packet
	for i := range 20 {
		steady = append(steady, Packet{Time: float64(i) * 0.5, Bytes: 1000})
	}
	burst := append([]Packet{}, steady...)
	for range 3 {
		burst = append(burst, Packet{Time: 6, Bytes: 1000})
	}
	tests := []struct {
		name     string
		packets  []Packet
		window   float64
		duration float64
		want     int64
	}{
		{"steady", steady, 4, 10, 8 * 8000 / 4},
		{"burst", burst, 4, 10, 8 * 11000 / 4},
		{"shorter than the window is the average", steady[:4], 4, 2, 4000 * 8 / 2},
		{"one-packet window", steady, 0.5, 10, 8 * 1000 / 0.5},
		{"empty", nil, 4, 0, 0},
	}
	for _, tt := range tests {
		if got := Peak(tt.packets, tt.window, tt.duration); got != tt.want {
			t.Errorf("%s: Peak = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestPeakMeterMemory: the meter keeps a window's packets, not the file's.
func TestPeakMeterMemory(t *testing.T) {
	t.Parallel()
	m := newPeakMeter(1)
	for i := range 1_000_000 {
		m.add(Packet{Time: float64(i) * 0.01, Bytes: 100})
	}
	if live := len(m.q) - m.head; live > 101 {
		t.Errorf("%d live packets for a 1 s window of 100 packets/s", live)
	}
	if cap(m.q) > 4096 {
		t.Errorf("queue capacity %d: the meter holds on to past packets", cap(m.q))
	}
}
