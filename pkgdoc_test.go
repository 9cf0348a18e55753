package mustserv_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs checks that every package has exactly one package doc
// comment, saying what it provides and what it does not do (STYLE.md).
func TestPackageDocs(t *testing.T) {
	t.Parallel()
	docs := map[string][]string{} // dir → files with a package doc comment
	dirs := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		dirs[dir] = true
		if f.Doc != nil {
			docs[dir] = append(docs[dir], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("found no packages")
	}
	for dir := range dirs {
		switch n := len(docs[dir]); {
		case n == 0:
			t.Errorf("package %s has no doc comment", dir)
		case n > 1:
			t.Errorf("package %s has %d doc comments (%v); keep one", dir, n, docs[dir])
		}
	}
}
