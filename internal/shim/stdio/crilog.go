package stdio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/internal/beneath"
)

// CRI log format, as kubelet reads it (see the CRI logging design):
//
//	<timestamp> <stream> <tag> <text>\n
//
// timestamp is RFC 3339 with nanoseconds, stream is "stdout" or "stderr", tag
// is "F" for the last (or only) piece of a line and "P" for a piece that the
// next record continues. Lines longer than maxLogLine are cut into P records.
const (
	// logTimeFormat is RFC3339Nano with a fixed-width fraction (as containerd
	// writes it), so records sort as text; kubelet parses it as RFC3339Nano.
	logTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"
	// maxLogLine is the longest text one record carries (containerd's default
	// max_container_log_line_size).
	maxLogLine = 16 * 1024

	tagFull    = 'F'
	tagPartial = 'P'
)

// criLog is one container's log file, shared by its stdout and stderr
// copiers. Each record is written with a single write(2) under mu, so records
// of the two streams never interleave inside a line.
type criLog struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	buf []byte // record being assembled; reused under mu
}

// openCRILog opens (creating, appending) the log file at path, which must
// lie beneath dir, the pod's log directory, with no symlink on the way: the
// shim writes as root into a directory others may write to, so a planted
// symlink must not send the log anywhere else (internal/beneath). A
// refused path names log_path and wraps errdefs.ErrFailedPrecondition
// (symlink, not a regular file) or ErrInvalidArgument (outside dir).
func openCRILog(dir, path string) (*os.File, error) {
	if dir == "" {
		// A caller that names no log directory (older cribd, direct shim
		// clients) trusts the file's own directory, made as before.
		dir = filepath.Dir(path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("log_path %s: %w", path, err)
		}
	}
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return nil, fmt.Errorf("log_path %s is not beneath the pod's log directory %s: %w", path, dir, errdefs.ErrInvalidArgument)
	}
	f, err := beneath.OpenLog(dir, rel, 0o640)
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, beneath.ErrEscapes):
		return nil, fmt.Errorf("log_path %s is not beneath the pod's log directory %s (%v): %w", path, dir, err, errdefs.ErrInvalidArgument)
	case errors.Is(err, beneath.ErrSymlink), errors.Is(err, beneath.ErrNotRegular), errors.Is(err, unix.ENXIO):
		return nil, fmt.Errorf("log_path %s: refusing to write through %v (crib does not follow symlinks or write to special files in the pod's log directory %s): %w",
			path, err, dir, errdefs.ErrFailedPrecondition)
	}
	return nil, fmt.Errorf("log_path %s: %w", path, err)
}

func newCRILog(w io.Writer) *criLog {
	return &criLog{w: w, now: time.Now}
}

// reopen switches the log to a freshly opened file at path (kubelet renamed
// the old one to rotate it) and closes the old one. Records are written
// under mu, so none is lost or split between the two files.
func (l *criLog) reopen(dir, path string) error {
	f, err := openCRILog(dir, path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.w
	l.w = f
	l.mu.Unlock()
	if c, ok := old.(io.Closer); ok {
		c.Close()
	}
	return nil
}

// close closes the current log file.
func (l *criLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.w.(io.Closer); ok {
		c.Close()
	}
}

// record writes one record; text must not contain the terminating newline.
func (l *criLog) record(stream string, tag byte, text []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.now().AppendFormat(l.buf[:0], logTimeFormat)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ', tag, ' ')
	b = append(b, text...)
	b = append(b, '\n')
	l.buf = b
	_, err := l.w.Write(b)
	return err
}

// copyStream reads r until EOF and writes it to l as records of stream. A
// line (without its "\n") becomes one F record;
// a line longer than maxLogLine becomes P records of maxLogLine bytes and a
// final F record. Text left without a newline at EOF is written as an F
// record, as containerd does. Returns nil at EOF. For a terminal's output
// (tty), the "\r" the terminal puts before each "\n" is dropped.
func (l *criLog) copyStream(stream string, r io.Reader, tty bool) error {
	br := bufio.NewReaderSize(r, maxLogLine)
	var line []byte // pending text of the current line, at most maxLogLine
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			complete := chunk[len(chunk)-1] == '\n'
			if complete {
				chunk = chunk[:len(chunk)-1]
				if tty && len(chunk) > 0 && chunk[len(chunk)-1] == '\r' {
					chunk = chunk[:len(chunk)-1]
				}
			}
			for len(line)+len(chunk) > maxLogLine {
				n := maxLogLine - len(line)
				line = append(line, chunk[:n]...)
				chunk = chunk[n:]
				if werr := l.record(stream, tagPartial, line); werr != nil {
					return werr
				}
				line = line[:0]
			}
			line = append(line, chunk...)
			if complete {
				if werr := l.record(stream, tagFull, line); werr != nil {
					return werr
				}
				line = line[:0]
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF), errors.Is(err, os.ErrClosed):
			if len(line) > 0 {
				return l.record(stream, tagFull, line)
			}
			return nil
		default:
			if len(line) > 0 {
				_ = l.record(stream, tagFull, line)
			}
			return err
		}
	}
}
