package stdio

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	shimapi "github.com/crib-runtime/crib/api/shim"
)

// readAll reads r to EOF, failing the test if that takes over 10 s.
func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	select {
	case s := <-done:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no EOF after 10s")
		return ""
	}
}

func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// TestOutputHubFanOut: every session gets every byte written while it is
// attached, and EOF when the stream ends; a session added after the end
// gets EOF at once.
func TestOutputHubFanOut(t *testing.T) {
	h := newOutputHub("c")
	r1, w1 := pipe(t)
	r2, w2 := pipe(t)
	h.add(w1)
	h.add(w2)
	for _, s := range []string{"hello ", "world\n"} {
		if _, err := h.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	h.close()
	for i, r := range []*os.File{r1, r2} {
		if got := readAll(t, r); got != "hello world\n" {
			t.Errorf("session %d got %q", i, got)
		}
	}
	r3, w3 := pipe(t)
	h.add(w3)
	if got := readAll(t, r3); got != "" {
		t.Errorf("late session got %q, want EOF", got)
	}
}

// TestOutputHubCutsOffSlowSession: a session that does not read never
// blocks the writer; once too far behind it is dropped, and its reader
// sees EOF after what was queued. A session that reads keeps everything.
func TestOutputHubCutsOffSlowSession(t *testing.T) {
	h := newOutputHub("c")
	slowR, slowW := pipe(t)
	fastR, fastW := pipe(t)
	h.add(slowW)
	h.add(fastW)
	var fastRead atomic.Int64
	fast := make(chan struct{})
	go func() {
		defer close(fast)
		buf := make([]byte, 64<<10)
		for {
			n, err := fastR.Read(buf)
			fastRead.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	total := 0
	for total <= 2*shimapi.MaxAttachBacklog {
		if _, err := h.Write(chunk); err != nil {
			t.Fatal(err)
		}
		total += len(chunk)
		// The reading session keeps up (within a quarter of the backlog
		// limit), however the machine schedules its reader; the other
		// session's backlog only grows.
		deadline := time.Now().Add(10 * time.Second)
		for int64(total)-fastRead.Load() > shimapi.MaxAttachBacklog/4 {
			if time.Now().After(deadline) {
				t.Fatalf("reading session stuck at %d of %d bytes", fastRead.Load(), total)
			}
			runtime.Gosched()
		}
	}
	h.mu.Lock()
	left := len(h.subs)
	h.mu.Unlock()
	if left != 1 {
		t.Errorf("%d sessions attached after the slow one fell behind, want 1", left)
	}
	h.close()
	if n := len(readAll(t, slowR)); n >= total {
		t.Errorf("slow session read %d bytes of %d: it was not cut off", n, total)
	}
	select {
	case <-fast:
		if got := fastRead.Load(); got != int64(total) {
			t.Errorf("reading session read %d bytes, want all %d", got, total)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reading session got no EOF")
	}
}

// TestAttachStdin: a session's input reaches the container's stdin. When
// the session closes its input, a stdin_once container's stdin is closed
// and the session's output stays; otherwise the container's stdin stays
// open and the session's output ends.
func TestAttachStdin(t *testing.T) {
	for _, tc := range []struct {
		name      string
		stdinOnce bool
	}{{"stdin", false}, {"stdin_once", true}} {
		t.Run(tc.name, func(t *testing.T) {
			procIn, shimIn := pipe(t) // the container reads procIn
			cio := &IO{id: "c", hasStdin: true, stdinOnce: tc.stdinOnce, out: newOutputHub("c"), errOut: newOutputHub("c"), stdin: shimIn}
			files, err := cio.Attach(&shimapi.AttachRequest{ID: "c", Stdin: true, Stdout: true})
			if err != nil {
				t.Fatal(err)
			}
			sessIn, sessOut := files[0], files[1]
			defer sessOut.Close()
			if _, err := sessIn.Write([]byte("hi\n")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 3)
			if _, err := io.ReadFull(procIn, buf); err != nil || string(buf) != "hi\n" {
				t.Fatalf("container read %q, %v", buf, err)
			}
			sessIn.Close()
			if tc.stdinOnce {
				if got := readAll(t, procIn); got != "" {
					t.Errorf("container read %q after the session's input closed", got)
				}
				// The output still reaches the session.
				_, _ = cio.out.Write([]byte("bye"))
				cio.out.close()
				if got := readAll(t, sessOut); got != "bye" {
					t.Errorf("session output %q, want bye", got)
				}
				return
			}
			if got := readAll(t, sessOut); got != "" {
				t.Errorf("session output %q, want EOF", got)
			}
			if cio.input() == nil {
				t.Error("container stdin closed after a session without stdin_once ended")
			}
		})
	}
}

// TestAttachRefusals: stdin on a container without it, stderr on a
// terminal.
func TestAttachRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		cio  *IO
		req  shimapi.AttachRequest
		want string
	}{
		{"stdin without stdin", &IO{id: "c", out: newOutputHub("c"), errOut: newOutputHub("c")}, shimapi.AttachRequest{Stdin: true, Stdout: true}, "not created with stdin"},
		{"stderr with tty", &IO{id: "c", tty: true, out: newOutputHub("c")}, shimapi.AttachRequest{Stdout: true, Stderr: true}, "no separate stderr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cio.Attach(&tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("attach: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
