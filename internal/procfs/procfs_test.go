package procfs

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"testing"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    Stat
		dead    bool
		wantErr bool
	}{
		{
			name: "plain",
			stat: "42 (sleep) S 1 42 42 0 -1 4194560 90 0 0 0 0 0 0 0 20 0 1 0 123456 2207744 180 18446744073709551615",
			want: Stat{Comm: "sleep", State: 'S', PPid: 1, StartTime: 123456},
		},
		{
			name: "name with spaces and parens",
			stat: "42 (a b) c) Z 7 42 42 0 -1 4194560 90 0 0 0 0 0 0 0 20 0 1 0 99 0 0",
			want: Stat{Comm: "a b) c", State: 'Z', PPid: 7, StartTime: 99},
			dead: true,
		},
		{name: "truncated", stat: "42 (x) S 1 2", wantErr: true},
		{name: "garbage", stat: "nonsense", wantErr: true},
		{name: "bad ppid", stat: "42 (x) S p 42 42 0 -1 4194560 90 0 0 0 0 0 0 0 20 0 1 0 99 0 0", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tc.stat))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got != tc.want || got.Dead() != tc.dead {
				t.Errorf("got %+v (dead %v), want %+v (dead %v)", got, got.Dead(), tc.want, tc.dead)
			}
		})
	}
}

func TestReadStatSelfAndGone(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPid != os.Getppid() || st.Dead() || st.StartTime == 0 {
		t.Errorf("own stat %+v: want ppid %d, alive, a start time", st, os.Getppid())
	}
	// PID 0 has no /proc entry.
	if _, err := ReadStat(0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadStat(0) = %v, want not-exist", err)
	}
	if _, err := StartTime(0); err == nil {
		t.Error("StartTime(0) succeeded")
	}
}

func TestSelfOOMScoreAdj(t *testing.T) {
	if _, err := SelfOOMScoreAdj(); err != nil {
		t.Fatal(err)
	}
}

func TestSelfChildren(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pids, err := SelfChildren()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("SelfChildren() = %v, want it to list child %d", pids, cmd.Process.Pid)
	}
}
