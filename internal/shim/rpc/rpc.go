// Package rpc is crib-shim's server of the "Shim" service (api/shim) in
// the wire format of net/rpc/jsonrpc, which cribd's client
// (sandbox/shimclient) uses: a stream of JSON requests {"method":
// "Shim.Create", "params": [arg], "id": n}, each answered, in any order, by
// {"id": n, "result": reply, "error": null} or {"id": n, "result": null,
// "error": "message"}. Calls on one connection run concurrently, as with
// net/rpc. Replies that carry descriptors (shimapi.ExecStartResponse,
// shimapi.AttachResponse) send them as SCM_RIGHTS with the reply's bytes.
//
// Why not net/rpc's own server: it links net/http, html/template and
// crypto/tls (its debug pages), and its reflection over method sets
// (Type.Method) makes the linker keep every exported method of every
// reachable type, libcontainer's checkpoint/restore client included. The
// shim's binary starts twice per pod, as the shim and re-executed as each
// container's init, so its size is paid at every container start (see
// docs/architecture.md for the measurements).
package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	shimapi "github.com/crib-runtime/crib/api/shim"
)

// Handler decodes a call's params, runs it and returns its reply.
type Handler func(params json.RawMessage) (any, error)

// Method adapts a net/rpc-style method (arg and reply pointers) to a
// Handler.
func Method[A, R any](f func(*A, *R) error) Handler {
	return func(params json.RawMessage) (any, error) {
		arg, reply := new(A), new(R)
		// The params are a one-element array holding the argument.
		p := [1]any{arg}
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, err
		}
		if err := f(arg, reply); err != nil {
			return nil, err
		}
		return reply, nil
	}
}

// Server serves calls to a set of handlers by method name.
type Server struct {
	handlers map[string]Handler
	replied  func(method string, err error)
}

// NewServer returns a Server of handlers, keyed by method name ("Shim.Create").
// A method missing there answers shimapi.UnknownMethodPrefix and its name.
// replied, if not nil, is called after each call's reply is written (the
// reply is then in the peer's receive queue), with the call's error.
func NewServer(handlers map[string]Handler, replied func(method string, err error)) *Server {
	return &Server{handlers: handlers, replied: replied}
}

type rpcRequest struct {
	Method string           `json:"method"`
	Params *json.RawMessage `json:"params"`
	ID     *json.RawMessage `json:"id"`
}

type rpcResponse struct {
	ID     *json.RawMessage `json:"id"`
	Result any              `json:"result"`
	Error  any              `json:"error"`
}

var jsonNull = json.RawMessage("null")

// replyFiles returns the descriptors a reply carries (ExecStart, Attach).
func replyFiles(result any) []*os.File {
	switch r := result.(type) {
	case *shimapi.ExecStartResponse:
		return r.Files
	case *shimapi.AttachResponse:
		return r.Files
	}
	return nil
}

// Serve accepts connections on l and serves each on its own goroutine until
// l is closed.
func (srv *Server) Serve(l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			logrus.WithError(err).Warn("accept")
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go srv.ServeConn(conn)
	}
}

// ServeConn reads calls from conn until it fails or closes, runs each on
// its own goroutine, and closes conn once the running calls have answered.
func (srv *Server) ServeConn(conn net.Conn) {
	var (
		dec     = json.NewDecoder(conn)
		enc     = json.NewEncoder(conn)
		sending sync.Mutex
		running sync.WaitGroup
	)
	reply := func(id *json.RawMessage, result any, err error) {
		if id == nil {
			id = &jsonNull
		}
		resp := rpcResponse{ID: id, Result: result}
		if err != nil {
			resp.Result, resp.Error = nil, err.Error()
		}
		sending.Lock()
		defer sending.Unlock()
		if files := replyFiles(result); len(files) > 0 {
			// The descriptors travel with the reply's bytes, so a reader
			// using recvmsg gets both at once.
			line, merr := json.Marshal(resp)
			if merr == nil {
				merr = sendReplyFiles(conn, append(line, '\n'), files)
			} else {
				closeFiles(files)
			}
			if merr != nil {
				logrus.WithError(merr).Debug("write rpc reply with descriptors")
			}
			return
		}
		if werr := enc.Encode(resp); werr != nil {
			logrus.WithError(werr).Debug("write rpc reply")
		}
	}
	for {
		var req rpcRequest
		if err := dec.Decode(&req); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				logrus.WithError(err).Debug("read rpc request")
			}
			break
		}
		h := srv.handlers[req.Method]
		switch {
		case h == nil:
			reply(req.ID, nil, errors.New(shimapi.UnknownMethodPrefix+req.Method))
			continue
		case req.Params == nil:
			reply(req.ID, nil, errors.New("jsonrpc: request body missing params"))
			continue
		}
		running.Add(1)
		go func() {
			defer running.Done()
			result, err := h(*req.Params)
			reply(req.ID, result, err)
			if srv.replied != nil {
				srv.replied(req.Method, err)
			}
		}()
	}
	running.Wait()
	conn.Close()
}

// sendReplyFiles writes a JSON reply line and passes files with it as
// SCM_RIGHTS, then closes the shim's copies of the files.
func sendReplyFiles(conn net.Conn, line []byte, files []*os.File) error {
	defer closeFiles(files)
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("cannot pass descriptors over a %T", conn)
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	_, _, err := uc.WriteMsgUnix(line, unix.UnixRights(fds...), nil)
	return err
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// Listen listens on the unix socket sock, replacing a stale socket file but
// refusing to take over one a live shim still answers on.
func Listen(sock string) (net.Listener, error) {
	if conn, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		conn.Close()
		return nil, fmt.Errorf("another shim is listening on %s", sock)
	}
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
