package index

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The query language, as a user of a music server types it:
//
//	bjo hom            every word must match, each as a prefix ("bjo" finds Björk)
//	"sigur ros"        a phrase; an unclosed quote runs to the end (and its last word is a prefix)
//	artist:bjork       a field: artist (track or album artist), albumartist, album, title, genre, path;
//	artist:"sigur ros" with a word or a phrase
//	year:1997          the year, or a range: year:1990-1999, year:1990-, year:-1999
//	-live -genre:rock  excludes (a word excludes every word it starts)
//	bjork OR sigur     either term (OR in capitals, between two terms; a chain of ORs is one group)
//
// Letters and digits make words; everything else separates them, so
// "ac/dc" is the phrase "ac dc" and a word with an unknown field such as
// "12:30" is just words. Case and diacritics never matter (the tokenizer
// folds them). A field with nothing after it ("title:"), a lone "-" and
// an OR with nothing on one side are ignored: that is what a query looks
// like while it is being typed.
//
// A query is a *QueryError when it is empty, only excludes, has a year
// that is neither a year nor a range, joins an exclusion or a year with
// something else by OR, or has more than maxQueryTerms terms or
// maxQueryBytes bytes.

// Limits on a query: beyond them a query is a *QueryError, so that one
// request cannot make the index do unbounded work.
const (
	maxQueryBytes = 512
	maxQueryTerms = 32
)

// Query is a parsed search query: every clause must hold.
type Query struct {
	Clauses []Clause
}

// Clause is one condition of a query: one of its terms must match (they
// were joined by OR) or, when Not, its term must not.
type Clause struct {
	Not   bool
	Terms []Term
}

// Term is a word, a phrase or a year range, perhaps restricted to a field.
type Term struct {
	// Field is "" (any), "artist", "albumartist", "album", "title",
	// "genre", "path" or "year".
	Field string
	// Text is the word or phrase as typed (not for "year").
	Text string
	// Prefix: the last word of Text may be the beginning of a longer
	// one (bare words and unclosed phrases).
	Prefix bool
	// From and To bound a "year" term, inclusive.
	From, To int
}

// isField says whether a user may type s (in lower case) before a colon.
func isField(s string) bool {
	switch s {
	case "artist", "albumartist", "album", "title", "genre", "path", "year":
		return true
	}
	return false
}

// ParseQuery parses a user's query (see the language above). Its error is
// a *QueryError.
func ParseQuery(s string) (Query, error) {
	bad := func(format string, a ...any) (Query, error) {
		return Query{}, &QueryError{Query: s, Msg: fmt.Sprintf(format, a...)}
	}
	if len(s) > maxQueryBytes {
		return bad("the query is longer than %d bytes", maxQueryBytes)
	}
	var q Query
	terms := 0
	or := false // an OR waits for its right-hand term
	lx := lexer{s: clean(s)}
	for {
		tok, ok := lx.next()
		if !ok {
			break
		}
		if tok.or {
			// A leading OR, or one after another OR, has no left side yet.
			or = len(q.Clauses) > 0
			continue
		}
		t, err := tok.term()
		if err != nil {
			return bad("%s", err)
		}
		if t == nil {
			continue
		}
		if terms++; terms > maxQueryTerms {
			return bad("the query has more than %d terms", maxQueryTerms)
		}
		if or {
			or = false
			last := &q.Clauses[len(q.Clauses)-1]
			if tok.not || last.Not {
				return bad("OR cannot join an excluded (-) term")
			}
			if (t.Field == "year") != (last.Terms[0].Field == "year") {
				return bad("year: can be joined by OR only with another year:")
			}
			last.Terms = append(last.Terms, *t)
			continue
		}
		q.Clauses = append(q.Clauses, Clause{Not: tok.not, Terms: []Term{*t}})
	}
	if len(q.Clauses) == 0 {
		return bad("the query has nothing to search for")
	}
	for _, c := range q.Clauses {
		if !c.Not {
			return q, nil
		}
	}
	return bad("the query only excludes (-): say what to search for too")
}

// clean turns what cannot be part of a word into spaces: invalid UTF-8
// (the tokenizer's idea of it is not ours), NUL (it ends an FTS5 string
// early: "unterminated string") and other control characters.
func clean(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || unicode.IsControl(r) {
			r = ' '
		}
		b.WriteRune(r)
		i += n
	}
	return b.String()
}

// lexer splits a cleaned query into tokens.
type lexer struct {
	s string
	i int
}

// token is one term of a query as typed, or an OR.
type token struct {
	or     bool
	not    bool
	field  string
	text   string
	quoted bool
	closed bool // the quote was closed
}

func (lx *lexer) next() (token, bool) {
	for {
		lx.skipSpace()
		if lx.i >= len(lx.s) {
			return token{}, false
		}
		var tok token
		if lx.s[lx.i] == '-' {
			tok.not = true
			lx.i++
			if lx.i >= len(lx.s) || isSpace(lx.s[lx.i:]) {
				continue // a lone "-": the user has not typed the term yet
			}
		}
		if lx.s[lx.i] == '"' {
			tok.text, tok.closed = lx.phrase()
			tok.quoted = true
			return tok, true
		}
		start := lx.i
		for lx.i < len(lx.s) && lx.s[lx.i] != '"' && !isSpace(lx.s[lx.i:]) {
			_, n := utf8.DecodeRuneInString(lx.s[lx.i:])
			lx.i += n
		}
		word := lx.s[start:lx.i]
		if word == "OR" && !tok.not {
			tok.or = true
			return tok, true
		}
		if k := strings.IndexByte(word, ':'); k > 0 && isField(strings.ToLower(word[:k])) {
			tok.field = strings.ToLower(word[:k])
			word = word[k+1:]
			if word == "" && lx.i < len(lx.s) && lx.s[lx.i] == '"' {
				tok.text, tok.closed = lx.phrase()
				tok.quoted = true
				return tok, true
			}
		}
		tok.text = word
		return tok, true
	}
}

// phrase reads a quoted phrase at lx.i, up to its closing quote or the end.
func (lx *lexer) phrase() (text string, closed bool) {
	lx.i++ // the opening quote
	end := strings.IndexByte(lx.s[lx.i:], '"')
	if end < 0 {
		text, lx.i = lx.s[lx.i:], len(lx.s)
		return text, false
	}
	text = lx.s[lx.i : lx.i+end]
	lx.i += end + 1
	return text, true
}

func (lx *lexer) skipSpace() {
	for lx.i < len(lx.s) && isSpace(lx.s[lx.i:]) {
		_, n := utf8.DecodeRuneInString(lx.s[lx.i:])
		lx.i += n
	}
}

func isSpace(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

// term turns a token into a term: nil when it has nothing to match (no
// letter or digit: FTS5 would take it as an empty phrase, which matches
// no row and would empty the whole result).
func (tok token) term() (*Term, error) {
	if tok.field == "year" {
		return yearTerm(tok.text)
	}
	if !hasWord(tok.text) {
		return nil, nil
	}
	return &Term{Field: tok.field, Text: tok.text, Prefix: !tok.quoted || !tok.closed}, nil
}

// yearTerm parses "1997", "1990-1999", "1990-" or "-1999". An open lower
// bound starts at 1: year 0 is a file without one.
func yearTerm(s string) (*Term, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	bad := fmt.Errorf("year: wants a year or a range such as 1990-1999, not %q", s)
	from, to, isRange := strings.Cut(s, "-")
	if !isRange {
		to = from
	}
	if from == "" && to == "" {
		return nil, bad
	}
	num := func(s string, open int) (int, error) {
		if s == "" {
			return open, nil
		}
		if len(s) > 4 || strings.Trim(s, "0123456789") != "" {
			return 0, bad
		}
		return strconv.Atoi(s)
	}
	f, err := num(from, 1)
	if err != nil {
		return nil, err
	}
	l, err := num(to, 9999)
	if err != nil {
		return nil, err
	}
	if f > l {
		return nil, fmt.Errorf("year: the range %s ends before it starts", s)
	}
	return &Term{Field: "year", From: f, To: l}, nil
}

// hasWord says whether s holds something the tokenizer (unicode61) makes
// a token of: a letter, a digit, or a private-use character.
func hasWord(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Co, r) {
			return true
		}
	}
	return false
}

// fts is how a query becomes an FTS5 expression: which columns each field
// searches, and whether the query's clauses must all match (items) or
// some of them (names, ranked by how many do).
type fts struct {
	// columns gives the column filter of a field ("" for all columns);
	// false leaves the field's terms out.
	columns func(field string) (string, bool)
	some    bool
	// years puts the year terms in the expression, as alternatives of
	// the year column (see Query.yearsFit); otherwise they are left out.
	years bool
}

// itemColumns returns items_fts's columns for each field, with words of
// no field searching unfielded ("" for every column).
func itemColumns(unfielded string) func(field string) (string, bool) {
	return func(field string) (string, bool) {
		switch field {
		case "":
			return unfielded, true
		case "artist":
			return "{artists album_artists}", true
		case "albumartist":
			return "album_artists", true
		case "genre":
			return "genres", true
		case "album", "title", "path":
			return field, true
		}
		return "", false
	}
}

// expr returns the FTS5 expression rows must match (pos) and the one
// they must not (neg), either "" when the query has no such terms. They
// are separate because FTS5's NOT needs a left side (a query of years and
// exclusions leaves the exclusion to SQL) and because a search may narrow
// pos to some columns but never neg.
//
// Every word or phrase of the user's goes in as one FTS5 string, quoted
// with its quotes doubled: the user's text can never be an operator, a
// column name or anything else of the FTS5 syntax.
func (f fts) expr(q Query) (pos, neg string) {
	var ps, ns []string
	for _, c := range q.Clauses {
		var alts []string
		for _, t := range c.Terms {
			if t.Field == "year" {
				for y := t.From; f.years && y <= t.To; y++ {
					alts = append(alts, `year : "`+strconv.Itoa(y)+`"`)
				}
				continue
			}
			col, ok := f.columns(t.Field)
			if !ok {
				continue
			}
			e := `"` + strings.ReplaceAll(t.Text, `"`, `""`) + `"`
			if t.Prefix {
				e += "*"
			}
			if col != "" {
				e = col + " : " + e
			}
			alts = append(alts, e)
		}
		switch {
		case len(alts) == 0:
		case c.Not:
			ns = append(ns, alts...)
		case f.some:
			ps = append(ps, alts...)
		case len(alts) == 1:
			ps = append(ps, alts[0])
		default:
			ps = append(ps, "("+strings.Join(alts, " OR ")+")")
		}
	}
	op := " AND "
	if f.some {
		op = " OR "
	}
	return strings.Join(ps, op), strings.Join(ns, " OR ")
}

// butNot is the FTS5 expression of rows matching a but not b.
func butNot(a, b string) string {
	if b == "" || a == "" {
		return a
	}
	return "(" + a + ") NOT (" + b + ")"
}

// maxFTSYears is the most years a query's year terms may span for them to
// be matched in items_fts (one FTS5 alternative a year).
const maxFTSYears = 100

// yearsFit says whether the query's year terms can be matched in
// items_fts: its year column holds the item's year, or nothing when it
// is 0, so a range that spans 0 or too many years is left to SQL.
// Matching them there lets FTS5 narrow a search before any row of items
// is read: "the year:2015" reads the few rows of 2015, not every "the".
func (q Query) yearsFit() bool {
	n := 0
	for _, c := range q.Clauses {
		for _, t := range c.Terms {
			if t.Field != "year" {
				continue
			}
			if t.From < 1 {
				return false
			}
			n += t.To - t.From + 1
		}
	}
	return n <= maxFTSYears
}

// years returns the SQL condition the query's year terms put on a column
// (with its arguments), or "" when it has none. The SQL holds only
// placeholders: the numbers are arguments.
func (q Query) years(col string) (string, []any) {
	var conds []string
	var args []any
	for _, c := range q.Clauses {
		if c.Terms[0].Field != "year" {
			continue
		}
		var alts []string
		for _, t := range c.Terms {
			alts = append(alts, col+" BETWEEN ? AND ?")
			args = append(args, t.From, t.To)
		}
		cond := "(" + strings.Join(alts, " OR ") + ")"
		if c.Not {
			cond = "NOT " + cond
		}
		conds = append(conds, cond)
	}
	return strings.Join(conds, " AND "), args
}
