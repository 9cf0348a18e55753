// Command genlib writes a generated music library for benchmarks: N small
// but valid MP3 files in Artist/Year - Album/NN Title.mp3 folders, about
// ten tracks an album and ten albums an artist, years 1960–2025, a few
// genres, titles from a vocabulary of about 2,000 words (common words
// often, rare ones seldom, so that searches find a few or thousands), some
// artists with diacritics (Björk, Sigur Rós, Mötley Crüe), guest artists
// (multi-valued TPE1), compilations by "Various Artists" with an artist per
// track, and a folder.jpg in some album folders.
//
// Each file is an ID3v2.4 tag (TIT2, TPE1, TALB, TPE2, TCON, TDRC, TRCK)
// and 36–44 real MPEG audio frames (about a second) copied from the
// probe's CBR fixture, so probers and players read tags and a duration.
// No two files have the same bytes: the index tells renames from copies by
// content, and no two tracks share album artist, album and track number.
// The same -seed writes the same files.
//
// usage: go run ./bench/genlib -n 100000 -out DIR [-seed 1]
// (from the repository's root, or with -mp3 naming the source of frames)
package main

import (
	"bytes"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

func main() {
	n := flag.Int("n", 1000, "number of audio files")
	out := flag.String("out", "", "`folder` to write the library into (created if missing)")
	seed := flag.Uint64("seed", 1, "random `seed`: the same seed writes the same files")
	src := flag.String("mp3", "internal/probe/testdata/mp3/cbr128-id3v23.mp3", "MP3 `file` whose audio frames are copied")
	flag.Parse()
	if *out == "" || *n <= 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: genlib -n N -out DIR [-seed S] [-mp3 FILE]")
		os.Exit(2)
	}
	start := time.Now()
	st, err := run(*out, *n, *seed, *src)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genlib:", err)
		os.Exit(1)
	}
	fmt.Printf("genlib: %d files (%d covers) in %d albums, %.1f MB, in %.1f s\n",
		st.files, st.covers, st.albums, float64(st.bytes)/1e6, time.Since(start).Seconds())
}

// stats count what run wrote.
type stats struct {
	files, covers, albums int
	bytes                 int64
}

// run writes a library of n files for seed into out.
func run(out string, n int, seed uint64, src string) (stats, error) {
	mp3, err := os.ReadFile(src)
	if err != nil {
		return stats{}, fmt.Errorf("read the source of audio frames: %w", err)
	}
	frames, err := mpegFrames(mp3)
	if err != nil {
		return stats{}, fmt.Errorf("%s: %w", src, err)
	}
	if len(frames) < maxFrames {
		return stats{}, fmt.Errorf("%s: %d audio frames; need %d", src, len(frames), maxFrames)
	}
	albums := plan(n, seed)
	return write(out, albums, frames)
}

// Frames per file: 36–44 (MPEG-1 Layer III, 1,152 samples each: about
// 0.94–1.15 s at 44.1 kHz), so that sizes and durations differ.
const (
	minFrames = 36
	maxFrames = 44
)

// album is one folder of the plan.
type album struct {
	dir    string // inside the library, slash-separated
	cover  bool   // has a folder.jpg
	hue    float64
	tracks []track
}

// track is one file of the plan and the tags written into it.
type track struct {
	name        string // file name in its album's folder
	title       string
	artists     []string
	album       string
	albumArtist string
	genres      []string
	year        int
	track       int
	tracks      int
	frames      int
}

//go:embed words.txt
var wordsTxt string

// famous artists, with the diacritics and punctuation that search and
// sorting must handle, and a genre each.
var famous = [][2]string{
	{"Björk", "Electronic"}, {"Sigur Rós", "Post-Rock"}, {"Mötley Crüe", "Metal"},
	{"Motörhead", "Metal"}, {"Beyoncé", "R&B"}, {"Blue Öyster Cult", "Rock"},
	{"Hüsker Dü", "Punk"}, {"Röyksopp", "Electronic"}, {"Ólafur Arnalds", "Classical"},
	{"Jóhann Jóhannsson", "Classical"}, {"Françoise Hardy", "Pop"}, {"Édith Piaf", "Chanson"},
	{"Antonín Dvořák", "Classical"}, {"Mø", "Pop"}, {"Emilíana Torrini", "Folk"},
	{"Zoë Keating", "Classical"}, {"Amadou & Mariam", "World"}, {"Céline Dion", "Pop"},
	{"Maxïmo Park", "Rock"}, {"Gilberto Gil", "World"}, {"Caetano Veloso", "World"},
	{"Mägo de Oz", "Metal"}, {"Sinéad O'Connor", "Pop"}, {"Ennio Morricone", "Soundtrack"},
	{"Nina Simone", "Jazz"}, {"Miles Davis", "Jazz"}, {"Kraftwerk", "Electronic"},
	{"The Beatles", "Rock"}, {"Fleetwood Mac", "Rock"}, {"Daft Punk", "Electronic"},
}

var genres = []string{
	"Rock", "Pop", "Jazz", "Electronic", "Hip-Hop", "Classical", "Folk", "Metal",
	"Blues", "Soul", "Reggae", "Country", "Ambient", "Punk", "Indie", "World",
}

var (
	firstNames = strings.Fields("John Mary James Anna Robert Linda Michael Sarah David Laura Peter Emma Paul Julia Mark " +
		"Nina Carlos María José Zoë Chloé Søren Åsa Björn Łukasz Jürgen François Renée Inés Ángel Noël Ada Leo Iris Otis Ray Etta " +
		"Marvin Aretha Joni Neil Patti Lou Iggy Kate Tori Fiona Elliott Nick Tom Jeff Thom Damon Jarvis Karen Kim Kurt Courtney")
	lastNames = strings.Fields("Smith Jones Taylor Brown Wilson Davies Evans Thomas Johnson Roberts Walker Wright " +
		"Müller Jiménez Núñez Åberg Dvořák García López Martín Pérez Sánchez Gómez Fernández Moreau Lefèvre Bérubé " +
		"Kowalski Nowak Novák Horváth Larsen Hansen Nielsen Öberg Lindqvist Rossi Russo Ferrari Esposito Romano " +
		"Cohen Levy Reed Young Cash Waits Simon Harris Cooper Parker Morrison Bowie Hendrix Joplin Mitchell")
)

// vocab is the title vocabulary, shuffled by seed, with a Zipf draw over
// it: the first words come up often, the last ones seldom.
type vocab struct {
	words []string
	zipf  *rand.Zipf
}

func newVocab(rng *rand.Rand) vocab {
	var words []string
	for line := range strings.Lines(wordsTxt) {
		if !strings.HasPrefix(line, "#") {
			words = append(words, strings.Fields(line)...)
		}
	}
	rng.Shuffle(len(words), func(i, j int) { words[i], words[j] = words[j], words[i] })
	return vocab{words: words, zipf: rand.NewZipf(rng, 1.1, 8, uint64(len(words)-1))}
}

// phrase returns lo to hi words in title case.
func (v vocab) phrase(rng *rand.Rand, lo, hi int) string {
	n := lo + rng.IntN(hi-lo+1)
	ws := make([]string, n)
	for i := range ws {
		ws[i] = titleCase(v.words[v.zipf.Uint64()])
	}
	return strings.Join(ws, " ")
}

func titleCase(w string) string {
	r, size := utf8.DecodeRuneInString(w)
	return string(unicode.ToUpper(r)) + w[size:]
}

// planner draws the library; everything random comes from its rng, in
// order, so that a seed always gives the same plan.
type planner struct {
	rng     *rand.Rand
	v       vocab
	artists []string          // every artist made so far
	genre   map[string]string // artist → main genre
	taken   map[string]bool   // artist names, and "album artist\x00album" pairs
}

// plan draws the albums of a library of n files.
func plan(n int, seed uint64) []album {
	rng := rand.New(rand.NewPCG(seed, 0x67656e6c6962))
	p := &planner{rng: rng, v: newVocab(rng), genre: map[string]string{}, taken: map[string]bool{}}
	var albums []album
	left := n
	for left > 0 {
		// Every other artist comes after a compilation (about one album
		// in twenty), once there are artists to compile.
		if len(p.artists) >= 5 && rng.IntN(2) == 0 {
			a := p.compilation(min(left, 8+rng.IntN(12)))
			albums = append(albums, a)
			left -= len(a.tracks)
			if left == 0 {
				break
			}
		}
		artist := p.newArtist()
		year := 1960 + rng.IntN(60)
		for range 3 + rng.IntN(15) {
			if left == 0 {
				break
			}
			a := p.album(artist, year, min(left, 6+rng.IntN(10)))
			albums = append(albums, a)
			left -= len(a.tracks)
			year = min(2025, year+1+rng.IntN(4))
		}
	}
	return albums
}

// newArtist returns a name not used before: the famous ones first, then
// made-up bands and people.
func (p *planner) newArtist() string {
	if i := len(p.artists); i < len(famous) {
		name := famous[i][0]
		p.add(name, famous[i][1])
		return name
	}
	for {
		var name string
		switch p.rng.IntN(5) {
		case 0, 1:
			name = "The " + p.v.phrase(p.rng, 1, 2)
		case 2:
			name = firstNames[p.rng.IntN(len(firstNames))] + " " + lastNames[p.rng.IntN(len(lastNames))]
		case 3:
			name = p.v.phrase(p.rng, 1, 1)
		default:
			name = p.v.phrase(p.rng, 1, 1) + " & the " + p.v.phrase(p.rng, 1, 1)
		}
		if !p.taken[name] {
			p.add(name, genres[p.rng.IntN(len(genres))])
			return name
		}
	}
}

func (p *planner) add(name, genre string) {
	p.taken[name] = true
	p.artists = append(p.artists, name)
	p.genre[name] = genre
}

// albumTitle returns a title the album artist has not used.
func (p *planner) albumTitle(albumArtist string) string {
	for {
		t := p.v.phrase(p.rng, 1, 3)
		if k := albumArtist + "\x00" + t; !p.taken[k] {
			p.taken[k] = true
			return t
		}
	}
}

// guest returns an artist other than not.
func (p *planner) guest(not string) string {
	for {
		if g := p.artists[p.rng.IntN(len(p.artists))]; g != not {
			return g
		}
	}
}

func (p *planner) album(artist string, year, n int) album {
	title := p.albumTitle(artist)
	gs := []string{p.genre[artist]}
	if p.rng.IntN(10) == 0 {
		if g := genres[p.rng.IntN(len(genres))]; g != gs[0] {
			gs = append(gs, g)
		}
	}
	a := album{dir: safe(artist) + "/" + fmt.Sprintf("%d - %s", year, safe(title)), cover: p.rng.IntN(5) == 0, hue: p.rng.Float64()}
	for i := range n {
		artists := []string{artist}
		if len(p.artists) > 1 && p.rng.IntN(20) == 0 { // a guest: "A feat. B"
			artists = append(artists, p.guest(artist))
		}
		a.tracks = append(a.tracks, p.track(i+1, n, artists, title, artist, gs, year))
	}
	return a
}

func (p *planner) compilation(n int) album {
	const va = "Various Artists"
	title := p.albumTitle(va)
	year := 1960 + p.rng.IntN(66)
	a := album{dir: va + "/" + fmt.Sprintf("%d - %s", year, safe(title)), cover: p.rng.IntN(3) == 0, hue: p.rng.Float64()}
	for i := range n {
		artist := p.artists[p.rng.IntN(len(p.artists))]
		artists := []string{artist}
		if p.rng.IntN(10) == 0 {
			artists = append(artists, p.guest(artist))
		}
		a.tracks = append(a.tracks, p.track(i+1, n, artists, title, va, []string{p.genre[artist]}, year))
	}
	return a
}

func (p *planner) track(num, of int, artists []string, album, albumArtist string, gs []string, year int) track {
	title := p.v.phrase(p.rng, 1, 4)
	return track{
		name:  fmt.Sprintf("%02d %s.mp3", num, safe(title)),
		title: title, artists: artists, album: album, albumArtist: albumArtist,
		genres: gs, year: year, track: num, tracks: of,
		frames: minFrames + p.rng.IntN(maxFrames-minFrames+1),
	}
}

// safe makes a name usable as a file name on every common filesystem.
func safe(name string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(`/\:*?"<>|`, r) {
			return '_'
		}
		return r
	}, name)
}

// write writes the albums into out, a few folders at a time: the work is
// creating small files, which the kernel does in parallel.
func write(out string, albums []album, frames [][]byte) (stats, error) {
	work := make(chan album)
	var mu sync.Mutex
	var st stats
	var errs []error
	var wg sync.WaitGroup
	for range max(4, 2*runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			var buf []byte
			for a := range work {
				s, err := writeAlbum(filepath.Join(out, filepath.FromSlash(a.dir)), a, frames, &buf)
				mu.Lock()
				st.files += s.files
				st.covers += s.covers
				st.bytes += s.bytes
				st.albums++
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	for _, a := range albums {
		mu.Lock()
		failed := len(errs) > 0
		mu.Unlock()
		if failed {
			break
		}
		work <- a
	}
	close(work)
	wg.Wait()
	return st, errors.Join(errs...)
}

func writeAlbum(dir string, a album, frames [][]byte, buf *[]byte) (stats, error) {
	var st stats
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, err
	}
	for _, t := range a.tracks {
		b := appendID3(*buf, t)
		for _, f := range frames[:t.frames] {
			b = append(b, f...)
		}
		*buf = b[:0]
		if err := os.WriteFile(filepath.Join(dir, t.name), b, 0o644); err != nil {
			return st, err
		}
		st.files++
		st.bytes += int64(len(b))
	}
	if a.cover {
		b, err := coverJPEG(a.hue)
		if err != nil {
			return st, err
		}
		if err := os.WriteFile(filepath.Join(dir, "folder.jpg"), b, 0o644); err != nil {
			return st, err
		}
		st.covers++
		st.bytes += int64(len(b))
	}
	return st, nil
}

// appendID3 appends an ID3v2.4 tag of t's tags to b. Text is UTF-8
// (encoding 3); several values of one frame are separated by NUL, as
// v2.4 says (section 4.2 of id3v2.4.0-frames).
func appendID3(b []byte, t track) []byte {
	start := len(b)
	b = append(b, "ID3\x04\x00\x00\x00\x00\x00\x00"...) // size filled in below
	frame := func(id string, vals ...string) {
		text := strings.Join(vals, "\x00")
		b = append(b, id...)
		b = appendSyncsafe(b, 1+len(text))
		b = append(b, 0, 0, 3) // no flags; UTF-8
		b = append(b, text...)
	}
	frame("TIT2", t.title)
	frame("TPE1", t.artists...)
	frame("TALB", t.album)
	frame("TPE2", t.albumArtist)
	frame("TCON", t.genres...)
	frame("TDRC", fmt.Sprint(t.year))
	frame("TRCK", fmt.Sprintf("%d/%d", t.track, t.tracks))
	size := appendSyncsafe(nil, len(b)-start-10)
	copy(b[start+6:], size)
	return b
}

// appendSyncsafe appends n as ID3's 4-byte syncsafe integer: 7 bits a
// byte, so that no 0xFF of a size looks like an MPEG frame sync.
func appendSyncsafe(b []byte, n int) []byte {
	return append(b, byte(n>>21&0x7f), byte(n>>14&0x7f), byte(n>>7&0x7f), byte(n&0x7f))
}

// mpegFrames returns the MPEG-1 Layer III frames of an MP3 file: after its
// ID3v2 tag, without the encoder's Xing/Info frame (it states the frame
// count of the whole source, which a file of 40 frames must not claim),
// up to the ID3v1 tag or the end.
func mpegFrames(b []byte) ([][]byte, error) {
	if len(b) >= 10 && string(b[:3]) == "ID3" {
		n := 10 + (int(b[6]&0x7f)<<21 | int(b[7]&0x7f)<<14 | int(b[8]&0x7f)<<7 | int(b[9]&0x7f))
		if b[5]&0x10 != 0 {
			n += 10 // footer
		}
		if n > len(b) {
			return nil, errors.New("ID3v2 tag longer than the file")
		}
		b = b[n:]
	}
	b = bytes.TrimLeft(b, "\x00") // padding some taggers leave after the tag
	var frames [][]byte
	for len(b) >= 4 {
		n := frameLen(b)
		if n == 0 || n > len(b) {
			break
		}
		if f := b[:n]; !bytes.Contains(f[:min(n, 64)], []byte("Xing")) && !bytes.Contains(f[:min(n, 64)], []byte("Info")) {
			frames = append(frames, f)
		}
		b = b[n:]
	}
	if len(frames) == 0 {
		return nil, errors.New("no MPEG-1 Layer III frames")
	}
	return frames, nil
}

// frameLen returns the length of the MPEG-1 Layer III frame whose header
// starts b, or 0 if b does not start one.
func frameLen(b []byte) int {
	if b[0] != 0xff || b[1]&0xfe != 0xfa { // sync, MPEG-1, Layer III
		return 0
	}
	kbps := [16]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0}[b[2]>>4]
	rate := [4]int{44100, 48000, 32000, 0}[b[2]>>2&3]
	if kbps == 0 || rate == 0 {
		return 0
	}
	return 144*kbps*1000/rate + int(b[2]>>1&1)
}

// coverJPEG returns a small JPEG: a diagonal gradient around a hue.
func coverJPEG(hue float64) ([]byte, error) {
	const size = 64
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for y := range size {
		for x := range size {
			img.Set(x, y, hsv(hue+float64(x+y)/(8*size), 0.6, 0.5+float64(y)/(2*size)))
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// hsv converts a colour from hue (turns), saturation and value, all 0–1.
func hsv(h, s, v float64) color.RGBA {
	h = (h - float64(int(h))) * 6
	i := int(h)
	f := h - float64(i)
	p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
	r, g, b := [6]float64{v, q, p, p, t, v}[i], [6]float64{t, v, v, q, p, p}[i], [6]float64{p, p, t, v, v, q}[i]
	return color.RGBA{uint8(r * 255), uint8(g * 255), uint8(b * 255), 255}
}
