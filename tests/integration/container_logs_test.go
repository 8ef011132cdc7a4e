//go:build integration

package integration

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestContainerLogsFollow: crictl logs -f prints what is in the log, then
// the lines the container writes afterwards, in order, none lost.
func TestContainerLogsFollow(t *testing.T) {
	h, podID, pod := containerPod(t)
	id := h.CreateContainer(podID, shellContainer("follow", "i=0; while true; do echo n=$i; i=$((i+1)); sleep 0.05; done"), pod)
	h.Crictl("start", id)
	var before int
	eventually(t, 10*time.Second, "first lines", func() (bool, string) {
		log := readLog(t, h, "follow")
		before = strings.Count(log, "\n")
		return before >= 5, log
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := h.crictlCmd(ctx, "logs", "-f", id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	// Lines from the file as it was when following began, then new ones:
	// 40 beyond that (two seconds of output) must arrive.
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	want := 0
	timeout := time.After(30 * time.Second)
	for want < before+40 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("crictl logs -f ended after n=%d; want it to follow", want-1)
			}
			n, err := strconv.Atoi(strings.TrimPrefix(line, "n="))
			if err != nil || n != want {
				t.Fatalf("crictl logs -f printed %q, want n=%d", line, want)
			}
			want++
		case <-timeout:
			t.Fatalf("crictl logs -f: got up to n=%d in 30s; the file had %d lines when it started", want-1, before)
		}
	}
	h.Crictl("rmp", "-f", podID)
}
