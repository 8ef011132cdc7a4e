package image

import (
	"fmt"
	"strings"
	"testing"

	"go.podman.io/image/v5/pkg/blobinfocache"
)

// TestMemoryBlobInfoCache: the systemContext every pull and import uses
// gets c/image's memory-only blob-info cache, not the SQLite one.
func TestMemoryBlobInfoCache(t *testing.T) {
	s := &Service{}
	sys, err := s.systemContext(Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if typ := fmt.Sprintf("%T", blobinfocache.DefaultCache(sys)); !strings.Contains(typ, "memory") {
		t.Errorf("blob-info cache for %q is %s, want the memory-only one", sys.BlobInfoCacheDir, typ)
	}
}
