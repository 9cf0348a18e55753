package probe

import "testing"

func FuzzWAV(f *testing.F) {
	fuzzSeeds(f, 1<<10, "testdata/riff/*.wav")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzProbe(t, b, "fuzz.wav")
	})
}

func FuzzAIFF(f *testing.F) {
	fuzzSeeds(f, 1<<10, "testdata/riff/*.aiff")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzProbe(t, b, "fuzz.aiff")
	})
}
