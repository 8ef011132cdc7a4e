package cgstats

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/opencontainers/cgroups"
)

func TestMain(m *testing.M) {
	// The library reads only files of a cgroup file system unless told
	// that tests give it ordinary directories.
	cgroups.TestMode = true
	os.Exit(m.Run())
}

// writeFiles creates dir and the named files in it.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// v2Files is a cgroup v2 directory as the kernel shows it (trimmed to the
// files the library reads), with PSI on.
func v2Files(memMax, swapMax string) map[string]string {
	return map[string]string{
		"cgroup.controllers":  "cpu io memory pids\n",
		"cpu.stat":            "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 10\nnr_throttled 3\nthrottled_usec 700\n",
		"memory.current":      "10485760\n",
		"memory.max":          memMax + "\n",
		"memory.peak":         "12582912\n",
		"memory.swap.current": "4096\n",
		"memory.swap.max":     swapMax + "\n",
		"memory.stat":         "anon 3145728\nfile 6291456\nkernel 524288\nfile_mapped 1048576\ninactive_file 2097152\nactive_file 4194304\npgfault 1234\npgmajfault 5\n",
		"pids.current":        "3\n",
		"pids.max":            "max\n",
		"io.stat":             "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=512 wbytes=0 rios=1 wios=0\n",
		"cpu.pressure":        "some avg10=1.50 avg60=0.50 avg300=0.10 total=2000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=100\n",
		"memory.pressure":     "some avg10=0.00 avg60=0.00 avg300=0.00 total=30\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=20\n",
		"io.pressure":         "some avg10=0.25 avg60=0.00 avg300=0.00 total=7\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=6\n",
	}
}

// v1Files is one cgroup in each of the cpuacct, memory and pids v1
// hierarchies under root.
func v1Files(t *testing.T, root, limit string) map[string]string {
	writeFiles(t, filepath.Join(root, "cpuacct"), map[string]string{
		"cpuacct.usage":        "2500000\n",
		"cpuacct.usage_percpu": "1500000 1000000\n",
		"cpuacct.stat":         "user 2\nsystem 1\n",
	})
	writeFiles(t, filepath.Join(root, "memory"), map[string]string{
		"memory.usage_in_bytes":          "10485760\n",
		"memory.max_usage_in_bytes":      "12582912\n",
		"memory.failcnt":                 "2\n",
		"memory.kmem.usage_in_bytes":     "524288\n",
		"memory.kmem.max_usage_in_bytes": "524288\n",
		"memory.kmem.failcnt":            "0\n",
		"memory.kmem.limit_in_bytes":     "9223372036854771712\n",
		"memory.limit_in_bytes":          limit + "\n",
		"memory.use_hierarchy":           "1\n",
		"memory.stat":                    "cache 6291456\nrss 100\ntotal_cache 6291456\ntotal_rss 3145728\ntotal_mapped_file 1048576\ntotal_active_file 4194304\ntotal_inactive_file 2097152\ntotal_pgfault 1234\ntotal_pgmajfault 5\n",
	})
	writeFiles(t, filepath.Join(root, "pids"), map[string]string{"pids.current": "3\n", "pids.max": "max\n"})
	return map[string]string{
		"cpuacct": filepath.Join(root, "cpuacct"),
		"memory":  filepath.Join(root, "memory"),
		"pids":    filepath.Join(root, "pids"),
	}
}

func TestRead(t *testing.T) {
	base := Sample{
		CPUUsageNanos: 2500000,
		MemoryUsage:   10485760,
		WorkingSet:    10485760 - 2097152,
		RSS:           3145728,
		PageFaults:    1234, MajorPageFaults: 5,
		MemoryMaxUsage: 12582912,
		Cache:          6291456, MappedFile: 1048576, ActiveFile: 4194304, InactiveFile: 2097152,
		KernelMemory: 524288,
		Processes:    3,
	}
	// v2 counts CPU time in microseconds, v1's cpuacct.stat in ticks of
	// 10 ms; only v2's file here has a CFS quota's counters.
	v2CPU := func(s Sample) Sample {
		s.CPUUserNanos, s.CPUSystemNanos = 2000000, 500000
		s.CFSPeriods, s.CFSThrottledPeriods, s.CFSThrottledNanos = 10, 3, 700000
		s.IO = []IODevice{
			{Major: 8, Minor: 0, ReadBytes: 4096, WriteBytes: 8192, Reads: 1, Writes: 2},
			{Major: 253, Minor: 1, ReadBytes: 512, Reads: 1},
		}
		return s
	}
	v1CPU := func(s Sample) Sample {
		s.CPUUserNanos, s.CPUSystemNanos = 20000000, 10000000
		s.MemoryFailcnt = 2
		return s
	}
	tests := []struct {
		name  string
		paths func(t *testing.T, dir string) map[string]string
		want  func(s Sample) Sample
	}{
		{
			name: "v2 with limits and PSI",
			paths: func(t *testing.T, dir string) map[string]string {
				writeFiles(t, dir, v2Files("33554432", "1048576"))
				return map[string]string{"": dir}
			},
			want: func(s Sample) Sample {
				s = v2CPU(s)
				s.MemoryLimit, s.SwapUsage, s.SwapLimit = 33554432, 4096, 1048576
				s.CPUPressure = &Pressure{Some: PressureData{TotalNanos: 2000000, Avg10: 1.5, Avg60: 0.5, Avg300: 0.1}, Full: PressureData{TotalNanos: 100000}}
				s.MemoryPressure = &Pressure{Some: PressureData{TotalNanos: 30000}, Full: PressureData{TotalNanos: 20000}}
				s.IOPressure = &Pressure{Some: PressureData{TotalNanos: 7000, Avg10: 0.25}, Full: PressureData{TotalNanos: 6000}}
				return s
			},
		},
		{
			name: "v2 without limits or PSI",
			paths: func(t *testing.T, dir string) map[string]string {
				f := v2Files("max", "max")
				delete(f, "cpu.pressure")
				delete(f, "memory.pressure")
				delete(f, "io.pressure")
				writeFiles(t, dir, f)
				return map[string]string{"": dir}
			},
			want: func(s Sample) Sample {
				s = v2CPU(s)
				s.SwapUsage = 4096
				return s
			},
		},
		{
			name: "v1 with a limit",
			paths: func(t *testing.T, dir string) map[string]string {
				return v1Files(t, dir, "33554432")
			},
			want: func(s Sample) Sample {
				s = v1CPU(s)
				s.MemoryLimit = 33554432
				return s
			},
		},
		{
			name: "v1 without a limit",
			paths: func(t *testing.T, dir string) map[string]string {
				return v1Files(t, dir, "9223372036854771712")
			},
			want: v1CPU,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(tc.paths(t, t.TempDir()))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if want := tc.want(base); !reflect.DeepEqual(got, want) {
				t.Errorf("Read =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestReadNoPaths(t *testing.T) {
	if _, err := Read(nil); err == nil {
		t.Error("Read(nil) succeeded")
	}
}

func TestWorkingSet(t *testing.T) {
	for _, tc := range []struct{ usage, inactive, want uint64 }{
		{100, 30, 70},
		{100, 100, 0},
		{100, 200, 0}, // counters read at different instants
	} {
		if got := workingSet(tc.usage, tc.inactive); got != tc.want {
			t.Errorf("workingSet(%d, %d) = %d, want %d", tc.usage, tc.inactive, got, tc.want)
		}
	}
}

func TestLayout(t *testing.T) {
	if got, want := Layout("/sys/fs/cgroup", "/crib/abc", true), map[string]string{"": "/sys/fs/cgroup/crib/abc"}; !reflect.DeepEqual(got, want) {
		t.Errorf("v2 Layout = %v, want %v", got, want)
	}
	got := Layout("/sys/fs/cgroup", "/crib/abc", false)
	if got["memory"] != "/sys/fs/cgroup/memory/crib/abc" || got["cpuacct"] != "/sys/fs/cgroup/cpuacct/crib/abc" || got["pids"] != "/sys/fs/cgroup/pids/crib/abc" {
		t.Errorf("v1 Layout = %v", got)
	}
}
