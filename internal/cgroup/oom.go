package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/cgroups/fscommon"
	"golang.org/x/sys/unix"
)

// OOMWatch follows one cgroup v2 directory until its processes are gone,
// recording whether the kernel's OOM killer killed any of them.
//
// libcontainer's own v2 watcher (NotifyOOM) stops at the first change of
// cgroup.events that says the cgroup is empty, without reading
// memory.events again. The kernel rate-limits a cgroup file's
// notifications to one per 10 ms, so the oom_kill notification can come
// after the empty one, and be lost; and under the systemd driver systemd
// removes an empty scope's cgroup at once, so a read after the container's
// init is reaped finds no memory.events at all. OOMWatch reads
// memory.events at every notification of either file, the last one
// included, which the kernel sends after it counted the kill.
type OOMWatch struct {
	f      *os.File
	dir    string
	killed chan struct{} // closed when an OOM kill is seen
	done   chan struct{} // closed when the watch ends
}

// WatchOOMKills starts watching dir, a cgroup v2 directory. It reads
// memory.events once before returning, so kills counted before the watch
// began are seen too.
func WatchOOMKills(dir string) (*OOMWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watch %s for OOM kills: inotify: %w", dir, err)
	}
	// Non-blocking, so reads go through the runtime's poller and Stop's
	// Close wakes a read in progress.
	f := os.NewFile(uintptr(fd), "inotify")
	for _, name := range []string{"memory.events", "cgroup.events"} {
		if _, err := unix.InotifyAddWatch(fd, filepath.Join(dir, name), unix.IN_MODIFY); err != nil {
			f.Close()
			return nil, fmt.Errorf("watch %s: %w", filepath.Join(dir, name), err)
		}
	}
	w := &OOMWatch{f: f, dir: dir, killed: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w, nil
}

// loop reads memory.events and cgroup.events once at start and again at
// each notification, until a kill is seen, the cgroup is empty or gone, or
// Stop.
func (w *OOMWatch) loop() {
	defer close(w.done)
	defer w.f.Close()
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		if n, err := fscommon.GetValueByKey(w.dir, "memory.events", "oom_kill"); err == nil && n > 0 {
			close(w.killed)
			return
		}
		if populated, err := fscommon.GetValueByKey(w.dir, "cgroup.events", "populated"); err != nil || populated == 0 {
			return
		}
		// Which file changed does not matter: both are read again.
		if _, err := w.f.Read(buf); err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// Killed reports whether an OOM kill was seen so far.
func (w *OOMWatch) Killed() bool {
	select {
	case <-w.killed:
		return true
	default:
		return false
	}
}

// Done is closed when the watch has ended: a kill was seen, the cgroup
// became empty or went away, or Stop was called.
func (w *OOMWatch) Done() <-chan struct{} { return w.done }

// Stop ends the watch and waits for it to end.
func (w *OOMWatch) Stop() {
	w.f.Close()
	<-w.done
}
