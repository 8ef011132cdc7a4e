// Package fuzzcorpus keeps a fuzz target's checked-in seed corpus
// (testdata/fuzz/<target>/, the files `go test` reads as seeds) in step
// with the seeds a test builds in code, for the fuzz tests of more than
// one package.
package fuzzcorpus

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// WriteEnv names the variable that makes Check rewrite the corpus instead
// of checking it: CRIB_WRITE_FUZZ_CORPUS=1 go test -run TestWriteFuzzCorpus.
const WriteEnv = "CRIB_WRITE_FUZZ_CORPUS"

// Check makes sure each seed in seeds (name -> message) is in
// testdata/fuzz/<target> as a corpus file whose first argument is the
// message's deterministic wire bytes, followed by the lines in extra (the
// target's other arguments, e.g. "uint8(0)"). With WriteEnv=1 it writes the
// files instead.
func Check(t *testing.T, target string, seeds map[string]proto.Message, extra ...string) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	write := os.Getenv(WriteEnv) == "1"
	for name, msg := range seeds {
		// Deterministic: maps in key order, so a seed's bytes are stable.
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
		for _, e := range extra {
			body += e + "\n"
		}
		path := filepath.Join(dir, "seed-"+strings.ReplaceAll(name, " ", "-"))
		if write {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != body {
			t.Errorf("seed %q is not in the corpus at %s (%s=1 go test -run TestWriteFuzzCorpus rewrites it): %v", name, path, WriteEnv, err)
		}
	}
}
