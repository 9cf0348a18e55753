package httporigin

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// link is what a test compares of an HTML listing's entry.
type link struct {
	Name string
	Dir  bool
}

func links(entries []entry) []link {
	var out []link
	for _, e := range entries {
		out = append(out, link{e.name, e.dir})
	}
	return out
}

// The index pages of nginx (captured from nginx 1.22) and Apache 2.4
// (written by hand after mod_autoindex's FancyIndexing table, with icons
// linked too) give their children and nothing else.
func TestParseHTMLListing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		want []link
	}{
		{"nginx.html", []link{{"sub dir #1", true}, {"a b#?%+&é.mp3", false}, {"a:b;c,d=e@f.ogg", false}, {"broken.mp3", false}}},
		{"apache.html", []link{{"a b#?%+&é.mp3", false}, {"sub dir #1", true}, {"a:b;c,d=e@f.ogg", false}}},
	} {
		page, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, links(parseHTMLListing(page))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.file, diff)
		}
	}
}

func TestChildLink(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		href string
		want *link // nil: not a child
	}{
		{"a.mp3", &link{"a.mp3", false}},
		{"dir/", &link{"dir", true}},
		{"./a:b.mp3", &link{"a:b.mp3", false}},
		{"a%2Bb+c.mp3", &link{"a+b+c.mp3", false}},
		{"%E6%97%A5.mp3", &link{"日.mp3", false}},
		{"%3F.mp3", &link{"?.mp3", false}},
		{"a:b.mp3", nil},
		{"http://other/a.mp3", nil},
		{"//other/a.mp3", nil},
		{"/media/a.mp3", nil},
		{"../", nil},
		{"..", nil},
		{"./", nil},
		{".", nil},
		{"%2e%2e/", nil},
		{"..%2Fx.mp3", nil},
		{"a%2Fb.mp3", nil},
		{"sub/a.mp3", nil},
		{"dir//", nil},
		{"?C=N;O=D", nil},
		{"a.mp3#t=10", nil},
		{"", nil},
		{"%zz.mp3", nil},
	} {
		name, dir, ok := childLink(tc.href)
		var got *link
		if ok {
			got = &link{name, dir}
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("childLink(%q) (-want +got):\n%s", tc.href, diff)
		}
	}
}

func TestAnchorHrefs(t *testing.T) {
	t.Parallel()
	page := `<!DOCTYPE html><a href="one">1</a><A HREF='two'>2</A><a class=x href=three>3</a>
		<a title="has > in it" href="four">4</a><!-- <a href="hidden"> --><a name=x>no href</a>
		<abbr href="not-a">x</abbr><a href="f&amp;i&#118;e" href="second">5</a><a
		href = "six" >6</a><a href="seven`
	want := []string{"one", "two", "three", "four", "f&ive", "six", "seven"}
	if diff := cmp.Diff(want, anchorHrefs(page)); diff != "" {
		t.Errorf("anchorHrefs (-want +got):\n%s", diff)
	}
}

// Whatever the page, the parser names only single, safe path segments,
// each once.
func FuzzParseHTMLListing(f *testing.F) {
	for _, file := range []string{"nginx.html", "apache.html"} {
		page, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(page)
	}
	f.Add([]byte(`<a href="..%2f..%2fetc%2fpasswd">x</a><a href='&#46;&#46;/'>`))
	f.Add([]byte(`<a href=./.%2e/><a href="a&#x2F;b"><!--<a href="c">`))
	f.Fuzz(func(t *testing.T, page []byte) {
		seen := make(map[string]bool)
		for _, e := range parseHTMLListing(page) {
			if !validSegment(e.name) || e.name == "." || e.name == ".." {
				t.Errorf("parsed name %q from %q", e.name, page)
			}
			if seen[e.name] {
				t.Errorf("name %q twice from %q", e.name, page)
			}
			seen[e.name] = true
		}
	})
}
