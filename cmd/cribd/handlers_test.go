package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/api/config"
	"github.com/crib-runtime/crib/internal/shim/ocicli"
)

func TestRuntimeHandlers(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-runtime")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	cfg := config.Default()
	cfg.RunDir = filepath.Join(dir, "run")
	cfg.Runtime.Handlers = map[string]config.Handler{
		"probed":   {RuntimePath: bin},
		"told":     {RuntimePath: bin, UserNamespaces: &yes, RecursiveReadOnlyMounts: &no, RuntimeRoot: filepath.Join(dir, "told-root")},
		"silent":   {RuntimePath: bin},
		"told-rro": {RuntimePath: bin, RecursiveReadOnlyMounts: &yes},
	}
	probe := func(path string) (ocicli.Features, error) {
		if path != bin {
			t.Errorf("probed %q", path)
		}
		return ocicli.Features{RecursiveReadOnlyMounts: true}, nil
	}
	silentProbe := func(string) (ocicli.Features, error) {
		return ocicli.Features{}, errors.New("unknown command features")
	}
	log := logrus.New()
	log.SetOutput(&strings.Builder{})

	got, err := runtimeHandlers(cfg, true, probe, log)
	if err != nil {
		t.Fatal(err)
	}
	if h := got["probed"]; h.Runtime.Path != bin || h.Runtime.Handler != "probed" || h.Runtime.Root != filepath.Join(cfg.RunDir, "runtimes", "probed") || !h.RecursiveReadOnlyMounts || h.UserNamespaces {
		t.Errorf("probed: %+v", h)
	}
	if h := got["told"]; !h.UserNamespaces || h.RecursiveReadOnlyMounts || h.Runtime.Root != filepath.Join(dir, "told-root") {
		t.Errorf("told: %+v", h)
	}
	if _, err := os.Stat(filepath.Join(dir, "told-root")); err != nil {
		t.Errorf("runtime root not made: %v", err)
	}
	if h := withNodeUserNS(got, false)["told"]; h.UserNamespaces {
		t.Errorf("user namespaces on a node without them: %+v", h)
	}
	if !got["told"].UserNamespaces {
		t.Error("withNodeUserNS changed its argument")
	}

	// A runtime that reports nothing has nothing but what the config says,
	// and no kernel support means no rro whatever anyone says.
	got, err = runtimeHandlers(cfg, false, silentProbe, log)
	if err != nil {
		t.Fatal(err)
	}
	if h := got["silent"]; h.UserNamespaces || h.RecursiveReadOnlyMounts {
		t.Errorf("silent: %+v", h)
	}
	if h := got["told-rro"]; h.RecursiveReadOnlyMounts {
		t.Errorf("rro without the kernel's: %+v", h)
	}

	cfg.Runtime.Handlers = map[string]config.Handler{"missing": {RuntimePath: "no-such-runtime-anywhere"}}
	if _, err := runtimeHandlers(cfg, true, probe, log); err == nil || !strings.Contains(err.Error(), `"runtime.handlers.missing.runtime_path"`) {
		t.Errorf("missing runtime: %v, want an error naming the key", err)
	}
}
