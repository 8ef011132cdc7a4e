package main

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/crib-runtime/crib/api/config"
)

// configSources is where the config came from: the main file, the
// drop-in directory and the files actually read, in order.
type configSources struct {
	config.Sources
	Files []string
}

// statusInfo is the fixed part of Status(verbose)'s info map (crictl info),
// built once at start so Status pays nothing for it. Each value is a JSON
// object: crictl shows objects as JSON and anything else as a string.
func statusInfo(cfg config.Config, src configSources, streamURL string) (map[string]string, error) {
	effective, err := cfg.JSON()
	if err != nil {
		return nil, fmt.Errorf("status info: %w", err)
	}
	files := src.Files
	if files == nil {
		files = []string{} // [] rather than null: no file, the defaults
	}
	info := map[string]string{"config": string(effective)}
	for key, v := range map[string]any{
		"configSources": map[string]any{
			"main": src.Main, "dropInDir": src.Dir(), "files": files,
		},
		"version": map[string]string{
			"crib": version, "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH,
		},
		"streaming": map[string]any{
			"url": streamURL, "tls": cfg.Streaming.TLS(), "idleTimeout": cfg.Streaming.IdleTimeout,
		},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("status info %s: %w", key, err)
		}
		info[key] = string(b)
	}
	return info, nil
}
