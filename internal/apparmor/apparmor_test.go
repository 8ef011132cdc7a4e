package apparmor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost lays out the kernel and policy files of a host in a temporary
// directory, with a parser script that "loads" a profile by appending it
// to the profiles list and counts its runs.
func fakeHost(t *testing.T, enabled string, parserExit int) (Paths, func() int) {
	t.Helper()
	dir := t.TempDir()
	p := Paths{
		Enabled:   filepath.Join(dir, "enabled"),
		Profiles:  filepath.Join(dir, "profiles"),
		PolicyDir: filepath.Join(dir, "apparmor.d"),
		Current:   filepath.Join(dir, "current"),
		Parser:    filepath.Join(dir, "apparmor_parser"),
	}
	runs := filepath.Join(dir, "runs")
	files := map[string]string{
		p.Profiles: "other (enforce)\n",
		p.Current:  "unconfined\n",
		filepath.Join(p.PolicyDir, "tunables", "global"): "",
		p.Parser: "#!/bin/sh\necho \"$@\" >> " + runs + "\n" +
			"[ " + string(rune('0'+parserExit)) + " = 0 ] || { echo 'syntax error' >&2; exit 1; }\n" +
			"echo 'crib-default (enforce)' >> " + p.Profiles + "\n",
	}
	if enabled != "" {
		files[p.Enabled] = enabled
	}
	for path, body := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "\n")
	}
	return p, count
}

func TestSetupDisabled(t *testing.T) {
	tests := []struct {
		name    string
		enabled string
		mutate  func(p *Paths)
		reason  string
	}{
		{"no module", "", nil, "no AppArmor module"},
		{"switched off", "N\n", nil, "switched off"},
		{"no securityfs", "Y\n", func(p *Paths) { p.Profiles = "/nonexistent/profiles" }, "securityfs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, runs := fakeHost(t, tc.enabled, 0)
			if tc.mutate != nil {
				tc.mutate(&p)
			}
			h, err := Setup(p, t.TempDir())
			if !errors.Is(err, ErrDisabled) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err %v, want ErrDisabled saying %q", err, tc.reason)
			}
			if h.Enabled() || runs() != 0 {
				t.Errorf("enabled %v, parser ran %d times", h.Enabled(), runs())
			}
			if ok, err := h.Loaded("other"); ok || err != nil {
				t.Errorf("Loaded on a disabled host: %v %v", ok, err)
			}
		})
	}
}

func TestSetupLoadsOnce(t *testing.T) {
	p, runs := fakeHost(t, "Y\n", 0)
	run := t.TempDir()
	h, err := Setup(p, run)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Enabled() || runs() != 1 {
		t.Fatalf("enabled %v, parser ran %d times, want once", h.Enabled(), runs())
	}
	text, err := os.ReadFile(filepath.Join(run, "apparmor", DefaultProfile))
	if err != nil || !strings.Contains(string(text), "profile crib-default flags=") {
		t.Fatalf("profile file: %v\n%s", err, text)
	}
	// A restart finds the same text loaded: no reload.
	if _, err := Setup(p, run); err != nil || runs() != 1 {
		t.Errorf("second Setup: %v, parser ran %d times, want still once", err, runs())
	}
	// A profile that changed (cribd now confined) is reloaded.
	if err := os.WriteFile(p.Current, []byte("cribd-profile (enforce)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Setup(p, run); err != nil || runs() != 2 {
		t.Errorf("changed profile: %v, parser ran %d times, want twice", err, runs())
	}
	for name, want := range map[string]bool{DefaultProfile: true, "other": true, "oth": false, "missing": false} {
		if got, err := h.Loaded(name); got != want || err != nil {
			t.Errorf("Loaded(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
}

func TestSetupParserFails(t *testing.T) {
	p, _ := fakeHost(t, "Y\n", 1)
	_, err := Setup(p, t.TempDir())
	if err == nil || errors.Is(err, ErrDisabled) || !strings.Contains(err.Error(), "syntax error") {
		t.Fatalf("err %v, want the parser's output and not ErrDisabled", err)
	}
}

func TestRenderProfile(t *testing.T) {
	withIncludes := t.TempDir()
	for _, f := range []string{"tunables/global", "abstractions/base", "abi/3.0"} {
		if err := os.MkdirAll(filepath.Join(withIncludes, f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, policyDir, current string
		want, notWant            []string
	}{
		{"bare host", t.TempDir(), "", []string{"@{PROC}=/proc/", "signal (receive) peer=unconfined,", "deny mount,", "deny @{PROC}/kcore rwklx,",
			"signal (send,receive) peer=crib-default,", "ptrace (trace,tracedby,read,readby) peer=crib-default,"},
			[]string{"#include", "abi <"}},
		{"distribution includes", withIncludes, "unconfined\n", []string{"abi <abi/3.0>,", "#include <tunables/global>", "  #include <abstractions/base>"},
			[]string{"@{PROC}=/proc/"}},
		{"confined cribd", t.TempDir(), "cribd (enforce)\n", []string{"signal (receive) peer=cribd,"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := renderProfile(tc.policyDir, tc.current)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("profile lacks %q:\n%s", w, b)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(string(b), w) {
					t.Errorf("profile has %q:\n%s", w, b)
				}
			}
		})
	}
}
