// Command tcpstream measures one TCP stream's throughput, for the cluster
// benchmark (tests/cluster/bench_test.go): the same static binary runs in
// pods (through a hostPath volume: the test images have no iperf) and in
// the nodes' network namespaces, so that overlay and underlay are
// measured by one tool.
//
//	tcpstream -listen ADDR              read and discard every connection
//	tcpstream -connect ADDR -duration D send for D, print the rate
//
// The sender counts what the receiver has read: after D it half-closes,
// and the clock stops when the receiver, having read everything, closes
// its side. It prints "bytes=N seconds=S MBps=R" (R in 10^6 bytes/s).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// bufSize is each write's and read's size: large enough that the system
// calls cost little next to the copy, as iperf's 128 KiB default.
const bufSize = 128 << 10

func main() {
	listen := flag.String("listen", "", "address to accept connections on")
	connect := flag.String("connect", "", "address to send to")
	duration := flag.Duration("duration", 5*time.Second, "how long to send")
	flag.Parse()
	var err error
	switch {
	case *listen != "" && *connect == "":
		err = serve(*listen)
	case *connect != "" && *listen == "":
		err = send(*connect, *duration)
	default:
		err = errors.New("one of -listen or -connect")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpstream:", err)
		os.Exit(1)
	}
}

// serve reads every connection to its end, one goroutine each, and then
// closes it: the close tells the sender all it sent was read.
func serve(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Println("listening on", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		go func() {
			defer c.Close()
			buf := make([]byte, bufSize)
			_, _ = io.CopyBuffer(io.Discard, onlyReader{c}, buf)
		}()
	}
}

// onlyReader hides the connection's WriterTo, so that CopyBuffer uses the
// buffer given (bufSize reads) and not a smaller one of its own.
type onlyReader struct{ io.Reader }

// send writes for d, then half-closes and waits for the receiver's close.
func send(addr string, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return fmt.Errorf("dial %s: not a TCP connection", addr)
	}
	buf := make([]byte, bufSize)
	var n int64
	start := time.Now()
	end := start.Add(d)
	for time.Now().Before(end) {
		w, err := tc.Write(buf)
		n += int64(w)
		if err != nil {
			return fmt.Errorf("write after %d bytes: %w", n, err)
		}
	}
	if err := tc.CloseWrite(); err != nil {
		return fmt.Errorf("half-close: %w", err)
	}
	_ = tc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, tc); err != nil {
		return fmt.Errorf("wait for the receiver's close: %w", err)
	}
	s := time.Since(start).Seconds()
	fmt.Printf("bytes=%d seconds=%.3f MBps=%.1f\n", n, s, float64(n)/s/1e6)
	return nil
}
