package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/crib-runtime/crib/internal/cgroup"
)

// DropInDirName is the drop-in directory's name next to the main file:
// /etc/crib/crib.d for /etc/crib/crib.toml.
const DropInDirName = "crib.d"

// Sources says which files make the configuration: the main file, then
// every *.toml file of the drop-in directory in lexical order of name (as
// CRI-O's crio.conf.d and systemd's *.conf.d). A later file overrides the
// keys it sets and only those: tables merge key by key, an array replaces
// the whole array.
type Sources struct {
	// Main is the main config file.
	Main string
	// MainOptional lets Main be missing (cribd's default path): the
	// defaults stand in for it.
	MainOptional bool
	// DropInDir holds the drop-ins; empty means crib.d next to Main.
	DropInDir string
	// DropInDirRequired makes a missing DropInDir an error (one named on
	// the command line); the default directory may be missing.
	DropInDirRequired bool
}

// Dir is the drop-in directory s names.
func (s Sources) Dir() string {
	if s.DropInDir != "" {
		return s.DropInDir
	}
	return filepath.Join(filepath.Dir(s.Main), DropInDirName)
}

// Files lists the files s names that exist, in the order they apply.
func (s Sources) Files() ([]string, error) {
	var files []string
	switch _, err := os.Stat(s.Main); {
	case err == nil:
		files = append(files, s.Main)
	case s.MainOptional && errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("read config: %w", err)
	}
	dir := s.Dir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !s.DropInDirRequired && errors.Is(err, fs.ErrNotExist) {
			return files, nil
		}
		return nil, fmt.Errorf("read config drop-in directory: %w", err)
	}
	// ReadDir sorts by name, bytewise: "10-a.toml" before "9-b.toml", as
	// ls in the C locale shows them.
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".toml") || strings.HasPrefix(name, ".") {
			continue // editors' backups, package managers' .dpkg-old and the like
		}
		p := filepath.Join(dir, name)
		// A symlink to a file counts (config management links drop-ins in).
		if info, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("read config drop-in: %w", err)
		} else if !info.Mode().IsRegular() {
			continue
		}
		files = append(files, p)
	}
	return files, nil
}

// LoadSources reads the files s names over the defaults, in order, and
// validates the result once, so a drop-in may complete what an earlier file
// began (a cgroup parent for the driver another file chose). It returns the
// files read. An error names the file and the key: a syntax error, an
// unknown key or a wrong type names the file it is in; a bad value names
// the last file that set the key.
func LoadSources(s Sources) (Config, []string, error) {
	cfg := Default()
	files, err := s.Files()
	if err != nil {
		return cfg, nil, err
	}
	setBy := map[string]string{} // key → the last file that set it
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return cfg, files, fmt.Errorf("read config: %w", err)
		}
		md, err := decode(data, &cfg)
		if err != nil {
			return cfg, files, fmt.Errorf("config %s: %w", f, err)
		}
		for _, k := range md.Keys() {
			setBy[k.String()] = f
		}
	}
	if _, ok := setBy["runtime.cgroup_parent"]; !ok {
		cfg.Runtime.CgroupParent = cgroup.DefaultParent(cgroup.Driver(cfg.Runtime.CgroupDriver))
	}
	if err := cfg.Validate(); err != nil {
		if f, ok := setBy[errorKey(err)]; ok {
			return cfg, files, fmt.Errorf("config %s: %w", f, err)
		}
		if len(files) > 0 {
			return cfg, files, fmt.Errorf("config %s: %w", strings.Join(files, ", "), err)
		}
		return cfg, files, err
	}
	return cfg, files, nil
}

// decode decodes TOML data over cfg: keys the data does not name keep
// their value. An unknown key is an error.
func decode(data []byte, cfg *Config) (toml.MetaData, error) {
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return md, fmt.Errorf("%s", perr.Error())
		}
		return md, err
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, 0, len(undecoded))
		for _, k := range undecoded {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		return md, fmt.Errorf("unknown key %q", strings.Join(keys, `", "`))
	}
	return md, nil
}

// errorKey is the key a validation error names: every one starts with
// `key "<dotted key>": ` (Validate's convention), or "" if err does not.
func errorKey(err error) string {
	msg, ok := strings.CutPrefix(err.Error(), "key ")
	if !ok {
		return ""
	}
	quoted, err2 := strconv.QuotedPrefix(msg)
	if err2 != nil {
		return ""
	}
	key, _ := strconv.Unquote(quoted)
	return key
}
