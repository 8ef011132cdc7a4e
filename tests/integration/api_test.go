//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// conn dials cribd's socket with a plain gRPC client, closed at cleanup.
func (h *Harness) conn() *grpc.ClientConn {
	h.t.Helper()
	conn, err := grpc.NewClient("unix://"+h.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return conn
}

// client is a CRI RuntimeService client on the harness's socket.
func (h *Harness) client() runtimeapi.RuntimeServiceClient {
	return runtimeapi.NewRuntimeServiceClient(h.conn())
}

func ctx30(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantCode checks err's gRPC code and that its message has want.
func wantCode(t *testing.T, what string, err error, code codes.Code, want string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code {
		t.Errorf("%s: got %v, want code %s", what, err, code)
		return
	}
	if !strings.Contains(st.Message(), want) {
		t.Errorf("%s: message %q does not name %q", what, st.Message(), want)
	}
}

// TestBadRequests: bad input gets InvalidArgument naming the field, and an
// unknown pod NotFound.
func TestBadRequests(t *testing.T) {
	h := start(t, Options{})
	c := h.client()
	ctx := ctx30(t)

	_, err := c.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}})
	wantCode(t, "RunPodSandbox with nil metadata", err, codes.InvalidArgument, "metadata")

	_, err = c.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "", Uid: "uid-empty-name", Namespace: "crib-it"},
	}})
	wantCode(t, "RunPodSandbox with empty metadata.name", err, codes.InvalidArgument, "metadata.name")

	_, err = c.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: randomHex(32)})
	wantCode(t, "PodSandboxStatus of an unknown ID", err, codes.NotFound, "")

	if pods := h.Pods(); len(pods) != 0 {
		t.Errorf("crictl pods lists %v after rejected requests", pods)
	}
}

// TestVersion: cribd says it is crib and speaks CRI v1.
func TestVersion(t *testing.T) {
	h := start(t, Options{})
	v, err := h.client().Version(ctx30(t), &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	if v.RuntimeName != "crib" || v.RuntimeApiVersion != "v1" {
		t.Errorf("Version: runtime %q API %q, want crib and v1", v.RuntimeName, v.RuntimeApiVersion)
	}
	if v.RuntimeVersion == "" {
		t.Errorf("Version: empty runtime_version")
	}
	out := h.Crictl("version")
	for _, want := range []string{"RuntimeName:  crib", "RuntimeApiVersion:  v1"} {
		if !strings.Contains(out, want) {
			t.Errorf("crictl version:\n%s\nwant a line %q", out, want)
		}
	}
}

// networkCondition returns the NetworkReady condition of Status.
func networkCondition(ctx context.Context, c runtimeapi.RuntimeServiceClient) (*runtimeapi.RuntimeCondition, []*runtimeapi.RuntimeCondition, error) {
	resp, err := c.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return nil, nil, err
	}
	for _, cond := range resp.GetStatus().GetConditions() {
		if cond.Type == runtimeapi.NetworkReady {
			return cond, resp.GetStatus().GetConditions(), nil
		}
	}
	return nil, resp.GetStatus().GetConditions(), nil
}

// TestNetworkNotReady: a CNI config that does not parse makes NetworkReady
// false with reason NetworkPluginNotReady and the parse error; a valid one
// written later makes it true without a restart.
func TestNetworkNotReady(t *testing.T) {
	const bad = `{"cniVersion": "1.0.0", "name": "bad", "plugins": [}`
	var v any
	parseErr := json.Unmarshal([]byte(bad), &v).Error()

	h := start(t, Options{ConfFiles: map[string]string{"10-bad.conflist": bad}})
	c := h.client()
	ctx := ctx30(t)

	cond, all, err := networkCondition(ctx, c)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	switch {
	case cond == nil:
		t.Errorf("Status has no NetworkReady condition: %v", all)
	case cond.Status:
		t.Errorf("NetworkReady is true with an unparsable conflist: %v", cond)
	default:
		if cond.Reason != "NetworkPluginNotReady" {
			t.Errorf("NetworkReady reason %q, want NetworkPluginNotReady", cond.Reason)
		}
		if !strings.Contains(cond.Message, parseErr) {
			t.Errorf("NetworkReady message %q does not contain the parse error %q", cond.Message, parseErr)
		}
	}
	for _, cnd := range all {
		if cnd.Type == runtimeapi.RuntimeReady && !cnd.Status {
			t.Errorf("RuntimeReady is false: %v", cnd)
		}
	}

	h.WriteConf("05-good.conflist", defaultConflist)
	if err := removeFile(h.ConfDir + "/10-bad.conflist"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "NetworkReady after a valid conflist appeared", func() (bool, string) {
		cond, all, err := networkCondition(ctx, c)
		if err != nil {
			return false, err.Error()
		}
		if cond == nil {
			return false, "no NetworkReady condition in " + conditionsString(all)
		}
		return cond.Status, conditionsString(all)
	})
	// And the network works.
	id := h.RunPod(podConfig("after-reload"))
	if ip := h.Inspect(id).Status.Network.IP; !strings.HasPrefix(ip, podPrefix) {
		t.Errorf("pod after the reload: IP %q, want one in %s", ip, podSubnet)
	}
}

func conditionsString(all []*runtimeapi.RuntimeCondition) string {
	var parts []string
	for _, c := range all {
		parts = append(parts, c.String())
	}
	return "[" + strings.Join(parts, "; ") + "]"
}
