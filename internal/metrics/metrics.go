// Package metrics provides counters and gauges owned by a Registry, and
// writes them in the Prometheus text exposition format, version 0.0.4,
// for a scraper to read from Registry.Handler. RegisterProcess adds the
// usual process_* and go_* metrics.
//
// It does not provide histograms, summaries, timestamps, exemplars, the
// protobuf or OpenMetrics formats, push, or more than one label per
// family; and there is no default registry: whoever builds the server
// makes one with New and passes it to what records into it.
package metrics

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// maxValues is how many distinct label values a labelled family keeps.
// Label values usually come from requests (a client, an item, a route), and
// every value is a series held in memory here and in the scraper's
// database, so an unbounded set is a memory leak on both sides.
const maxValues = 1000

// overflowValue is the label value that values past maxValues share.
const overflowValue = "other"

// Registry holds a set of metric families and writes them out. It is safe
// for concurrent use. The zero value is not usable; use New.
type Registry struct {
	mu       sync.Mutex
	families []*family // sorted by name

	// sizeHint is the length of the last exposition, so the next one
	// allocates its buffer once.
	sizeHint atomic.Int64
}

// New returns an empty Registry.
func New() *Registry {
	return &Registry{}
}

// family is one metric name with its help and type. Exactly one of cell,
// fn and vec is set.
type family struct {
	name string
	help string
	typ  string // "counter" or "gauge", as written on the # TYPE line
	cell *cell
	fn   func() float64
	vec  *vec
}

// cell is the storage of one series. Counter and Gauge have the same
// underlying type, so a *cell converts to either: the registry and vec
// store cells and hand out the typed pointer that gives the right methods.
type cell struct {
	v atomic.Int64
}

// Counter is a value that only goes up. Its methods are atomic and take
// no lock.
type Counter struct {
	v atomic.Int64
}

// Add adds n to the counter. It panics if n is negative: a counter that
// goes down reads as a restart to Prometheus's rate().
func (c *Counter) Add(n int64) {
	if n < 0 {
		panic(fmt.Sprintf("metrics: counter Add(%d): counters only go up", n))
	}
	c.v.Add(n)
}

// Inc adds one to the counter.
func (c *Counter) Inc() {
	c.v.Add(1)
}

// Value returns the counter's current value.
func (c *Counter) Value() int64 {
	return c.v.Load()
}

// Gauge is a value that goes up and down. Its methods are atomic and take
// no lock.
type Gauge struct {
	v atomic.Int64
}

// Set sets the gauge to v.
func (g *Gauge) Set(v int64) {
	g.v.Store(v)
}

// Add adds n, which may be negative, to the gauge.
func (g *Gauge) Add(n int64) {
	g.v.Add(n)
}

// Value returns the gauge's current value.
func (g *Gauge) Value() int64 {
	return g.v.Load()
}

// Counter registers and returns a counter. It panics if name is not a
// valid metric name or is already registered: both are programming errors,
// found by the first test that builds the registry.
func (r *Registry) Counter(name, help string) *Counter {
	c := new(cell)
	r.add(&family{name: name, help: help, typ: "counter", cell: c})
	return (*Counter)(c)
}

// Gauge registers and returns a gauge. It panics as Counter does.
func (r *Registry) Gauge(name, help string) *Gauge {
	c := new(cell)
	r.add(&family{name: name, help: help, typ: "gauge", cell: c})
	return (*Gauge)(c)
}

// CounterFunc registers a counter whose value is fn's result at each
// exposition, for counts kept elsewhere. fn is called without any lock of
// the registry held, from the goroutine writing the exposition; it must be
// safe to call concurrently with itself and must not decrease. It panics
// as Counter does.
func (r *Registry) CounterFunc(name, help string, fn func() float64) {
	if fn == nil {
		panic(fmt.Sprintf("metrics: CounterFunc %q: nil func", name))
	}
	r.add(&family{name: name, help: help, typ: "counter", fn: fn})
}

// GaugeFunc registers a gauge whose value is fn's result at each
// exposition. fn is called as for CounterFunc. It panics as Counter does.
func (r *Registry) GaugeFunc(name, help string, fn func() float64) {
	if fn == nil {
		panic(fmt.Sprintf("metrics: GaugeFunc %q: nil func", name))
	}
	r.add(&family{name: name, help: help, typ: "gauge", fn: fn})
}

// CounterVec is a family of counters told apart by the value of one label.
type CounterVec struct {
	v *vec
}

// CounterVec registers a family of counters with one label. It panics as
// Counter does, and if label is not a valid label name.
func (r *Registry) CounterVec(name, help, label string) *CounterVec {
	v := newVec(name, label)
	r.add(&family{name: name, help: help, typ: "counter", vec: v})
	return &CounterVec{v: v}
}

// With returns the counter for the label value, creating it at zero on
// first use. Once the family holds 1000 distinct values, a new value gets
// the counter of the value "other" instead, so a label fed from requests
// cannot grow without bound. Invalid UTF-8 in value is replaced by U+FFFD,
// as the format requires UTF-8.
func (v *CounterVec) With(value string) *Counter {
	return (*Counter)(v.v.with(value))
}

// GaugeVec is a family of gauges told apart by the value of one label.
type GaugeVec struct {
	v *vec
}

// GaugeVec registers a family of gauges with one label. It panics as
// CounterVec does.
func (r *Registry) GaugeVec(name, help, label string) *GaugeVec {
	v := newVec(name, label)
	r.add(&family{name: name, help: help, typ: "gauge", vec: v})
	return &GaugeVec{v: v}
}

// With returns the gauge for the label value, creating it at zero on first
// use. It is capped as CounterVec.With is: past 1000 distinct values, new
// values share the gauge of the value "other" (Add still sums correctly
// there; Set from several values is last-writer-wins).
func (v *GaugeVec) With(value string) *Gauge {
	return (*Gauge)(v.v.with(value))
}

// Delete removes the gauge for the label value from the exposition and
// frees its place under the cap. A *Gauge obtained before still works but
// is no longer written; the next With(value) starts a new gauge at zero.
// Deleting a value that is not there does nothing.
func (v *GaugeVec) Delete(value string) {
	v.v.delete(value)
}

// vec is the storage of a labelled family.
type vec struct {
	label string
	mu    sync.RWMutex
	cells map[string]*cell
}

func newVec(name, label string) *vec {
	if !validLabelName(label) {
		panic(fmt.Sprintf("metrics: family %q: invalid label name %q", name, label))
	}
	return &vec{label: label, cells: make(map[string]*cell)}
}

func (v *vec) with(value string) *cell {
	if !utf8.ValidString(value) {
		value = strings.ToValidUTF8(value, "\uFFFD")
	}
	// The common case, a value seen before, takes only the read lock.
	v.mu.RLock()
	c := v.cells[value]
	v.mu.RUnlock()
	if c != nil {
		return c
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if c := v.cells[value]; c != nil {
		return c
	}
	if len(v.cells) >= maxValues {
		value = overflowValue
		if c := v.cells[value]; c != nil {
			return c
		}
	}
	c = new(cell)
	v.cells[value] = c
	return c
}

func (v *vec) delete(value string) {
	if !utf8.ValidString(value) {
		value = strings.ToValidUTF8(value, "\uFFFD")
	}
	v.mu.Lock()
	delete(v.cells, value)
	v.mu.Unlock()
}

// add inserts f, keeping r.families sorted by name.
func (r *Registry) add(f *family) {
	if !validName(f.name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", f.name))
	}
	if !utf8.ValidString(f.help) {
		f.help = strings.ToValidUTF8(f.help, "\uFFFD")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i, found := slices.BinarySearchFunc(r.families, f.name, func(g *family, name string) int {
		return cmp.Compare(g.name, name)
	})
	if found {
		panic(fmt.Sprintf("metrics: %s registered twice", f.name))
	}
	r.families = slices.Insert(r.families, i, f)
}

// validName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return true
}

// validLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]* and does
// not start with "__", which Prometheus reserves for its own labels.
func validLabelName(s string) bool {
	if s == "" || strings.HasPrefix(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return true
}
