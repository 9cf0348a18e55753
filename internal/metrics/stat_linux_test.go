package metrics

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A real /proc/self/stat line, with a command name made to hold the
// characters that trip naive parsers.
const statLine = "4242 (a b) (c) R 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 8 0 12345 1097728000 5120 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 3 0 0 0 0 0\n"

func TestParseStat(t *testing.T) {
	t.Parallel()
	got, err := parseStat([]byte(statLine))
	if err != nil {
		t.Fatal(err)
	}
	want := stat{utime: 250, stime: 75, starttime: 12345, vsize: 1097728000, rss: 5120}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(stat{})); diff != "" {
		t.Errorf("parseStat (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "4242 (x R 1", "4242 (x) R 1 2 3", "4242 (x) R 1 4242 4242 0 -1 4194560 1234 0 0 0 x 75 0 0 20 0 8 0 12345 1 2"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) did not fail", bad)
		}
	}
}

func TestParseBootTime(t *testing.T) {
	t.Parallel()
	got, err := parseBootTime([]byte("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"))
	if err != nil || got != 1700000000 {
		t.Errorf("parseBootTime = %d, %v; want 1700000000", got, err)
	}
	for _, bad := range []string{"", "cpu 1\n", "btime x\n"} {
		if _, err := parseBootTime([]byte(bad)); err == nil {
			t.Errorf("parseBootTime(%q) did not fail", bad)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(statLine))
	f.Add([]byte("1 ()) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseStat(b) // must not panic; any result is fine
		parseBootTime(b)
	})
}
