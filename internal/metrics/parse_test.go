package metrics_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"mustserv/internal/metrics"
)

// This file holds a small, strict reader of the text format, version
// 0.0.4, written from the format's description rather than from the
// writer, so that the tests check what a scraper would read back.

// exposition is a parsed exposition.
type exposition struct {
	help    map[string]string // family → unescaped help, if a # HELP line was written
	typ     map[string]string // family → counter or gauge
	samples []sampleLine
}

type sampleLine struct {
	name       string
	labelName  string // "" for a sample without labels
	labelValue string // unescaped
	value      float64
}

// value returns the value of the sample of name, with label value label
// when label is not nil.
func (e exposition) value(name string, label *string) (float64, bool) {
	for _, s := range e.samples {
		if s.name == name && (label == nil && s.labelName == "" || label != nil && s.labelName != "" && s.labelValue == *label) {
			return s.value, true
		}
	}
	return 0, false
}

// scrape writes r's exposition and parses it, failing t on any error.
func scrape(t testing.TB, r *metrics.Registry) exposition {
	t.Helper()
	var buf bytes.Buffer
	if _, err := r.WriteTo(&buf); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	e, err := parseExposition(buf.String())
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, buf.String())
	}
	return e
}

// mustValue returns the unlabelled sample name of a scrape of r.
func mustValue(t testing.TB, r *metrics.Registry, name string) float64 {
	t.Helper()
	v, ok := scrape(t, r).value(name, nil)
	if !ok {
		t.Fatalf("no sample %s in the exposition", name)
	}
	return v
}

func parseExposition(text string) (exposition, error) {
	e := exposition{help: map[string]string{}, typ: map[string]string{}}
	if text == "" {
		return e, nil
	}
	if !strings.HasSuffix(text, "\n") {
		return e, errors.New("exposition does not end in a line feed")
	}
	done := map[string]bool{} // families whose samples are over
	current := ""
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(format string, args ...any) (exposition, error) {
			return e, fmt.Errorf("line %d %q: %s", n+1, line, fmt.Sprintf(format, args...))
		}
		var name string
		switch {
		case strings.HasPrefix(line, "# HELP "):
			var help string
			var ok bool
			name, help, ok = strings.Cut(strings.TrimPrefix(line, "# HELP "), " ")
			if !ok {
				return fail("no space after the name")
			}
			if _, dup := e.help[name]; dup {
				return fail("second # HELP for %s", name)
			}
			if _, typed := e.typ[name]; typed {
				return fail("# HELP after # TYPE")
			}
			h, rest, err := unescape(help, false)
			if err != nil || rest != "" {
				return fail("bad help text: %v", err)
			}
			e.help[name] = h
		case strings.HasPrefix(line, "# TYPE "):
			var typ string
			var ok bool
			name, typ, ok = strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
			if !ok || (typ != "counter" && typ != "gauge") {
				return fail("bad type")
			}
			if _, dup := e.typ[name]; dup {
				return fail("second # TYPE for %s", name)
			}
			e.typ[name] = typ
		case strings.HasPrefix(line, "#"):
			return fail("unexpected comment")
		default:
			s, err := parseSample(line)
			if err != nil {
				return fail("%v", err)
			}
			if _, typed := e.typ[s.name]; !typed {
				return fail("sample before # TYPE")
			}
			name = s.name
			e.samples = append(e.samples, s)
		}
		if !validName(name) {
			return fail("invalid metric name %q", name)
		}
		if name != current {
			if done[name] {
				return fail("family %s is not contiguous", name)
			}
			if current != "" {
				done[current] = true
			}
			current = name
		}
	}
	return e, nil
}

// parseSample parses `name value` or `name{label="value"} value`.
func parseSample(line string) (sampleLine, error) {
	var s sampleLine
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, errors.New("no value")
	}
	s.name, line = line[:i], line[i:]
	if strings.HasPrefix(line, "{") {
		var ok bool
		s.labelName, line, ok = strings.Cut(line[1:], `="`)
		if !ok || !validLabelName(s.labelName) {
			return s, fmt.Errorf("bad label name %q", s.labelName)
		}
		v, rest, err := unescape(line, true)
		if err != nil {
			return s, err
		}
		s.labelValue = v
		if !strings.HasPrefix(rest, "}") {
			return s, errors.New("no } after the label value")
		}
		line = rest[1:]
	}
	if !strings.HasPrefix(line, " ") {
		return s, errors.New("no space before the value")
	}
	v, err := strconv.ParseFloat(line[1:], 64)
	if err != nil {
		return s, err
	}
	if math.IsInf(v, 1) && line[1:] != "+Inf" || math.IsInf(v, -1) && line[1:] != "-Inf" || math.IsNaN(v) && line[1:] != "NaN" {
		return s, fmt.Errorf("value %q is not spelled as the format does", line[1:])
	}
	s.value = v
	return s, nil
}

// unescape reads escaped text. In a quoted label value (quoted is true) it
// stops at the closing quote and returns what follows it; in help text it
// reads to the end. The only escapes are \\, \n and, when quoted, \".
func unescape(s string, quoted bool) (value, rest string, err error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			if i+1 == len(s) {
				return "", "", errors.New("backslash at the end")
			}
			i++
			switch s[i] {
			case '\\':
				b.WriteByte('\\')
			case 'n':
				b.WriteByte('\n')
			case '"':
				if !quoted {
					return "", "", errors.New(`\" outside a label value`)
				}
				b.WriteByte('"')
			default:
				return "", "", fmt.Errorf("unknown escape \\%c", s[i])
			}
		case c == '"' && quoted:
			return b.String(), s[i+1:], nil
		case c == '\n':
			return "", "", errors.New("raw line feed")
		default:
			b.WriteByte(c)
		}
	}
	if quoted {
		return "", "", errors.New("no closing quote")
	}
	return b.String(), "", nil
}

func validName(s string) bool {
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return s != ""
}

func validLabelName(s string) bool {
	return validName(s) && !strings.Contains(s, ":")
}

// FuzzLabelEscape writes any string as a label value and as help text,
// and reads it back with the parser above: escaping must round-trip, and
// nothing may leak out of the quotes or onto a new line.
func FuzzLabelEscape(f *testing.F) {
	for _, s := range []string{
		"", "plain", `a"b`, `a\b`, "a\nb", `\n`, `\"`, "\\\"\n", `"} 1`, "\n# TYPE x gauge",
		"é", "日本", "\xff", "a\xc3", "a\r\nb", "\x00", "other",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := metrics.New()
		r.CounterVec("m_total", s, "l").With(s).Add(7)
		e := scrape(t, r)
		want := strings.ToValidUTF8(s, "\uFFFD")
		if len(e.samples) != 1 {
			t.Fatalf("got %d samples, want 1", len(e.samples))
		}
		if got := e.samples[0]; got.labelName != "l" || got.labelValue != want || got.value != 7 {
			t.Errorf("read back label %s=%q value %v, want l=%q value 7", got.labelName, got.labelValue, got.value, want)
		}
		help, ok := e.help["m_total"]
		if ok != (want != "") || help != want {
			t.Errorf("read back help %q (written: %v), want %q", help, ok, want)
		}
	})
}

// FuzzFloatFormat checks that every float64 is written in a form that
// reads back to the same value, and that whole numbers below 1e21 carry
// no exponent.
func FuzzFloatFormat(f *testing.F) {
	for _, v := range []float64{0, 1, -1, 0.5, 1e6, 1e21, 1e-7, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.NaN()} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		r := metrics.New()
		r.GaugeFunc("f", "", func() float64 { return v })
		var buf bytes.Buffer
		if _, err := r.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		text, ok := strings.CutPrefix(buf.String(), "# TYPE f gauge\nf ")
		if !ok || !strings.HasSuffix(text, "\n") {
			t.Fatalf("unexpected exposition %q", buf.String())
		}
		text = strings.TrimSuffix(text, "\n")
		got := mustValue(t, r, "f")
		if got != v && !(math.IsNaN(got) && math.IsNaN(v)) {
			t.Errorf("%v written as %q, read back as %v", v, text, got)
		}
		if v == math.Trunc(v) && math.Abs(v) < 1e21 && strings.ContainsAny(text, "e.") {
			t.Errorf("whole number %v written as %q", v, text)
		}
	})
}
