package network

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/containernetworking/cni/libcni"
)

// confExtensions are the names a network config file may end with: a list
// of plugins (.conflist) or a single plugin (.conf, .json).
var confExtensions = []string{".conflist", ".conf", ".json"}

// loadedConfig is the outcome of one load of the conf dir: the network
// config list and its file, or the error that says why there is none.
type loadedConfig struct {
	list *libcni.NetworkConfigList
	file string
	err  error
}

// loadConfig reads the first network config file in dir by name. A file that
// does not parse is an error naming it; later files are not tried, so the
// network in use never depends on which files happen to be broken.
func loadConfig(dir string) loadedConfig {
	files, err := libcni.ConfFiles(dir, confExtensions)
	if err != nil {
		return loadedConfig{err: fmt.Errorf("read network config dir %s: %w", dir, err)}
	}
	if len(files) == 0 {
		return loadedConfig{err: fmt.Errorf("no network config found in %s", dir)}
	}
	sort.Strings(files)
	file := files[0]
	list, err := loadFile(file)
	if err != nil {
		return loadedConfig{file: file, err: fmt.Errorf("invalid network config %s: %w", file, err)}
	}
	return loadedConfig{list: list, file: file}
}

// loadFile parses one config file; a single-plugin file becomes a list of
// one.
func loadFile(file string) (*libcni.NetworkConfigList, error) {
	if filepath.Ext(file) == ".conflist" {
		return libcni.ConfListFromFile(file)
	}
	conf, err := libcni.ConfFromFile(file) //nolint:staticcheck // .conf files are still common
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromConf(conf) //nolint:staticcheck // as above
}
