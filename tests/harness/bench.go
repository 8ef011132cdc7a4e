package harness

import (
	"fmt"
	"os"
	"sort"
	"time"
)

// Percentile is the nearest-rank p-th percentile of ds (p in 1..100),
// rounded to 100µs; 0 for no samples.
func Percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (p*len(s)+99)/100 - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i].Round(100 * time.Microsecond)
}

// BenchReport prints a benchmark's report and appends it to the file
// $CRIB_BENCH_OUT names, if set, so that `make bench` leaves one file of
// results.
func BenchReport(report string) error {
	fmt.Print(report)
	out := os.Getenv("CRIB_BENCH_OUT")
	if out == "" {
		return nil
	}
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("CRIB_BENCH_OUT: %w", err)
	}
	if _, err := f.WriteString(report); err != nil {
		f.Close()
		return fmt.Errorf("CRIB_BENCH_OUT: %w", err)
	}
	return f.Close()
}
