// Package events fans pod and container lifecycle events out to
// subscribers (kubelet's evented PLEG, through GetContainerEvents). Pods
// publish their own events (a shim's death), containers theirs; neither
// waits for a slow reader.
package events

import (
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Type is a container lifecycle event, as kubelet's evented PLEG reads
// them.
type Type int

// Container events.
const (
	Created Type = iota
	Started
	Stopped
	Deleted
)

// Event is one container lifecycle event.
type Event struct {
	Type        Type
	ContainerID string
	PodID       string
	At          time.Time
}

// buffer is each subscriber's backlog; a reader that falls further
// behind loses events (counted and logged) rather than stall cribd.
const buffer = 1024

// Hub hands events to subscribers. It is safe for concurrent use.
type Hub struct {
	log logrus.FieldLogger

	mu      sync.Mutex
	subs    map[int]chan Event
	next    int
	dropped uint64
	stopped map[string]bool // containers whose exit was published
}

// NewHub is a hub without subscribers that logs dropped events to log.
func NewHub(log logrus.FieldLogger) *Hub {
	return &Hub{log: log, subs: map[int]chan Event{}, stopped: map[string]bool{}}
}

// Subscribe returns a channel of events and a function that ends the
// subscription.
func (h *Hub) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, buffer)
	h.mu.Lock()
	id := h.next
	h.next++
	h.subs[id] = ch
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, id)
		h.mu.Unlock()
	}
}

// Publish publishes an event of container containerID of pod podID. A
// container's exit is published once, however many times it is seen.
func (h *Hub) Publish(t Type, containerID, podID string) {
	ev := Event{Type: t, ContainerID: containerID, PodID: podID, At: time.Now()}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch t {
	case Stopped:
		if h.stopped[containerID] {
			return
		}
		h.stopped[containerID] = true
	case Deleted:
		delete(h.stopped, containerID)
	}
	h.sendLocked(ev)
}

// PublishPod publishes an event of the pod itself, which carries the pod's
// ID as its container ID (the pause container's, as kubelet's evented PLEG
// reads a sandbox's events).
func (h *Hub) PublishPod(t Type, podID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sendLocked(Event{Type: t, ContainerID: podID, PodID: podID, At: time.Now()})
}

// sendLocked hands ev to every subscriber; the caller holds h.mu.
func (h *Hub) sendLocked(ev Event) {
	for _, ch := range h.subs {
		select {
		case ch <- ev:
		default:
			h.dropped++
			h.log.WithField("container", ev.ContainerID).Warnf("event subscriber too slow: dropped an event (%d so far)", h.dropped)
		}
	}
}
