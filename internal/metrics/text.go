package metrics

import (
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// contentType is what Prometheus expects for the text format, version 0.0.4.
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// WriteTo writes every family in the Prometheus text format, version
// 0.0.4: families sorted by name, each with its # HELP (left out when help
// is empty) and # TYPE lines, then its samples, sorted by label value. A
// labelled family with no values yet is left out, as Prometheus's own
// client does. The exposition is built in memory and written with one
// Write call, so w sees all of it or an error.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r.text())
	return int64(n), err
}

// Handler returns an http.Handler that serves the exposition to GET and
// HEAD requests and answers any other method with 405.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b := r.text()
		h := w.Header()
		h.Set("Content-Type", contentType)
		// Every scrape must see current values, never a proxy's copy.
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Length", strconv.Itoa(len(b)))
		if req.Method == http.MethodHead {
			return
		}
		// An error here is the scraper gone away; there is no one left to
		// tell.
		_, _ = w.Write(b)
	})
}

// sample is one labelled series' value, copied out under the vec's lock.
type sample struct {
	label string
	value int64
}

// text renders the exposition.
func (r *Registry) text() []byte {
	// Copy the family list and render without the registry lock, so that
	// a CounterFunc or GaugeFunc may itself use the registry and a slow fn
	// does not hold up registration.
	r.mu.Lock()
	families := slices.Clone(r.families)
	r.mu.Unlock()

	b := make([]byte, 0, r.sizeHint.Load()+256)
	var samples []sample
	for _, f := range families {
		switch {
		case f.vec != nil:
			samples = f.vec.snapshot(samples[:0])
			if len(samples) == 0 {
				continue
			}
			b = appendHeader(b, f)
			for _, s := range samples {
				b = append(b, f.name...)
				b = append(b, '{')
				b = append(b, f.vec.label...)
				b = append(b, '=', '"')
				b = appendEscaped(b, s.label, true)
				b = append(b, '"', '}', ' ')
				b = strconv.AppendInt(b, s.value, 10)
				b = append(b, '\n')
			}
		case f.fn != nil:
			b = appendHeader(b, f)
			b = append(b, f.name...)
			b = append(b, ' ')
			b = appendFloat(b, f.fn())
			b = append(b, '\n')
		default:
			b = appendHeader(b, f)
			b = append(b, f.name...)
			b = append(b, ' ')
			b = strconv.AppendInt(b, f.cell.v.Load(), 10)
			b = append(b, '\n')
		}
	}
	r.sizeHint.Store(int64(len(b)))
	return b
}

// snapshot appends the vec's values to dst, sorted by label value.
func (v *vec) snapshot(dst []sample) []sample {
	v.mu.RLock()
	for label, c := range v.cells {
		dst = append(dst, sample{label: label, value: c.v.Load()})
	}
	v.mu.RUnlock()
	slices.SortFunc(dst, func(a, b sample) int { return strings.Compare(a.label, b.label) })
	return dst
}

func appendHeader(b []byte, f *family) []byte {
	if f.help != "" {
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = appendEscaped(b, f.help, false)
		b = append(b, '\n')
	}
	b = append(b, "# TYPE "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = append(b, f.typ...)
	return append(b, '\n')
}

// appendEscaped appends s escaped as the 0.0.4 format asks: in help text a
// backslash becomes \\ and a line feed \n; in a label value (quoted) a
// double quote also becomes \". Working byte by byte is safe on UTF-8:
// these three bytes never occur inside a multi-byte sequence.
func appendEscaped(b []byte, s string, quoted bool) []byte {
	special := "\\\n"
	if quoted {
		special = "\\\n\""
	}
	if !strings.ContainsAny(s, special) {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && quoted:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat appends f as Prometheus writes sample values: NaN, +Inf and
// -Inf spelled so, otherwise the shortest form that reads back to the
// same float64 (Go's 'g'). Unlike Prometheus's client, which writes a
// million bytes as 1e+06, a whole number below 1e21 is written out in
// digits: still exact, and readable by a person reading /metrics. 1e21 is
// where JavaScript switches to exponents too.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case f == 0:
		return append(b, '0') // also for -0, as Prometheus's client writes it
	case f == math.Trunc(f) && math.Abs(f) < 1e21:
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	default:
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	}
}
