package shimclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
)

// maxReplyFiles is the most descriptors a reply carries (ExecStart,
// Attach).
const maxReplyFiles = 3

// ExecStart starts a process in a container with its stdio on descriptors
// the reply carries (see shimapi.ExecStartResponse); the caller owns and
// closes resp.Files.
func (c *Client) ExecStart(ctx context.Context, req *shimapi.ExecStartRequest) (*shimapi.ExecStartResponse, error) {
	want := 1
	if !req.Tty {
		want = 2
		if req.Stdin {
			want = 3
		}
	}
	var resp shimapi.ExecStartResponse
	files, err := c.callFiles(ctx, shimapi.MethodExecStart, req, &resp, want)
	if err != nil {
		return nil, err
	}
	resp.Files = files
	return &resp, nil
}

// Attach connects a session to a running container's stdio; the reply
// carries its descriptors (see shimapi.AttachResponse), which the caller
// owns and closes.
func (c *Client) Attach(ctx context.Context, req *shimapi.AttachRequest) (*shimapi.AttachResponse, error) {
	want := 0
	for _, b := range []bool{req.Stdin, req.Stdout, req.Stderr} {
		if b {
			want++
		}
	}
	var resp shimapi.AttachResponse
	files, err := c.callFiles(ctx, shimapi.MethodAttach, req, &resp, want)
	if err != nil {
		return nil, err
	}
	resp.Files = files
	return &resp, nil
}

// Resize sets the size of a container's terminal.
func (c *Client) Resize(ctx context.Context, id string, width, height uint16) error {
	return c.call(ctx, shimapi.MethodResize, &shimapi.ResizeRequest{ID: id, Width: width, Height: height}, &shimapi.Empty{})
}

// callFiles calls a method whose reply carries want descriptors
// (SCM_RIGHTS) with its JSON. The call runs alone on a connection of its
// own, read with recvmsg so the descriptors arrive with the reply. It
// decodes the reply into result and returns the descriptors, which the
// caller owns.
func (c *Client) callFiles(ctx context.Context, method string, req, result any, want int) (_ []*os.File, retErr error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", filepath.Join(c.dir, shimapi.SocketName))
	if err != nil {
		return nil, errdefs.Unavailable("%s to shim in %s: %w", method, c.dir, err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	if dl, ok := ctx.Deadline(); ok {
		_ = uc.SetDeadline(dl)
	} else {
		_ = uc.SetDeadline(time.Now().Add(time.Minute))
	}
	call, err := json.Marshal(map[string]any{"method": method, "params": [1]any{req}, "id": 0})
	if err != nil {
		return nil, err
	}
	if _, err := uc.Write(append(call, '\n')); err != nil {
		return nil, errdefs.Unavailable("%s to shim in %s: %w", method, c.dir, err)
	}

	var (
		line  []byte
		files []*os.File
		buf   = make([]byte, 4096)
		oob   = make([]byte, unix.CmsgSpace(4*maxReplyFiles))
	)
	defer func() {
		if retErr != nil {
			for _, f := range files {
				f.Close()
			}
		}
	}()
	for !bytes.HasSuffix(line, []byte("\n")) {
		n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
		if oobn > 0 {
			got, perr := parseRights(oob[:oobn])
			files = append(files, got...)
			if perr != nil {
				return nil, perr
			}
		}
		line = append(line, buf[:n]...)
		if err != nil {
			return nil, errdefs.Unavailable("%s to shim in %s: %w", method, c.dir, err)
		}
	}
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  *string         `json:"error"`
	}
	if err := json.Unmarshal(line, &reply); err != nil {
		return nil, fmt.Errorf("%s: decode reply: %w", method, err)
	}
	if reply.Error != nil {
		return nil, remoteError(*reply.Error)
	}
	if len(reply.Result) == 0 || string(reply.Result) == "null" {
		return nil, fmt.Errorf("%s: empty reply", method)
	}
	if err := json.Unmarshal(reply.Result, result); err != nil {
		return nil, fmt.Errorf("%s: decode reply: %w", method, err)
	}
	if len(files) != want {
		return nil, fmt.Errorf("%s: got %d descriptors, want %d", method, len(files), want)
	}
	return files, nil
}

// parseRights returns the descriptors of SCM_RIGHTS messages in oob.
func parseRights(oob []byte) ([]*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parse control message: %w", err)
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd)
			files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("exec-fd-%d", fd)))
		}
	}
	return files, nil
}

// ExecWait waits for a process ExecStart started and returns its exit code.
func (c *Client) ExecWait(ctx context.Context, id string, pid int) (int, error) {
	var resp shimapi.ExecWaitResponse
	if err := c.call(ctx, shimapi.MethodExecWait, &shimapi.ExecWaitRequest{ID: id, Pid: pid}, &resp); err != nil {
		return 0, err
	}
	return resp.ExitCode, nil
}
