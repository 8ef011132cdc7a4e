package shim

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

// maxExecFiles is the most descriptors an ExecStart reply carries.
const maxExecFiles = 3

// ExecStart starts a process in a container with its stdio on descriptors
// the reply carries (see shimapi.ExecStartResponse); the caller owns and
// closes resp.Files. The call runs alone on a connection of its own, read
// with recvmsg so the descriptors arrive with the reply.
func (c *Client) ExecStart(ctx context.Context, req *shimapi.ExecStartRequest) (_ *shimapi.ExecStartResponse, retErr error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", filepath.Join(c.dir, shimapi.SocketName))
	if err != nil {
		return nil, errdefs.Unavailable("%s to shim in %s: %w", shimapi.MethodExecStart, c.dir, err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	if dl, ok := ctx.Deadline(); ok {
		_ = uc.SetDeadline(dl)
	} else {
		_ = uc.SetDeadline(time.Now().Add(time.Minute))
	}
	call, err := json.Marshal(map[string]any{"method": shimapi.MethodExecStart, "params": [1]any{req}, "id": 0})
	if err != nil {
		return nil, err
	}
	if _, err := uc.Write(append(call, '\n')); err != nil {
		return nil, errdefs.Unavailable("%s to shim in %s: %w", shimapi.MethodExecStart, c.dir, err)
	}

	var (
		line  []byte
		files []*os.File
		buf   = make([]byte, 4096)
		oob   = make([]byte, unix.CmsgSpace(4*maxExecFiles))
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
			return nil, errdefs.Unavailable("%s to shim in %s: %w", shimapi.MethodExecStart, c.dir, err)
		}
	}
	var reply struct {
		Result *shimapi.ExecStartResponse `json:"result"`
		Error  *string                    `json:"error"`
	}
	if err := json.Unmarshal(line, &reply); err != nil {
		return nil, fmt.Errorf("%s: decode reply: %w", shimapi.MethodExecStart, err)
	}
	if reply.Error != nil {
		return nil, remoteError(*reply.Error)
	}
	if reply.Result == nil {
		return nil, fmt.Errorf("%s: empty reply", shimapi.MethodExecStart)
	}
	want := 1
	if !req.Tty {
		want = 2
		if req.Stdin {
			want = 3
		}
	}
	if len(files) != want {
		return nil, fmt.Errorf("%s: got %d descriptors, want %d", shimapi.MethodExecStart, len(files), want)
	}
	reply.Result.Files = files
	return reply.Result, nil
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
