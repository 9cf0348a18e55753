package storage

import (
	"errors"
	"io/fs"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, name := range []string{".", "a", "a/b", "a b/c#d?.mp3", "\xff.mp3", "日本/x"} {
		if err := ValidName("open", name); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "/", "/a", "a/", "a//b", "./a", "a/.", "a/./b", "..", "../a", "a/../b", "a/.."} {
		if err := ValidName("open", name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("ValidName(%q) = %v, want fs.ErrInvalid", name, err)
		}
	}
}
