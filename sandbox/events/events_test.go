package events

import (
	"io"
	"reflect"
	"testing"

	"github.com/sirupsen/logrus"
)

// TestPublish: a container's exit goes out once however often it is seen,
// and again after the container is deleted and its ID comes back; pod
// events carry the pod's ID as their container ID.
func TestPublish(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	h := NewHub(log)
	ch, cancel := h.Subscribe()
	defer cancel()
	h.Publish(Created, "c", "p")
	h.Publish(Stopped, "c", "p")
	h.Publish(Stopped, "c", "p")
	h.PublishPod(Stopped, "p")
	h.Publish(Deleted, "c", "p")
	h.Publish(Stopped, "c", "p")
	type ev struct {
		t     Type
		ctr   string
		podID string
	}
	var got []ev
	for len(ch) > 0 {
		e := <-ch
		got = append(got, ev{e.Type, e.ContainerID, e.PodID})
	}
	want := []ev{{Created, "c", "p"}, {Stopped, "c", "p"}, {Stopped, "p", "p"}, {Deleted, "c", "p"}, {Stopped, "c", "p"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	cancel()
	h.Publish(Created, "d", "p")
	if len(ch) > 0 {
		t.Errorf("an event reached an ended subscription")
	}
}
