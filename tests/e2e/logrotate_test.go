//go:build e2e

package e2e

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// The chatty container writes rounds × perRound numbered lines of about
// 200 bytes, a round every half second (about 400 KB/s), then a last line.
const (
	rounds   = 30
	perRound = 1000
)

var chattyManifest = fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: chatty
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: chatty
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command:
    - sh
    - -c
    - |
      trap 'exit 0' TERM
      pad=%s
      i=0
      while [ $i -lt %d ]; do
        j=0
        while [ $j -lt %d ]; do echo "crib-e2e-line $i $j $pad"; j=$((j+1)); done
        i=$((i+1))
        sleep 0.5
      done
      echo crib-e2e-done
      sleep 3600 & wait
`, strings.Repeat("x", 170), rounds, perRound)

// TestLogRotation: kubelet rotates a chatty container's log at
// containerLogMaxSize (1Mi in the e2e kubelet config) by renaming it and
// asking cribd to ReopenContainerLog; every line the container wrote is in
// exactly one of the files, in order.
func TestLogRotation(t *testing.T) {
	e := startEnv(t)
	k := e.Kubelet
	k.WriteManifest("chatty", chattyManifest)
	pod := waitRunning(t, k, "chatty", 1)
	dir := filepath.Join(k.PodLogsDir, fmt.Sprintf("default_chatty-%s_%s", k.NodeName, pod.Metadata.UID), "chatty")

	// Done when the last line is written and 0.log is below the maximum
	// size (so kubelet rotates no more) with no compression in flight.
	var files []string
	eventually(t, 90*time.Second, "the last line is logged and rotation has settled", func() (bool, string) {
		files = logFiles(dir)
		cur, err := os.Stat(filepath.Join(dir, "0.log"))
		if err != nil {
			return false, err.Error()
		}
		if cur.Size() >= 1<<20 {
			return false, fmt.Sprintf("0.log has %d bytes", cur.Size())
		}
		for _, f := range files {
			if strings.HasSuffix(f, ".tmp") {
				return false, "in flight: " + f
			}
		}
		var last string // the newest line: in 0.log, or the newest non-empty file
		for i := len(files) - 1; i >= 0 && last == ""; i-- {
			if lines, err := readCRILog(files[i]); err == nil && len(lines) > 0 {
				last = lines[len(lines)-1]
			}
		}
		return last == "crib-e2e-done", fmt.Sprintf("files %v, last line %.40q", files, last)
	})
	if len(files) < 3 {
		t.Fatalf("%s: files %v, want at least 2 rotated ones (%d bytes written at 1Mi max size)", dir, files, rounds*perRound*200)
	}
	t.Logf("log files: %v", files)

	next := [2]int{0, 0} // the round and line expected next
	total := 0
	for _, f := range files {
		lines, err := readCRILog(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range lines {
			if !strings.HasPrefix(msg, "crib-e2e-line ") {
				continue
			}
			var i, j int
			if _, err := fmt.Sscanf(msg, "crib-e2e-line %d %d", &i, &j); err != nil {
				t.Fatalf("%s: cannot parse %q: %v", f, msg, err)
			}
			if [2]int{i, j} != next {
				t.Fatalf("%s: line %d %d follows %d lines; want %d %d (lost or repeated lines)", f, i, j, total, next[0], next[1])
			}
			total++
			if next[1]++; next[1] == perRound {
				next = [2]int{next[0] + 1, 0}
			}
		}
	}
	if total != rounds*perRound {
		t.Errorf("%d numbered lines across the files, want %d", total, rounds*perRound)
	}
}

// logFiles are a container's log files, oldest first: the rotated ones
// (named by a timestamp, then .gz once compressed), then 0.log.
func logFiles(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "0.log.*"))
	sort.Slice(files, func(i, j int) bool {
		return strings.TrimSuffix(files[i], ".gz") < strings.TrimSuffix(files[j], ".gz")
	})
	return append(files, filepath.Join(dir, "0.log"))
}

// readCRILog returns the messages of a CRI log file ("<time> <stream>
// <P|F> <msg>"), joining partial lines; a .gz file is decompressed.
func readCRILog(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	var out []string
	partial := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 4)
		if len(parts) < 4 {
			if len(parts) == 3 { // an empty message
				parts = append(parts, "")
			} else {
				return nil, fmt.Errorf("%s: not a CRI log line: %q", path, sc.Text())
			}
		}
		partial += parts[3]
		if parts[2] == "F" {
			out = append(out, partial)
			partial = ""
		}
	}
	return out, sc.Err()
}
