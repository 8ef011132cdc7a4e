package server

import (
	"context"
	"encoding/json"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// infoNetwork is a ready network with details for Status(verbose).
type infoNetwork struct{}

func (infoNetwork) Ready() (bool, string) { return true, "" }
func (infoNetwork) Info() any             { return map[string]string{"file": "10-net.conflist"} }

// readyNetwork is a ready network without details.
type readyNetwork struct{}

func (readyNetwork) Ready() (bool, string) { return true, "" }

// TestStatusVerbose: the info map only when asked, with Options.Info and
// the network's details; the server's own map is never handed out.
func TestStatusVerbose(t *testing.T) {
	tests := []struct {
		name     string
		network  NetworkStatus
		verbose  bool
		wantKeys []string
	}{
		{name: "not verbose", network: infoNetwork{}},
		{name: "verbose", network: infoNetwork{}, verbose: true, wantKeys: []string{"config", "network"}},
		{name: "verbose, network without details", network: readyNetwork{}, verbose: true, wantKeys: []string{"config"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fixed := map[string]string{"config": `{"log":{"level":"debug"}}`}
			s := New(Options{Network: tc.network, Info: fixed})
			resp, err := s.Status(context.Background(), &runtimeapi.StatusRequest{Verbose: tc.verbose})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Info) != len(tc.wantKeys) {
				t.Fatalf("info = %v, want keys %v", resp.Info, tc.wantKeys)
			}
			for _, k := range tc.wantKeys {
				var v any
				if err := json.Unmarshal([]byte(resp.Info[k]), &v); err != nil {
					t.Errorf("info[%q] = %q is not JSON: %v", k, resp.Info[k], err)
				}
			}
			if tc.verbose {
				resp.Info["config"] = "changed"
				if fixed["config"] == "changed" {
					t.Error("Status handed out Options.Info itself")
				}
			}
		})
	}
}
