package index

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"mustserv/internal/probe"
)

func TestParseQuery(t *testing.T) {
	t.Parallel()
	word := func(text string) Clause { return Clause{Terms: []Term{{Text: text, Prefix: true}}} }
	field := func(f, text string) Clause { return Clause{Terms: []Term{{Field: f, Text: text, Prefix: true}}} }
	year := func(from, to int) Term { return Term{Field: "year", From: from, To: to} }
	not := func(c Clause) Clause { c.Not = true; return c }
	for _, tc := range []struct {
		name, q string
		want    []Clause
	}{
		{"words are prefixes", "bjo  hom", []Clause{word("bjo"), word("hom")}},
		{"phrase", `"sigur ros"`, []Clause{{Terms: []Term{{Text: "sigur ros"}}}}},
		{"unclosed phrase while typing", `x "sigur r`, []Clause{word("x"), word("sigur r")}},
		{"quote ends a word", `a"b c"d`, []Clause{word("a"), {Terms: []Term{{Text: "b c"}}}, word("d")}},
		{"fields", "Artist:Björk album:x albumartist:y title:z genre:rock path:a/b",
			[]Clause{field("artist", "Björk"), field("album", "x"), field("albumartist", "y"),
				field("title", "z"), field("genre", "rock"), field("path", "a/b")}},
		{"field phrase", `artist:"sigur ros"`, []Clause{{Terms: []Term{{Field: "artist", Text: "sigur ros"}}}}},
		{"unknown fields are words", "ac/dc: 12:30 :x foo:bar", []Clause{word("ac/dc:"), word("12:30"), word(":x"), word("foo:bar")}},
		{"field with nothing yet", "title: x", []Clause{word("x")}},
		{"years", `year:1997 year:1990-1999 year:1990- year:-1999 year:"2001"`, []Clause{
			{Terms: []Term{year(1997, 1997)}}, {Terms: []Term{year(1990, 1999)}}, {Terms: []Term{year(1990, 9999)}},
			{Terms: []Term{year(1, 1999)}}, {Terms: []Term{year(2001, 2001)}}}},
		{"exclusions", `a -live -artist:x -"y z"`, []Clause{word("a"), not(word("live")), not(field("artist", "x")),
			not(Clause{Terms: []Term{{Text: "y z"}}})}},
		{"lone dash", "a - b -", []Clause{word("a"), word("b")}},
		{"OR", "a OR b OR c d", []Clause{{Terms: []Term{{Text: "a", Prefix: true}, {Text: "b", Prefix: true},
			{Text: "c", Prefix: true}}}, word("d")}},
		{"dangling ORs", "OR a OR OR b OR", []Clause{{Terms: []Term{{Text: "a", Prefix: true}, {Text: "b", Prefix: true}}}}},
		{"or in lower case is a word", "a or b", []Clause{word("a"), word("or"), word("b")}},
		{"years OR years", "year:1990 OR year:2000-2001", []Clause{{Terms: []Term{year(1990, 1990), year(2000, 2001)}}}},
		{"no letters, no term", `a !!! "" ** -#`, []Clause{word("a")}},
		{"NUL and invalid UTF-8 separate words", "a\x00b\xffc", []Clause{word("a"), word("b"), word("c")}},
		{"FTS5 syntax is words", `NEAR(a b ^title {x}:y`, []Clause{word("NEAR(a"), word("b"), word("^title"), word("{x}:y")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q, err := ParseQuery(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, q.Clauses, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ParseQuery(%q) (-want +got):\n%s", tc.q, diff)
			}
		})
	}
}

func TestParseQueryErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ q, msg string }{
		{"", "nothing to search for"},
		{"  \t", "nothing to search for"},
		{"title: -", "nothing to search for"},
		{`"`, "nothing to search for"},
		{"-live", "only excludes"},
		{"-a -year:1990", "only excludes"},
		{"year:abc", `not "abc"`},
		{"year:19x", "year: wants"},
		{"year:12345", "year: wants"},
		{"year:-", "year: wants"},
		{"year:1990-1980", "ends before it starts"},
		{"a -b OR c", "OR cannot join an excluded"},
		{"a OR -b", "OR cannot join an excluded"},
		{"year:1990 OR abba", "only with another year"},
		{strings.Repeat("a ", 33), "more than 32 terms"},
		{strings.Repeat("a", 513), "longer than 512 bytes"},
	} {
		_, err := ParseQuery(tc.q)
		var qe *QueryError
		if !errors.As(err, &qe) || qe.Query != tc.q || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseQuery(%q) = %v, want a *QueryError saying %q", tc.q, err, tc.msg)
		}
	}
	if _, err := ParseQuery(strings.Repeat("a ", 32)); err != nil {
		t.Errorf("32 terms: %v", err)
	}
}

func TestFTSExpr(t *testing.T) {
	t.Parallel()
	items := fts{columns: itemColumns(""), years: true}
	for _, tc := range []struct {
		name     string
		f        fts
		q        string
		pos, neg string
	}{
		{"prefixes", items, "bjo hom", `"bjo"* AND "hom"*`, ""},
		{"phrase and exclusion", items, `artist:"sigur ros" -live -genre:x`,
			`{artists album_artists} : "sigur ros"`, `"live"* OR genres : "x"*`},
		{"OR", items, "a OR title:b c", `("a"* OR title : "b"*) AND "c"*`, ""},
		{"years", items, "x year:1999-2000 -year:1995", `"x"* AND (year : "1999" OR year : "2000")`, `year : "1995"`},
		{"years left to SQL", fts{columns: itemColumns("")}, "x year:1999", `"x"*`, ""},
		{"title tier", fts{columns: itemColumns("title")}, "a album:b", `title : "a"* AND album : "b"*`, ""},
		{"names: any word", fts{columns: albumColumns, some: true}, "a OR b album:c title:d", `"a"* OR "b"* OR name : "c"*`, ""},
		{"artists", fts{columns: artistColumns}, "a albumartist:b genre:c", `"a"* AND "b"*`, ""},
	} {
		q, err := ParseQuery(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		pos, neg := tc.f.expr(q)
		if pos != tc.pos || neg != tc.neg {
			t.Errorf("%s: %q gives\n%s\n%s\nwant\n%s\n%s", tc.name, tc.q, pos, neg, tc.pos, tc.neg)
		}
	}
	// A quote can only reach a term through Query itself, but it would
	// still be one string.
	pos, _ := items.expr(Query{Clauses: []Clause{{Terms: []Term{{Text: `a" OR "b`}}}}})
	if want := `"a"" OR ""b"`; pos != want {
		t.Errorf("quotes: %s, want %s", pos, want)
	}
}

// openFuzz opens a small index for fuzzing, with a name and a year for
// every kind of term to match.
func openFuzz(tb testing.TB) *Index {
	tb.Helper()
	x, err := Open(tb.Context(), filepath.Join(tb.TempDir(), "index.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { x.Close() })
	r := withTags(song("Music", "Sigur Rós/Ágætis byrjun/01 Intro.flac", "Intro", "Ágætis byrjun", 1, 1999, "Sigur Rós"),
		func(t *probe.Tags) { t.AlbumArtists = []string{"Sigur Rós"}; t.Genres = []string{"Post-rock"} })
	if err := x.Apply(tb.Context(), &Batch{Puts: []Record{r, song("Music", "a b/c d.mp3", "a b", "c d", 1, 2000, "e f")}}); err != nil {
		tb.Fatal(err)
	}
	if err := x.Refresh(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	return x
}

// FuzzParseQuery checks that a query either is a *QueryError or parses
// into FTS5 expressions that SQLite runs without an error: every
// expression a search can build from it (the whole query, its tiers, the
// album and artist names) is run against a small index.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"bjo hom", `"sigur ros"`, `"sigur r`, `artist:"sigur ros" -live`, "year:1990-1999", "a OR b OR -c",
		`'; DROP TABLE items; --`, `" OR 1=1 --`, "NEAR(a b", "*", "^title", "title:", ")", "a AND", "{title}: x",
		"a\x00b", "\xff\xfe", `a"b"c"`, "-", "OR", "year:0", "year:-1999 x -y", "x year:1-9999",
	} {
		f.Add(s)
	}
	x := openFuzz(f)
	f.Fuzz(func(t *testing.T, s string) {
		ctx := t.Context()
		q, err := ParseQuery(s)
		if err != nil {
			var qe *QueryError
			if !errors.As(err, &qe) {
				t.Fatalf("ParseQuery(%q) = %v, not a *QueryError", s, err)
			}
			return
		}
		run := func(table, match string) {
			if match == "" {
				return
			}
			var n int
			if err := x.r.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE `+table+` MATCH ?`, match).Scan(&n); err != nil {
				t.Fatalf("%q: %s MATCH %q: %v", s, table, match, err)
			}
		}
		for _, years := range []bool{false, q.yearsFit()} {
			pos, neg := fts{columns: itemColumns(""), years: years}.expr(q)
			title, _ := fts{columns: itemColumns("title"), years: years}.expr(q)
			for _, e := range []string{pos, neg, butNot(pos, neg), butNot(title, neg), butNot(butNot(pos, title), neg)} {
				run("items_fts", e)
			}
		}
		for _, e := range nameTiers(q, albumColumns) {
			run("albums_fts", e)
		}
		for _, e := range nameTiers(q, artistColumns) {
			run("artists_fts", e)
		}
		if _, err := x.Search(ctx, s, Page{Limit: 5}); err != nil {
			t.Fatalf("Search(%q) = %v", s, err)
		}
	})
}
