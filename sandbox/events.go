package sandbox

import (
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/sandbox/events"
)

// EventType is a container lifecycle event, as kubelet's evented PLEG
// reads them.
type EventType = events.Type

// Container events.
const (
	EventCreated = events.Created
	EventStarted = events.Started
	EventStopped = events.Stopped
	EventDeleted = events.Deleted
)

// Event is one container lifecycle event.
type Event = events.Event

// SubscribeEvents returns a channel of container events and a function
// that ends the subscription.
func (m *Manager) SubscribeEvents() (<-chan Event, func()) { return m.hub.Subscribe() }

func (m *Manager) publish(t EventType, rec ContainerView) { m.hub.Publish(t, rec.ID, rec.PodID) }

func (m *Manager) publishPod(t EventType, podID string) { m.hub.PublishPod(t, podID) }

// watchContainer follows the state file of container c (its shim's
// directory for it), and publishes its exit if it already happened.
func (m *Manager) watchContainer(c ContainerView) {
	dir := filepath.Dir(shimStatePath(filepath.Join(podsDir(m.opts.RunDir), c.PodID), c.ID))
	if err := m.watcher.Add(dir); err != nil && !os.IsNotExist(err) {
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
		case ev, ok := <-m.watcher.Events:
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
		case err, ok := <-m.watcher.Errors:
			if !ok {
				return
			}
			m.opts.Log.WithError(err).Warn("container state watcher")
		}
	}
}
