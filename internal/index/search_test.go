package index

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mustserv/internal/probe"
)

// BenchmarkSearch measures Search over a generated library of 100,000
// items (built once per run, which takes a while: it is not part of the
// tests) with a mix of 1,000 queries, and reports the latency
// percentiles of one query. Run it with
//
//	go test -run '^$' -bench Search -benchtime 5x ./internal/index/
func BenchmarkSearch(b *testing.B) {
	x, err := Open(b.Context(), filepath.Join(b.TempDir(), "index.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	g := newLibraryGen(1)
	start := time.Now()
	if err := g.fill(b, x, 100_000); err != nil {
		b.Fatal(err)
	}
	b.Logf("built an index of 100,000 items in %v", time.Since(start).Round(time.Millisecond))
	queries := g.queries(1000)
	var durs []time.Duration
	var results int
	for b.Loop() {
		for _, q := range queries {
			t := time.Now()
			r, err := x.Search(b.Context(), q, Page{})
			durs = append(durs, time.Since(t))
			if err != nil {
				b.Fatalf("%q: %v", q, err)
			}
			results += r.Total
		}
	}
	slices.Sort(durs)
	pct := func(p float64) float64 {
		return float64(durs[int(float64(len(durs)-1)*p)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(results)/float64(len(durs)), "hits/query")
}

// libraryGen generates a plausible music library: a vocabulary whose
// words are used with a Zipf distribution (a few very common words, many
// rare ones), some with diacritics, artists with several albums of about
// a dozen tracks each.
type libraryGen struct {
	rnd   *rand.Rand
	words []string
	zipf  *rand.Zipf
}

func newLibraryGen(seed uint64) *libraryGen {
	rnd := rand.New(rand.NewPCG(seed, seed))
	syll := []string{"ka", "lo", "mi", "ra", "sen", "to", "ber", "an", "el", "or", "va", "dun", "ri", "ma", "ne",
		"sø", "gö", "ré", "ú", "ja", "ki", "po", "lu", "stan", "mor", "ix", "ae", "ðu", "ål", "zé", "ch", "in", "ol"}
	g := &libraryGen{rnd: rnd}
	seen := map[string]bool{}
	for _, w := range []string{"the", "love", "of", "night", "you", "me", "in", "my", "live", "remix", "song", "heart"} {
		seen[w] = true
		g.words = append(g.words, w)
	}
	for len(g.words) < 8000 {
		var w strings.Builder
		for range 2 + rnd.IntN(3) {
			w.WriteString(syll[rnd.IntN(len(syll))])
		}
		if !seen[w.String()] {
			seen[w.String()] = true
			g.words = append(g.words, w.String())
		}
	}
	g.zipf = rand.NewZipf(rnd, 1.1, 2, uint64(len(g.words)-1))
	return g
}

func (g *libraryGen) word() string { return g.words[g.zipf.Uint64()] }

// phrase is n words, the first capitalised.
func (g *libraryGen) phrase(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = g.word()
	}
	ws[0] = strings.ToUpper(ws[0][:1]) + ws[0][1:]
	return strings.Join(ws, " ")
}

var genGenres = []string{"Rock", "Pop", "Jazz", "Électronique", "Hip-Hop", "Folk", "Metal", "Classical",
	"Blues", "Soul", "Reggae", "Punk", "Ambient", "Country", "Funk", "Disco", "Indie", "Música popular"}

// fill adds n items, in batches of 1,000, then refreshes the albums and
// artists.
func (g *libraryGen) fill(tb testing.TB, x *Index, n int) error {
	ctx := tb.Context()
	b := &Batch{}
	flush := func() error {
		err := x.Apply(ctx, b)
		b = &Batch{}
		return err
	}
	for made := 0; made < n; {
		artist := g.phrase(1 + g.rnd.IntN(3))
		if g.rnd.IntN(8) == 0 {
			artist = "The " + artist
		}
		for range 1 + g.rnd.IntN(5) {
			album := g.phrase(1 + g.rnd.IntN(3))
			year := 1950 + g.rnd.IntN(75)
			genre := genGenres[g.rnd.IntN(len(genGenres))]
			var albumArtists []string
			if g.rnd.IntN(10) < 7 {
				albumArtists = []string{artist}
			}
			dir := artist + "/" + album
			b.Folders = append(b.Folders, FolderRecord{Library: "Music", Path: dir, Cover: "cover.jpg"})
			for t := 1; t <= 8+g.rnd.IntN(7) && made < n; t++ {
				title := g.phrase(1 + g.rnd.IntN(4))
				artists := []string{artist}
				if g.rnd.IntN(10) == 0 {
					artists = append(artists, g.phrase(2))
				}
				tags := probe.Tags{Title: title, Artists: artists, Album: album, AlbumArtists: albumArtists,
					Track: t, Year: year, Genres: []string{genre}}
				if g.rnd.IntN(20) == 0 {
					tags = probe.Tags{} // untagged: found by its path only
				}
				p := fmt.Sprintf("%s/%02d %s.flac", dir, t, title)
				b.Puts = append(b.Puts, Record{Library: "Music", Path: p, Kind: "audio", Size: int64(1e6 + made),
					ModTime: time.Unix(1e9, 0), Report: &probe.Report{Container: "flac", Duration: 200, Tags: tags}})
				made++
				if len(b.Puts) >= 1000 {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return x.Refresh(ctx)
}

// queries returns n queries of the kinds people type: one or two letters
// (the first keystrokes), words, two words, fields, phrases, years,
// exclusions and ORs.
func (g *libraryGen) queries(n int) []string {
	qs := make([]string, 0, n)
	letters := "abcdefghijklmnoprstuvz"
	for i := range n {
		w := g.word()
		var q string
		switch i % 20 {
		case 0, 1, 2:
			j := g.rnd.IntN(len(letters))
			q = letters[j : j+1]
		case 3, 4, 5:
			q = prefix(w, 2)
		case 6, 7, 8, 9:
			q = w
		case 10, 11, 12:
			v := g.word()
			q = w + " " + prefix(v, 1+g.rnd.IntN(4))
		case 13:
			q = "artist:" + w
		case 14:
			q = []string{"album:", "title:", "genre:rock ", "albumartist:"}[g.rnd.IntN(4)] + w
		case 15:
			q = `"` + g.word() + " " + w + `"`
		case 16:
			y := 1950 + g.rnd.IntN(70)
			q = fmt.Sprintf("%s year:%d-%d", w, y, y+g.rnd.IntN(10))
		case 17:
			q = w + " -" + g.word()
		case 18:
			q = w + " OR " + g.word()
		case 19:
			q = "bjo" + []string{"", "rk", " ú", " sø"}[g.rnd.IntN(4)]
		}
		qs = append(qs, q)
	}
	return qs
}

// prefix is the first n characters of s.
func prefix(s string, n int) string {
	r := []rune(s)
	return string(r[:min(n, len(r))])
}
