package sandbox

import (
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"

	shimapi "github.com/crib-runtime/crib/api/shim"
)

// EventType is a container lifecycle event, as kubelet's evented PLEG
// reads them.
type EventType int

// Container events.
const (
	EventCreated EventType = iota
	EventStarted
	EventStopped
	EventDeleted
)

// Event is one container lifecycle event.
type Event struct {
	Type        EventType
	ContainerID string
	PodID       string
	At          time.Time
}

// eventBuffer is each subscriber's backlog; a reader that falls further
// behind loses events (counted and logged) rather than stall cribd.
const eventBuffer = 1024

// events fans container events out to subscribers, and learns of exits by
// watching the state files the shims write.
type events struct {
	log     logrus.FieldLogger
	watcher *fsnotify.Watcher

	mu      sync.Mutex
	subs    map[int]chan Event
	next    int
	dropped uint64
	stopped map[string]bool // containers whose exit was published
}

func newEvents(log logrus.FieldLogger) (*events, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return &events{log: log, watcher: w, subs: map[int]chan Event{}, stopped: map[string]bool{}}, nil
}

// SubscribeEvents returns a channel of container events and a function
// that ends the subscription.
func (m *Manager) SubscribeEvents() (<-chan Event, func()) {
	e := m.events
	ch := make(chan Event, eventBuffer)
	e.mu.Lock()
	id := e.next
	e.next++
	e.subs[id] = ch
	e.mu.Unlock()
	return ch, func() {
		e.mu.Lock()
		delete(e.subs, id)
		e.mu.Unlock()
	}
}

func (m *Manager) publish(t EventType, rec ContainerView) {
	e := m.events
	ev := Event{Type: t, ContainerID: rec.ID, PodID: rec.PodID, At: time.Now()}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch t {
	case EventStopped:
		if e.stopped[rec.ID] {
			return
		}
		e.stopped[rec.ID] = true
	case EventDeleted:
		delete(e.stopped, rec.ID)
	}
	e.sendLocked(ev)
}

// publishPod publishes an event of the pod itself, which carries the pod's
// ID as its container ID (the pause container's, as kubelet's evented PLEG
// reads a sandbox's events).
func (m *Manager) publishPod(t EventType, podID string) {
	e := m.events
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sendLocked(Event{Type: t, ContainerID: podID, PodID: podID, At: time.Now()})
}

// sendLocked hands ev to every subscriber; the caller holds e.mu.
func (e *events) sendLocked(ev Event) {
	for _, ch := range e.subs {
		select {
		case ch <- ev:
		default:
			e.dropped++
			e.log.WithField("container", ev.ContainerID).Warnf("event subscriber too slow: dropped an event (%d so far)", e.dropped)
		}
	}
}

// watchContainer follows the state file of container c (its shim's
// directory for it), and publishes its exit if it already happened.
func (m *Manager) watchContainer(c ContainerView) {
	dir := filepath.Dir(shimStatePath(filepath.Join(podsDir(m.opts.RunDir), c.PodID), c.ID))
	if err := m.events.watcher.Add(dir); err != nil && !os.IsNotExist(err) {
		m.opts.Log.WithError(err).WithField("container", c.ID).Warn("cannot watch container state; its exit will show in status but not as an event")
	}
	if c.Shim.Status == shimapi.StatusStopped {
		m.publish(EventStopped, c)
	}
}

// watchExits publishes EventStopped when a shim records a container's exit.
func (m *Manager) watchExits() {
	for {
		select {
		case ev, ok := <-m.events.watcher.Events:
			if !ok {
				return
			}
			if filepath.Base(ev.Name) != shimapi.StateName || ev.Op&(fsnotify.Create|fsnotify.Write) == 0 {
				continue
			}
			c, err := m.lookupContainer(filepath.Base(filepath.Dir(ev.Name)))
			if err != nil {
				continue
			}
			if v := m.containerView(c); v.Shim.Status == shimapi.StatusStopped {
				m.publish(EventStopped, v)
			}
		case err, ok := <-m.events.watcher.Errors:
			if !ok {
				return
			}
			m.opts.Log.WithError(err).Warn("container state watcher")
		}
	}
}
