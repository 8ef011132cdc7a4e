package service

import (
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"reflect"
	"strings"
	"testing"
	"time"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/shim/reaper"
)

// TestRPCWireFormat: the shim's server answers net/rpc/jsonrpc's client,
// which cribd uses: results, errors as text, unknown methods, and exit after
// a successful Shutdown.
func TestRPCWireFormat(t *testing.T) {
	svc := &Shim{
		reaper:     reaper.New(),
		containers: make(map[string]*container),
		exit:       make(chan struct{}),
	}
	svc.containers["c1"] = &container{id: "c1", state: shimapi.State{ID: "c1", Pid: 42}}
	server, client := net.Pipe()
	go svc.Server().ServeConn(server)
	c := jsonrpc.NewClient(client)
	defer c.Close()

	var st shimapi.State
	if err := c.Call(shimapi.MethodState, &shimapi.IDRequest{ID: "c1"}, &st); err != nil {
		t.Fatalf("State: %v", err)
	}
	if st.ID != "c1" || st.Pid != 42 || st.Status != shimapi.StatusCreated {
		t.Errorf("State = %+v, want c1, pid 42, created", st)
	}

	err := c.Call(shimapi.MethodState, &shimapi.IDRequest{ID: "nope"}, &st)
	if _, ok := err.(rpc.ServerError); !ok || err.Error() != "container nope: not found" {
		t.Errorf("State(nope) = %T %v, want ServerError \"container nope: not found\"", err, err)
	}
	err = c.Call("Shim.Nope", &shimapi.Empty{}, &shimapi.Empty{})
	if _, ok := err.(rpc.ServerError); !ok || !strings.Contains(err.Error(), "Shim.Nope") {
		t.Errorf("Shim.Nope = %T %v, want a ServerError naming the method", err, err)
	}
	err = c.Call(shimapi.MethodKill, &shimapi.KillRequest{ID: "c1", Signal: 0}, &shimapi.Empty{})
	if _, ok := err.(rpc.ServerError); !ok || !strings.Contains(err.Error(), "bad signal") {
		t.Errorf("Kill(signal 0) = %T %v, want a ServerError about the signal", err, err)
	}

	// Concurrent calls on one connection each get their own answer.
	calls := make([]*rpc.Call, 20)
	for i := range calls {
		calls[i] = c.Go(shimapi.MethodState, &shimapi.IDRequest{ID: "c1"}, &shimapi.State{}, nil)
	}
	for i, call := range calls {
		<-call.Done
		if call.Error != nil || call.Reply.(*shimapi.State).Pid != 42 {
			t.Errorf("concurrent call %d: %v %+v", i, call.Error, call.Reply)
		}
	}

	select {
	case <-svc.exit:
		t.Fatal("exit requested before Shutdown")
	default:
	}
	delete(svc.containers, "c1") // Shutdown would delete it for real
	if err := c.Call(shimapi.MethodShutdown, &shimapi.Empty{}, &shimapi.Empty{}); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case <-svc.exit:
	case <-time.After(5 * time.Second):
		t.Fatal("no exit requested after Shutdown")
	}
}

// TestRPCHandlersCoverShim: every exported method of *Shim shaped like a
// net/rpc method (two pointer arguments, an error result) has a handler, as
// net/rpc's Register would have served it.
func TestRPCHandlersCoverShim(t *testing.T) {
	handlers := (&Shim{}).handlers()
	errType := reflect.TypeFor[error]()
	typ := reflect.TypeFor[*Shim]()
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		ft := m.Type // receiver first
		if ft.NumIn() != 3 || ft.NumOut() != 1 || ft.Out(0) != errType ||
			ft.In(1).Kind() != reflect.Pointer || ft.In(2).Kind() != reflect.Pointer {
			continue
		}
		if _, ok := handlers["Shim."+m.Name]; !ok {
			t.Errorf("Shim.%s has no entry in handlers (handlers.go): cribd's calls to it would fail", m.Name)
		}
	}
}
