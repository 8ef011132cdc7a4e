//go:build integration

package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/server/metrics/metricstest"
)

// metricsAddrRE finds the address cribd logs when its metrics server is up.
var metricsAddrRE = regexp.MustCompile(`msg="metrics server listening" address="?([0-9.:\[\]]+)"?`)

// scrape fetches /metrics and parses it.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s\n%s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// wantSeries checks each series in want (name{labels} → value) is in fams.
func wantSeries(t *testing.T, stage string, fams map[string]*dto.MetricFamily, want []series) {
	t.Helper()
	for _, s := range want {
		got, ok := metricstest.Value(fams, s.name, s.labels)
		if !ok {
			t.Errorf("%s: no series %s%v", stage, s.name, s.labels)
		} else if got != s.value {
			t.Errorf("%s: %s%v = %v, want %v", stage, s.name, s.labels, got, s.value)
		}
	}
}

type series struct {
	name   string
	labels map[string]string
	value  float64
}

func rpc(method, code string) map[string]string {
	svc := "runtime.v1.RuntimeService"
	if strings.Contains(method, "Image") {
		svc = "runtime.v1.ImageService"
	}
	if code == "" {
		return map[string]string{"service": svc, "method": method}
	}
	return map[string]string{"service": svc, "method": method, "code": code}
}

func state(s string) map[string]string { return map[string]string{"state": s} }

// TestMetrics runs cribd with [metrics] on a free loopback port, pulls an
// image, runs a pod with a container, makes a call that fails, stops the
// pod, and checks the scraped series at each step.
func TestMetrics(t *testing.T) {
	reg := startRegistry(t, RegistryOptions{})
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(conf, []byte(registriesConf(reg.Addr, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	h := start(t, Options{ExtraConfig: fmt.Sprintf("\n[image]\nregistries_conf = %q\n\n[metrics]\naddress = \"127.0.0.1:0\"\n", conf)})
	m := metricsAddrRE.FindStringSubmatch(h.Log())
	if m == nil {
		t.Fatalf("cribd did not log its metrics address:\n%s", tail(h.Log(), 30))
	}
	addr := m[1]

	fams := scrape(t, addr)
	wantSeries(t, "idle", fams, []series{
		{"crib_pods", state("ready"), 0},
		{"crib_pods", state("notready"), 0},
		{"crib_containers", state("running"), 0},
		{"crib_image_pull_bytes_total", nil, 0},
	})
	if _, ok := metricstest.Value(fams, "go_goroutines", nil); !ok {
		t.Error("no go_goroutines: the Go collector is not registered")
	}

	h.Crictl("pull", "busybox")
	pod := podConfig("metrics")
	pod["log_directory"] = filepath.Join(h.Dir, "logs")
	podID := h.RunPod(pod)
	ctr := h.CreateContainer(podID, shellContainer("sleep", "exec sleep 600"), pod)
	h.Crictl("start", ctr)
	h.waitContainerState(ctr, "CONTAINER_RUNNING")

	// A call that fails: the status of a pod that does not exist.
	_, err := h.client().PodSandboxStatus(ctx30(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "0000000000000000"})
	wantCode(t, "PodSandboxStatus of a missing pod", err, codes.NotFound, "0000000000000000")

	fams = scrape(t, addr)
	wantSeries(t, "pod running", fams, []series{
		{"crib_pods", state("ready"), 1},
		{"crib_pods", state("notready"), 0},
		{"crib_containers", state("running"), 1},
		{"crib_containers", state("created"), 0},
		{"crib_grpc_requests_total", rpc("RunPodSandbox", "OK"), 1},
		{"crib_grpc_request_duration_seconds", rpc("RunPodSandbox", ""), 1},
		{"crib_grpc_requests_total", rpc("PodSandboxStatus", "NotFound"), 1},
		{"crib_grpc_requests_total", rpc("PullImage", "OK"), 1},
		{"crib_cni_operation_duration_seconds", map[string]string{"operation": "ADD", "result": "success"}, 1},
		{"crib_image_pull_duration_seconds", map[string]string{"result": "success"}, 1},
	})
	if b, _ := metricstest.Value(fams, "crib_image_pull_bytes_total", nil); b < 1000 {
		t.Errorf("crib_image_pull_bytes_total = %v after pulling busybox, want its blobs' size", b)
	}
	if _, ok := metricstest.Value(fams, "crib_grpc_requests_total", rpc("RunPodSandbox", "NotFound")); ok {
		t.Error("a RunPodSandbox NotFound series exists though none failed")
	}

	h.Crictl("stopp", podID)
	fams = scrape(t, addr)
	wantSeries(t, "pod stopped", fams, []series{
		{"crib_pods", state("ready"), 0},
		{"crib_pods", state("notready"), 1},
		{"crib_containers", state("running"), 0},
		{"crib_containers", state("exited"), 1},
		{"crib_cni_operation_duration_seconds", map[string]string{"operation": "DEL", "result": "success"}, 1},
	})

	h.Crictl("rmp", podID)
	eventually(t, 10*time.Second, "no pods counted", func() (bool, string) {
		fams := scrape(t, addr)
		pods, _ := metricstest.Value(fams, "crib_pods", state("notready"))
		ctrs, _ := metricstest.Value(fams, "crib_containers", state("exited"))
		return pods == 0 && ctrs == 0, fmt.Sprintf("notready pods %v, exited containers %v", pods, ctrs)
	})
}
