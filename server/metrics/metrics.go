// Package metrics is cribd's Prometheus instrumentation: per-RPC latency
// and result codes (gRPC interceptors), CNI ADD/DEL latency, image pull
// bytes and duration, and pods and containers by state, counted from the
// sandbox manager at scrape time. Everything is registered on a registry
// the daemon owns and served over HTTP at /metrics (Serve).
//
// The packages that do the work (network, image) know nothing of
// Prometheus: they take plain callbacks, which Metrics' Observe methods
// satisfy.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// namespace prefixes every crib series.
const namespace = "crib"

// latencyBuckets span a fast in-memory RPC (half a millisecond) to a slow
// image pull or container stop (two minutes), in seconds.
func latencyBuckets() []float64 {
	return []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
}

// Result label values of operations that succeed or fail.
const (
	resultSuccess = "success"
	resultError   = "error"
)

// Metrics holds cribd's event metrics (the state gauges live in a
// collector; see RegisterInventory). It is safe for concurrent use.
type Metrics struct {
	rpcSeconds  *prometheus.HistogramVec
	rpcTotal    *prometheus.CounterVec
	cniSeconds  *prometheus.HistogramVec
	pullSeconds *prometheus.HistogramVec
	pullBytes   prometheus.Counter
}

// New creates the event metrics and registers them, with the Go runtime
// and process collectors, on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		rpcSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Subsystem: "grpc",
			Name:      "request_duration_seconds",
			Help:      "Time cribd took to answer a CRI call (for a stream, how long it was open), by service and method.",
			Buckets:   latencyBuckets(),
		}, []string{"service", "method"}),
		rpcTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Subsystem: "grpc",
			Name:      "requests_total",
			Help:      "CRI calls answered, by service, method and gRPC status code (OK or the error's code).",
		}, []string{"service", "method", "code"}),
		cniSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Subsystem: "cni",
			Name:      "operation_duration_seconds",
			Help:      "Time a CNI operation (ADD or DEL of one network list) took, by operation and result.",
			Buckets:   latencyBuckets(),
		}, []string{"operation", "result"}),
		pullSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Subsystem: "image",
			Name:      "pull_duration_seconds",
			Help:      "Time an image download from a registry took, by result. Pulls merged with one in flight count once.",
			Buckets:   latencyBuckets(),
		}, []string{"result"}),
		pullBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Subsystem: "image",
			Name:      "pull_bytes_total",
			Help:      "Bytes of image blobs downloaded from registries (blobs already present are not downloaded).",
		}),
	}
	for _, c := range []prometheus.Collector{
		m.rpcSeconds, m.rpcTotal, m.cniSeconds, m.pullSeconds, m.pullBytes,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveCNI records one CNI operation ("ADD" or "DEL"); it fits
// network.Options.Observe.
func (m *Metrics) ObserveCNI(op string, took time.Duration, err error) {
	m.cniSeconds.WithLabelValues(op, result(err)).Observe(took.Seconds())
}

// ObservePull records one image download: how long it took and how many
// bytes it fetched (also those of a pull that failed part way); it fits
// image.Options.ObservePull.
func (m *Metrics) ObservePull(took time.Duration, bytes uint64, err error) {
	m.pullSeconds.WithLabelValues(result(err)).Observe(took.Seconds())
	m.pullBytes.Add(float64(bytes))
}

func result(err error) string {
	if err != nil {
		return resultError
	}
	return resultSuccess
}
