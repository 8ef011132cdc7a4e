package overlay

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultConflistName is the file WriteDefaultConflist writes.
const DefaultConflistName = "10-crib-vxlan.conflist"

// conflistVersion is the spec version of the default conflist: 1.0.0, the
// newest distributions' portmap (e.g. Debian 12's v1.1.1) accepts.
const conflistVersion = "1.0.0"

// ConflistOptions are the node-specific values of the default conflist.
type ConflistOptions struct {
	// Name is the network's name.
	Name string
	// Bridge, SubnetFile and DataDir are crib-vxlan's keys.
	Bridge     string
	SubnetFile string
	DataDir    string
}

// WriteDefaultConflist writes crib-vxlan + portmap into confDir unless it
// already holds a network config (any .conflist, .conf or .json file). It
// reports whether it wrote one.
func WriteDefaultConflist(confDir string, o ConflistOptions) (bool, error) {
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return false, fmt.Errorf("default conflist: %w", err)
	}
	ents, err := os.ReadDir(confDir)
	if err != nil {
		return false, fmt.Errorf("default conflist: %w", err)
	}
	for _, e := range ents {
		switch filepath.Ext(e.Name()) {
		case ".conflist", ".conf", ".json":
			if !strings.HasPrefix(e.Name(), ".") {
				return false, nil
			}
		}
	}
	list := map[string]any{
		"cniVersion": conflistVersion,
		"name":       o.Name,
		"plugins": []map[string]any{
			{"type": "crib-vxlan", "bridge": o.Bridge, "subnetFile": o.SubnetFile, "dataDir": o.DataDir},
			{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
		},
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return false, fmt.Errorf("default conflist: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(confDir, DefaultConflistName), append(b, '\n')); err != nil {
		return false, fmt.Errorf("default conflist: %w", err)
	}
	return true, nil
}
