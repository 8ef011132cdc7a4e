package harness

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	twenty := ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
	for _, tc := range []struct {
		name string
		ds   []time.Duration
		p    int
		want time.Duration
	}{
		{"no samples", nil, 50, 0},
		{"one sample", ms(7), 50, 7 * time.Millisecond},
		{"p50 of 20 is the 10th", twenty, 50, 10 * time.Millisecond},
		{"p99 of 20 is the largest", twenty, 99, 20 * time.Millisecond},
		{"p100 of 20 is the largest", twenty, 100, 20 * time.Millisecond},
		{"p1 of 20 is the smallest", twenty, 1, 1 * time.Millisecond},
		{"p50 of 3 is the middle", ms(30, 10, 20), 50, 20 * time.Millisecond},
		{"rounded to 100µs", []time.Duration{1234567 * time.Nanosecond}, 50, 1200 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.ds, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %d) = %v, want %v", tc.ds, tc.p, got, tc.want)
			}
		})
	}
}
