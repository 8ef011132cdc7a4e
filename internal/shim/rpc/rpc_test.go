package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	shimapi "github.com/crib-runtime/crib/api/shim"
)

type echoArg struct{ S string }

// TestServerWireFormat: results, errors as text, unknown methods and a
// missing params field, as net/rpc/jsonrpc's client sees them, and the
// replied hook after each call.
func TestServerWireFormat(t *testing.T) {
	replied := make(chan string, 10)
	srv := NewServer(map[string]Handler{
		"T.Echo": Method(func(a *echoArg, r *echoArg) error { r.S = a.S; return nil }),
		"T.Fail": Method(func(*echoArg, *echoArg) error { return errors.New("container x: not found") }),
	}, func(method string, err error) { replied <- method })
	server, client := net.Pipe()
	go srv.ServeConn(server)
	c := jsonrpc.NewClient(client)
	defer c.Close()

	for _, tc := range []struct {
		method  string
		wantErr string
	}{
		{"T.Echo", ""},
		{"T.Fail", "container x: not found"},
		{"T.Nope", shimapi.UnknownMethodPrefix + "T.Nope"},
	} {
		var got echoArg
		err := c.Call(tc.method, &echoArg{S: "hi"}, &got)
		switch {
		case tc.wantErr == "" && (err != nil || got.S != "hi"):
			t.Errorf("%s = %+v, %v; want hi", tc.method, got, err)
		case tc.wantErr != "":
			if _, ok := err.(rpc.ServerError); !ok || err.Error() != tc.wantErr {
				t.Errorf("%s: %T %v, want ServerError %q", tc.method, err, err, tc.wantErr)
			}
		}
	}
	for _, want := range []string{"T.Echo", "T.Fail"} {
		select {
		case got := <-replied:
			if got != want {
				t.Errorf("replied(%s), want %s", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no replied call for %s", want)
		}
	}
}

// TestServerPassesReplyFiles: a reply that carries descriptors sends them
// with the reply's line, in order, in one message.
func TestServerPassesReplyFiles(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	srv := NewServer(map[string]Handler{
		shimapi.MethodAttach: Method(func(_ *shimapi.AttachRequest, resp *shimapi.AttachResponse) error {
			resp.Files = []*os.File{w} // the server closes its copy
			return nil
		}),
	}, nil)
	l, err := Listen(filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go srv.Serve(l)

	conn, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(`{"method":"` + shimapi.MethodAttach + `","params":[{"ID":"c"}],"id":1}` + "\n")); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.(*net.UnixConn).ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		ID    int
		Error any
	}
	if err := json.Unmarshal(bytes.TrimSpace(buf[:n]), &resp); err != nil || resp.ID != 1 || resp.Error != nil {
		t.Fatalf("reply %q: %+v %v", buf[:n], resp, err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages %v, %v; want one", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("descriptors %v, %v; want one", fds, err)
	}
	got := os.NewFile(uintptr(fds[0]), "passed")
	if _, err := got.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	got.Close()
	b := make([]byte, 2)
	if n, _ := r.Read(b); string(b[:n]) != "x" {
		t.Errorf("pipe read %q through the passed descriptor, want x", b[:n])
	}
}

// TestListenRefusesLiveSocket: a socket a server answers on is not taken
// over; a stale socket file is replaced.
func TestListenRefusesLiveSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "another shim") {
		t.Errorf("second Listen: %v, want another shim is listening", err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l2, err := Listen(sock)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	l2.Close()
}
