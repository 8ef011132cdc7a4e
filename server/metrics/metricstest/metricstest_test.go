package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestSample(t *testing.T) {
	reg := prometheus.NewRegistry()
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "t_gauge"}, []string{"state"})
	counter := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_total"}, []string{"a", "b"})
	plain := prometheus.NewCounter(prometheus.CounterOpts{Name: "t_plain_total"})
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "t_seconds"}, []string{"op"})
	reg.MustRegister(gauge, counter, plain, hist)
	gauge.WithLabelValues("ready").Set(2)
	gauge.WithLabelValues("notready").Set(0)
	counter.WithLabelValues("x", "y").Add(3)
	plain.Add(7)
	hist.WithLabelValues("ADD").Observe(0.1)
	hist.WithLabelValues("ADD").Observe(5)

	for _, tc := range []struct {
		name      string
		series    string
		labels    map[string]string
		want      float64
		wantFound bool
	}{
		{"gauge", "t_gauge", map[string]string{"state": "ready"}, 2, true},
		{"gauge at zero exists", "t_gauge", map[string]string{"state": "notready"}, 0, true},
		{"other label value", "t_gauge", map[string]string{"state": "gone"}, 0, false},
		{"counter", "t_total", map[string]string{"a": "x", "b": "y"}, 3, true},
		{"labels must all match", "t_total", map[string]string{"a": "x"}, 0, false},
		{"no extra labels", "t_total", map[string]string{"a": "x", "b": "y", "c": ""}, 0, false},
		{"unlabelled", "t_plain_total", nil, 7, true},
		{"histogram is its count", "t_seconds", map[string]string{"op": "ADD"}, 2, true},
		{"missing name", "t_nothing", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, found := Sample(t, reg, tc.series, tc.labels)
			if got != tc.want || found != tc.wantFound {
				t.Errorf("Sample(%s%v) = %v, %v; want %v, %v", tc.series, tc.labels, got, found, tc.want, tc.wantFound)
			}
		})
	}
}
