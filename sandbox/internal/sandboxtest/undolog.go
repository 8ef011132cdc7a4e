package sandboxtest

import (
	"errors"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// UndoLog reads the undo steps a cleanup stack logs: "cleanup: <step>" at
// debug level, at a higher one when the step failed.
type UndoLog struct {
	hook *logtest.Hook
}

// NewUndoLog returns a logger at debug level that writes nowhere, for the
// code under test, and the UndoLog that reads what it logs.
func NewUndoLog() (*logrus.Logger, *UndoLog) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.DebugLevel)
	return log, &UndoLog{hook: logtest.NewLocal(log)}
}

// Undone is the undo steps logged since the last call, in the order
// taken, with each old string of the oldnew pairs written as its new one
// (as by strings.NewReplacer: a test's directories and IDs as $ROOT, $ID,
// ...), and each run of unpin steps sorted (pins are kept in a map).
// Failed undo steps fail t.
func (l *UndoLog) Undone(t testing.TB, oldnew ...string) []string {
	t.Helper()
	r := strings.NewReplacer(oldnew...)
	var out []string
	for _, entry := range l.hook.AllEntries() {
		what, ok := strings.CutPrefix(entry.Message, "cleanup: ")
		if !ok {
			continue
		}
		if entry.Level != logrus.DebugLevel {
			t.Errorf("undo step %s (%v)", entry.Message, entry.Data[logrus.ErrorKey])
			continue
		}
		out = append(out, r.Replace(what))
	}
	l.hook.Reset()
	sortUnpinRuns(out)
	return out
}

// Reversed returns the undo steps of what was acquired, in the order the
// stack takes them, with each run of unpin steps sorted as Undone sorts
// it.
func Reversed(acquired ...[]string) []string {
	out := slices.Concat(acquired...)
	slices.Reverse(out)
	sortUnpinRuns(out)
	return out
}

// sortUnpinRuns sorts, in place, each run of consecutive "unpin " steps:
// the order within a run is a map's.
func sortUnpinRuns(steps []string) {
	for i := 0; i < len(steps); {
		j := i
		for j < len(steps) && strings.HasPrefix(steps[j], "unpin ") {
			j++
		}
		sort.Strings(steps[i:j])
		if j == i {
			j++
		}
		i = j
	}
}

// Entries lists dir's entries by name; none if dir does not exist.
func Entries(t testing.TB, dir string) []string {
	t.Helper()
	list, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Name())
	}
	return names
}

// Taken is the undo steps the cases of a rollback test took, so that the
// test can tell that some case reaches every undo step it has.
type Taken map[string]bool

// Check fails t unless got, the undo steps a case took, are those of
// what it acquired in the order the stack takes them (Reversed), and
// records them as taken.
func (tk Taken) Check(t testing.TB, got []string, acquired ...[]string) {
	t.Helper()
	if want := Reversed(acquired...); !slices.Equal(got, want) {
		t.Errorf("undo steps taken:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, s := range got {
		tk[s] = true
	}
}

// CheckAll fails t for each of steps that no case took.
func (tk Taken) CheckAll(t testing.TB, steps ...[]string) {
	t.Helper()
	for _, s := range slices.Concat(steps...) {
		if !tk[s] {
			t.Errorf("no case took the undo step %q", s)
		}
	}
}
