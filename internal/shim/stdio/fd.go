package stdio

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// CloseFiles closes every non-nil file of files.
func CloseFiles(files ...*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// SockPair returns a connected pair of unix stream sockets, close-on-exec.
func SockPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "console-parent"), os.NewFile(uintptr(fds[1]), "console-child"), nil
}

// RecvFile receives one descriptor sent as SCM_RIGHTS on sock (as
// libcontainer sends a terminal's master to its console socket).
func RecvFile(sock *os.File) (*os.File, error) {
	fd, err := recvFD(sock)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "pty-master"), nil
}

// recvFD is RecvFile returning the bare descriptor (close-on-exec).
func recvFD(sock *os.File) (int, error) {
	buf := make([]byte, 4096) // libcontainer sends the terminal's name along
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("recvmsg: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return -1, fmt.Errorf("parse control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("expected one descriptor, got %d", len(fds))
	}
	return fds[0], nil
}

// SendFile sends f's descriptor as SCM_RIGHTS on sock, as a runtime sends
// a terminal's master to its console socket.
func SendFile(sock, f *os.File) error {
	rights := unix.UnixRights(int(f.Fd()))
	if err := unix.Sendmsg(int(sock.Fd()), []byte(f.Name()), rights, nil, 0); err != nil {
		return fmt.Errorf("sendmsg: %w", err)
	}
	return nil
}
