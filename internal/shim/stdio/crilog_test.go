package stdio

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestCRILogCopyStream(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 120000000, time.UTC)
	stamp := "2024-05-06T07:08:09.120000000Z"
	rec := func(stream, tag, text string) string { return stamp + " " + stream + " " + tag + " " + text + "\n" }
	long := strings.Repeat("a", maxLogLine)
	for _, tc := range []struct {
		name   string
		stream string
		tty    bool
		in     string
		want   []string
	}{
		{"empty", "stdout", false, "", nil},
		{"one line", "stdout", false, "hello\n", []string{rec("stdout", "F", "hello")}},
		{"two lines", "stderr", false, "a\nb\n", []string{rec("stderr", "F", "a"), rec("stderr", "F", "b")}},
		{"empty line", "stdout", false, "\n", []string{rec("stdout", "F", "")}},
		{"partial at EOF", "stdout", false, "a\nno newline", []string{rec("stdout", "F", "a"), rec("stdout", "F", "no newline")}},
		{"carriage return kept", "stdout", false, "x\r\n", []string{rec("stdout", "F", "x\r")}},
		{"exactly max", "stdout", false, long + "\n", []string{rec("stdout", "F", long)}},
		{"max plus one", "stdout", false, long + "b\n", []string{rec("stdout", "P", long), rec("stdout", "F", "b")}},
		{"twice max", "stdout", false, long + long + "\n", []string{rec("stdout", "P", long), rec("stdout", "F", long)}},
		{"twice max plus", "stdout", false, long + long + "cd\nnext\n", []string{
			rec("stdout", "P", long), rec("stdout", "P", long), rec("stdout", "F", "cd"), rec("stdout", "F", "next")}},
		{"tty drops carriage return", "stdout", true, "x\r\ny\r\n", []string{rec("stdout", "F", "x"), rec("stdout", "F", "y")}},
		{"tty keeps lone carriage return", "stdout", true, "a\rb\r", []string{rec("stdout", "F", "a\rb\r")}},
		{"long without newline", "stderr", false, long + "tail", []string{rec("stderr", "P", long), rec("stderr", "F", "tail")}},
	} {
		// Small reads exercise reassembly, large ones the buffer limit.
		for _, chunk := range []int{1, 7, 4096, 1 << 20} {
			t.Run(fmt.Sprintf("%s/read%d", tc.name, chunk), func(t *testing.T) {
				var out bytes.Buffer
				l := newCRILog(&out)
				l.now = func() time.Time { return ts }
				if err := l.copyStream(tc.stream, &chunkReader{s: tc.in, n: chunk}, tc.tty); err != nil {
					t.Fatal(err)
				}
				if got, want := out.String(), strings.Join(tc.want, ""); got != want {
					t.Errorf("got\n%q\nwant\n%q", abbrev(got), abbrev(want))
				}
			})
		}
	}
}

// chunkReader returns s at most n bytes per Read.
type chunkReader struct {
	s string
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	k := min(len(p), r.n, len(r.s))
	copy(p, r.s[:k])
	r.s = r.s[k:]
	return k, nil
}

func abbrev(s string) string {
	return strings.ReplaceAll(s, strings.Repeat("a", maxLogLine), "a×16KiB")
}
