package metrics_test

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/metrics"
)

func TestWriteToGolden(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	r.Counter("requests_total", "Requests served.").Add(42)
	r.Gauge("temperature", "Degrees, may be negative.").Set(-7)
	r.Gauge("no_help", "")
	r.CounterFunc("bytes_total", "Bytes sent.", func() float64 { return 1e6 })
	r.GaugeFunc("ratio", "A fraction.", func() float64 { return 0.25 })
	v := r.CounterVec("http_responses_total", "Responses by status.", "code")
	v.With("500").Inc()
	v.With("200").Add(3)
	v.With("404").Add(2)
	r.GaugeVec("empty_vec", "Never used, so not written.", "x")
	r.GaugeFunc("app:ratio:max", "A name with colons.", func() float64 { return math.Inf(1) })

	const want = `# HELP app:ratio:max A name with colons.
# TYPE app:ratio:max gauge
app:ratio:max +Inf
# HELP bytes_total Bytes sent.
# TYPE bytes_total counter
bytes_total 1000000
# HELP http_responses_total Responses by status.
# TYPE http_responses_total counter
http_responses_total{code="200"} 3
http_responses_total{code="404"} 2
http_responses_total{code="500"} 1
# TYPE no_help gauge
no_help 0
# HELP ratio A fraction.
# TYPE ratio gauge
ratio 0.25
# HELP requests_total Requests served.
# TYPE requests_total counter
requests_total 42
# HELP temperature Degrees, may be negative.
# TYPE temperature gauge
temperature -7
`
	var buf bytes.Buffer
	n, err := r.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("exposition (-want +got):\n%s", diff)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
}

func TestWriteToEmpty(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	n, err := metrics.New().WriteTo(&buf)
	if n != 0 || err != nil || buf.Len() != 0 {
		t.Errorf("empty registry: WriteTo = %d, %v, wrote %q", n, err, buf.String())
	}
}

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 3, io.ErrShortWrite }

func TestWriteToError(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	r.Counter("c", "")
	n, err := r.WriteTo(failWriter{})
	if n != 3 || err != io.ErrShortWrite {
		t.Errorf("WriteTo = %d, %v; want 3, %v", n, err, io.ErrShortWrite)
	}
}

func TestEscaping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		help  string
		value string
		want  string
	}{
		{"plain", "Plain.", "a", "# HELP m Plain.\n# TYPE m counter\nm{l=\"a\"} 1\n"},
		{"backslash", `C:\path`, `C:\path`, "# HELP m C:\\\\path\n# TYPE m counter\nm{l=\"C:\\\\path\"} 1\n"},
		{"quote kept in help", `say "hi"`, `say "hi"`, "# HELP m say \"hi\"\n# TYPE m counter\nm{l=\"say \\\"hi\\\"\"} 1\n"},
		{"newline", "one\ntwo", "one\ntwo", "# HELP m one\\ntwo\n# TYPE m counter\nm{l=\"one\\ntwo\"} 1\n"},
		{"escape-like text", `\n`, `\"`, "# HELP m \\\\n\n# TYPE m counter\nm{l=\"\\\\\\\"\"} 1\n"},
		{"carriage return is not escaped", "a\rb", "a\rb", "# HELP m a\rb\n# TYPE m counter\nm{l=\"a\rb\"} 1\n"},
		{"empty value", "", "", "# TYPE m counter\nm{l=\"\"} 1\n"},
		{"utf-8 kept", "Température", "日本", "# HELP m Température\n# TYPE m counter\nm{l=\"日本\"} 1\n"},
		{"invalid utf-8 replaced", "bad\xff", "x\xffy", "# HELP m bad\uFFFD\n# TYPE m counter\nm{l=\"x\uFFFDy\"} 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := metrics.New()
			r.CounterVec("m", tt.help, "l").With(tt.value).Inc()
			var buf bytes.Buffer
			if _, err := r.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, buf.String()); diff != "" {
				t.Errorf("exposition (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLabelValuesSorted(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	g := r.GaugeVec("g", "", "k")
	for i, v := range []string{"b", "a\n", "a", "B", "a\"", ""} {
		g.With(v).Set(int64(i))
	}
	var got []string
	for _, s := range scrape(t, r).samples {
		got = append(got, s.labelValue)
	}
	want := []string{"", "B", "a", "a\n", "a\"", "b"} // by raw bytes, not by escaped text
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("label order (-want +got):\n%s", diff)
	}
}

func TestFloatFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{math.Copysign(0, -1), "0"},
		{1, "1"},
		{-1, "-1"},
		{0.5, "0.5"},
		{0.1, "0.1"},
		{1e6, "1000000"},
		{-1e6, "-1000000"},
		{1 << 53, "9007199254740992"},
		{1e20, "100000000000000000000"},
		{1e21, "1e+21"},
		{1234567.5, "1.2345675e+06"},
		{1.5e-7, "1.5e-07"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{math.SmallestNonzeroFloat64, "5e-324"},
		{math.Inf(1), "+Inf"},
		{math.Inf(-1), "-Inf"},
		{math.NaN(), "NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			r := metrics.New()
			r.GaugeFunc("f", "", func() float64 { return tt.in })
			var buf bytes.Buffer
			if _, err := r.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff("# TYPE f gauge\nf "+tt.want+"\n", buf.String()); diff != "" {
				t.Errorf("%v (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestCounterGauge(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	c := r.Counter("c_total", "")
	c.Inc()
	c.Add(10)
	c.Add(0)
	if got := c.Value(); got != 11 {
		t.Errorf("counter = %d, want 11", got)
	}
	g := r.Gauge("g", "")
	g.Set(5)
	g.Add(-8)
	if got := g.Value(); got != -3 {
		t.Errorf("gauge = %d, want -3", got)
	}
	e := scrape(t, r)
	if v, _ := e.value("c_total", nil); v != 11 {
		t.Errorf("exposed counter = %v, want 11", v)
	}
	if v, _ := e.value("g", nil); v != -3 {
		t.Errorf("exposed gauge = %v, want -3", v)
	}
}

func TestPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    func(r *metrics.Registry)
	}{
		{"empty name", func(r *metrics.Registry) { r.Counter("", "") }},
		{"leading digit", func(r *metrics.Registry) { r.Gauge("1x", "") }},
		{"dash", func(r *metrics.Registry) { r.CounterFunc("a-b", "", func() float64 { return 0 }) }},
		{"space", func(r *metrics.Registry) { r.GaugeFunc("a b", "", func() float64 { return 0 }) }},
		{"non-ascii", func(r *metrics.Registry) { r.Counter("é", "") }},
		{"nil func", func(r *metrics.Registry) { r.GaugeFunc("f", "", nil) }},
		{"duplicate", func(r *metrics.Registry) { r.Counter("x", ""); r.Counter("x", "") }},
		{"duplicate across kinds", func(r *metrics.Registry) { r.Counter("x", ""); r.GaugeVec("x", "", "l") }},
		{"empty label name", func(r *metrics.Registry) { r.CounterVec("v", "", "") }},
		{"colon in label name", func(r *metrics.Registry) { r.CounterVec("v", "", "a:b") }},
		{"leading digit in label name", func(r *metrics.Registry) { r.GaugeVec("v", "", "1a") }},
		{"reserved label name", func(r *metrics.Registry) { r.GaugeVec("v", "", "__name__") }},
		{"negative add", func(r *metrics.Registry) { r.Counter("c", "").Add(-1) }},
		{"negative add on a vec's counter", func(r *metrics.Registry) { r.CounterVec("c", "", "l").With("a").Add(-1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Error("did not panic")
				}
			}()
			tt.f(metrics.New())
		})
	}
}

func TestValidNames(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	for _, name := range []string{"a", "_", ":", "A9", "a_b:c", "__x", ":x9"} {
		r.Counter(name, "")
	}
	for i, label := range []string{"a", "_x", "A9", "le"} {
		r.GaugeVec("v"+strconv.Itoa(i), "", label).With("x").Set(1)
	}
	if got := len(scrape(t, r).samples); got != 11 {
		t.Errorf("got %d samples, want 11", got)
	}
}

func TestCounterVecCap(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	v := r.CounterVec("c_total", "", "k")
	for i := range 1000 {
		v.With(fmt.Sprintf("v%04d", i)).Inc()
	}
	kept := v.With("v0500")
	for i := range 5 {
		v.With("late" + strconv.Itoa(i)).Inc()
	}
	v.With("late0").Inc() // still not kept
	if v.With("v0500") != kept {
		t.Error("a value seen before the cap lost its counter")
	}
	kept.Inc()

	e := scrape(t, r)
	if got := len(e.samples); got != 1001 {
		t.Errorf("got %d series, want 1000 values and other", got)
	}
	for _, tt := range []struct {
		label string
		want  float64
	}{{"other", 6}, {"v0500", 2}, {"v0000", 1}, {"v0999", 1}} {
		if got, ok := e.value("c_total", &tt.label); !ok || got != tt.want {
			t.Errorf("c_total{k=%q} = %v (present %v), want %v", tt.label, got, ok, tt.want)
		}
	}
	late := "late0"
	if _, ok := e.value("c_total", &late); ok {
		t.Error("a value past the cap got its own series")
	}
}

func TestGaugeVec(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	v := r.GaugeVec("g", "", "k")
	a := v.With("a")
	a.Set(5)
	v.With("b").Add(2)
	if v.With("a") != a {
		t.Error("With returned a new gauge for a known value")
	}
	v.Delete("a")
	v.Delete("never") // no-op
	a.Set(9)          // still usable, no longer written
	e := scrape(t, r)
	if diff := cmp.Diff([]sampleLine{{name: "g", labelName: "k", labelValue: "b", value: 2}}, e.samples, cmp.AllowUnexported(sampleLine{})); diff != "" {
		t.Errorf("after Delete (-want +got):\n%s", diff)
	}
	if got := v.With("a").Value(); got != 0 {
		t.Errorf("With after Delete = %d, want a new gauge at 0", got)
	}
}

// TestGaugeVecCapFreedByDelete checks that GaugeVec has the same cap as
// CounterVec, and that Delete makes room under it.
func TestGaugeVecCapFreedByDelete(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	v := r.GaugeVec("g", "", "k")
	for i := range 1000 {
		v.With(strconv.Itoa(i)).Set(1)
	}
	v.With("x").Add(1)
	v.With("y").Add(1)
	other := "other"
	if got, _ := scrape(t, r).value("g", &other); got != 2 {
		t.Errorf("g{k=other} = %v, want 2", got)
	}
	v.Delete("0")
	v.Delete("other")
	v.With("z").Set(7)
	z := "z"
	if got, ok := scrape(t, r).value("g", &z); !ok || got != 7 {
		t.Errorf("after Delete made room, g{k=z} = %v (present %v), want 7", got, ok)
	}
}

// TestConcurrentUpdatesAndScrapes runs many writers against one scraper;
// under -race it checks the lock-free paths, and it checks that every
// scrape parses and that counters never go backwards between scrapes.
func TestConcurrentUpdatesAndScrapes(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	c := r.Counter("c_total", "")
	g := r.Gauge("g", "")
	cv := r.CounterVec("cv_total", "", "k")
	gv := r.GaugeVec("gv", "", "k")
	const workers, iters = 16, 2000

	stop := make(chan struct{})
	scraped := make(chan int)
	go func() {
		n, prev := 0, -1.0
		for {
			select {
			case <-stop:
				scraped <- n
				return
			default:
			}
			var buf bytes.Buffer
			if _, err := r.WriteTo(&buf); err != nil {
				t.Errorf("WriteTo: %v", err)
			}
			e, err := parseExposition(buf.String())
			if err != nil {
				t.Errorf("scrape %d: %v", n, err)
			}
			if v, _ := e.value("c_total", nil); v < prev {
				t.Errorf("scrape %d: c_total went from %v to %v", n, prev, v)
			} else {
				prev = v
			}
			n++
		}
	}()

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range iters {
				c.Inc()
				c.Add(2)
				g.Add(1)
				g.Add(-1)
				cv.With(strconv.Itoa(i % 10)).Inc()
				gv.With(strconv.Itoa(i % 7)).Set(int64(i))
				if i%100 == 0 {
					gv.Delete(strconv.Itoa(i % 7))
				}
				if i == iters/2 {
					r.CounterFunc(fmt.Sprintf("late_%d_total", w), "", func() float64 { return float64(c.Value()) })
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	if n := <-scraped; n == 0 {
		t.Log("the scraper did not finish a scrape while the writers ran")
	}

	if got, want := c.Value(), int64(workers*iters*3); got != want {
		t.Errorf("c_total = %d, want %d", got, want)
	}
	if got := g.Value(); got != 0 {
		t.Errorf("g = %d, want 0", got)
	}
	e := scrape(t, r)
	var sum float64
	for _, s := range e.samples {
		if s.name == "cv_total" {
			sum += s.value
		}
	}
	if sum != workers*iters {
		t.Errorf("sum of cv_total = %v, want %d", sum, workers*iters)
	}
	for w := range workers {
		if _, ok := e.value(fmt.Sprintf("late_%d_total", w), nil); !ok {
			t.Errorf("late_%d_total missing", w)
		}
	}
}

// TestFuncMayUseRegistry checks that a GaugeFunc is called without the
// registry's lock held: one that registers a family must not deadlock.
// The family it adds is written from the next exposition on.
func TestFuncMayUseRegistry(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	var once sync.Once
	r.GaugeFunc("lazy", "", func() float64 {
		once.Do(func() { r.Counter("registered_by_func_total", "").Inc() })
		return 1
	})
	if _, ok := scrape(t, r).value("registered_by_func_total", nil); ok {
		t.Error("a family registered during an exposition was in it")
	}
	if got := mustValue(t, r, "registered_by_func_total"); got != 1 {
		t.Errorf("registered_by_func_total = %v, want 1", got)
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	r.Counter("c_total", "Things.").Add(3)
	r.CounterVec("v_total", "By kind.", "kind").With(`a"b`).Inc()
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	var want bytes.Buffer
	if _, err := r.WriteTo(&want); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		method     string
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{http.MethodGet, 200, want.String(), map[string]string{
			"Content-Type":   "text/plain; version=0.0.4; charset=utf-8",
			"Cache-Control":  "no-store",
			"Content-Length": strconv.Itoa(want.Len()),
		}},
		{http.MethodHead, 200, "", map[string]string{
			"Content-Type":   "text/plain; version=0.0.4; charset=utf-8",
			"Cache-Control":  "no-store",
			"Content-Length": strconv.Itoa(want.Len()),
		}},
		{http.MethodPost, 405, "method not allowed\n", map[string]string{"Allow": "GET, HEAD"}},
		{http.MethodPut, 405, "method not allowed\n", map[string]string{"Allow": "GET, HEAD"}},
		{http.MethodDelete, 405, "method not allowed\n", map[string]string{"Allow": "GET, HEAD"}},
		{http.MethodPatch, 405, "method not allowed\n", map[string]string{"Allow": "GET, HEAD"}},
		{http.MethodOptions, 405, "method not allowed\n", map[string]string{"Allow": "GET, HEAD"}},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+"/metrics", strings.NewReader(""))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.wantBody, string(body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			got := map[string]string{}
			for k := range tt.wantHeader {
				got[k] = resp.Header.Get(k)
			}
			if diff := cmp.Diff(tt.wantHeader, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}
