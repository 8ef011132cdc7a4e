package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/sandbox"
	"github.com/crib-runtime/crib/server/metrics/metricstest"
)

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestNewTwiceOnOneRegistryFails(t *testing.T) {
	_, reg := newTestMetrics(t)
	if _, err := New(reg); err == nil {
		t.Fatal("second New on one registry succeeded; want a duplicate registration error")
	}
}

func TestSplitMethod(t *testing.T) {
	tests := []struct {
		in, service, method string
	}{
		{"/runtime.v1.RuntimeService/Version", "runtime.v1.RuntimeService", "Version"},
		{"/runtime.v1.ImageService/PullImage", "runtime.v1.ImageService", "PullImage"},
		{"Version", "", "Version"},
		{"/", "", "/"},
		{"/svc/", "", "/svc/"},
	}
	for _, tc := range tests {
		s, m := splitMethod(tc.in)
		if s != tc.service || m != tc.method {
			t.Errorf("splitMethod(%q) = %q, %q; want %q, %q", tc.in, s, m, tc.service, tc.method)
		}
	}
}

func TestUnaryInterceptorCountsByCode(t *testing.T) {
	m, reg := newTestMetrics(t)
	icpt := m.UnaryInterceptor()
	info := &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/PodSandboxStatus"}
	results := []error{
		nil,
		status.Error(codes.NotFound, "pod sandbox \"x\" not found"),
		status.Error(codes.NotFound, "pod sandbox \"y\" not found"),
		errors.New("not a status"),
	}
	for _, res := range results {
		_, _ = icpt(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, res })
	}
	for code, want := range map[string]float64{"OK": 1, "NotFound": 2, "Unknown": 1} {
		got, _ := metricstest.Sample(t, reg, "crib_grpc_requests_total", map[string]string{
			"service": "runtime.v1.RuntimeService", "method": "PodSandboxStatus", "code": code,
		})
		if got != want {
			t.Errorf("requests_total{code=%s} = %v, want %v", code, got, want)
		}
	}
	got, _ := metricstest.Sample(t, reg, "crib_grpc_request_duration_seconds", map[string]string{
		"service": "runtime.v1.RuntimeService", "method": "PodSandboxStatus",
	})
	if got != float64(len(results)) {
		t.Errorf("request_duration_seconds count = %v, want %d", got, len(results))
	}
}

func TestStreamInterceptorCountsByCode(t *testing.T) {
	m, reg := newTestMetrics(t)
	icpt := m.StreamInterceptor()
	info := &grpc.StreamServerInfo{FullMethod: "/runtime.v1.RuntimeService/GetContainerEvents", IsServerStream: true}
	_ = icpt(nil, nil, info, func(any, grpc.ServerStream) error { return status.Error(codes.Canceled, "gone") })
	got, _ := metricstest.Sample(t, reg, "crib_grpc_requests_total", map[string]string{
		"service": "runtime.v1.RuntimeService", "method": "GetContainerEvents", "code": "Canceled",
	})
	if got != 1 {
		t.Errorf("requests_total{code=Canceled} = %v, want 1", got)
	}
}

func TestObserveCNIAndPull(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.ObserveCNI("ADD", time.Millisecond, nil)
	m.ObserveCNI("ADD", time.Millisecond, errors.New("plugin failed"))
	m.ObserveCNI("DEL", time.Millisecond, nil)
	m.ObservePull(time.Second, 1000, nil)
	m.ObservePull(time.Second, 24, errors.New("unauthorized"))
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"crib_cni_operation_duration_seconds", map[string]string{"operation": "ADD", "result": "success"}, 1},
		{"crib_cni_operation_duration_seconds", map[string]string{"operation": "ADD", "result": "error"}, 1},
		{"crib_cni_operation_duration_seconds", map[string]string{"operation": "DEL", "result": "success"}, 1},
		{"crib_image_pull_duration_seconds", map[string]string{"result": "success"}, 1},
		{"crib_image_pull_duration_seconds", map[string]string{"result": "error"}, 1},
		{"crib_image_pull_bytes_total", nil, 1024},
	} {
		if got, _ := metricstest.Sample(t, reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

// inventory is a fixed list of pods and containers.
type inventory struct {
	pods       []sandbox.View
	containers []sandbox.ContainerView
}

func (i inventory) List(sandbox.Filter) []sandbox.View { return i.pods }
func (i inventory) Containers(sandbox.ContainerFilter) []sandbox.ContainerView {
	return i.containers
}

func ctrIn(s shimapi.Status) sandbox.ContainerView {
	return sandbox.ContainerView{Shim: shimapi.State{Status: s}}
}

func TestInventoryGauges(t *testing.T) {
	tests := []struct {
		name       string
		inv        inventory
		pods       map[string]float64
		containers map[string]float64
	}{
		{
			name:       "empty reports zeros",
			pods:       map[string]float64{"ready": 0, "notready": 0},
			containers: map[string]float64{"created": 0, "running": 0, "exited": 0, "unknown": 0},
		},
		{
			name: "mixed",
			inv: inventory{
				pods: []sandbox.View{{Ready: true}, {Ready: true}, {Ready: false}},
				containers: []sandbox.ContainerView{
					ctrIn(shimapi.StatusRunning), ctrIn(shimapi.StatusRunning), ctrIn(shimapi.StatusRunning),
					ctrIn(shimapi.StatusCreated), ctrIn(shimapi.StatusStopped), ctrIn(shimapi.StatusUnknown), ctrIn(""),
				},
			},
			pods:       map[string]float64{"ready": 2, "notready": 1},
			containers: map[string]float64{"created": 1, "running": 3, "exited": 1, "unknown": 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			if err := RegisterInventory(reg, tc.inv); err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]map[string]float64{"crib_pods": tc.pods, "crib_containers": tc.containers} {
				for state, v := range want {
					got, ok := metricstest.Sample(t, reg, name, map[string]string{"state": state})
					if !ok || got != v {
						t.Errorf("%s{state=%q} = %v (present %v), want %v", name, state, got, ok, v)
					}
				}
			}
		})
	}
}

func TestServeExposesRegistry(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.ObserveCNI("DEL", time.Millisecond, nil)
	log := logrus.New()
	log.SetOutput(io.Discard)
	srv, err := Serve("127.0.0.1:0", reg, log)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + srv.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	for _, want := range []string{
		`crib_cni_operation_duration_seconds_count{operation="DEL",result="success"} 1`,
		"go_goroutines ",
		"process_open_fds ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := http.Get("http://" + srv.Addr + "/metrics"); err == nil {
		t.Error("server still answers after Close")
	}
}

func TestServeBadAddress(t *testing.T) {
	_, reg := newTestMetrics(t)
	l, err := Serve("127.0.0.1:0", reg, logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// The port is taken now.
	if _, err := Serve(l.Addr, reg, logrus.New()); err == nil || !strings.Contains(err.Error(), l.Addr) {
		t.Fatalf("Serve on a taken port: err = %v, want one naming %s", err, l.Addr)
	}
}
