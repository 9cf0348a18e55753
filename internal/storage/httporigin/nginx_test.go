package httporigin

import (
	"testing"

	"mustserv/internal/storage/storagetest"
	"mustserv/internal/testenv/origins"
)

// TestNginxConformance runs the storage conformance suite over nginx's
// JSON and HTML autoindex of the fixture tree.
func TestNginxConformance(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	origins.WriteTree(t, root, storagetest.Files())
	base := origins.StartNginx(t, root)
	for _, index := range []string{"json", "html"} {
		t.Run(index, func(t *testing.T) {
			t.Parallel()
			storagetest.Run(t, newBackend(t, base+"/"+index+"/", Options{}))
		})
	}
}
