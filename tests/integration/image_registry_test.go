//go:build integration

package integration

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The image tests' registries: Debian's docker-registry on 127.0.0.1 with a
// free port, serving a copy of the storage tests/images/build.sh seeded
// with every test image (so starting one costs a directory copy, not a push).

var buildImagesOnce struct {
	sync.Once
	err error
}

// imagesDir is the builder's cache.
func imagesDir() string {
	dir := os.Getenv("CRIB_TOOLS_DIR")
	if dir == "" {
		dir = "/var/cache/crib/tools"
	}
	return filepath.Join(dir, "images")
}

// buildImages runs tests/images/build.sh once per test binary (it returns
// at once when its cache is current).
func buildImages(t *testing.T) {
	t.Helper()
	buildImagesOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "..", "images", "build.sh")
		out, err := exec.Command(script).CombinedOutput()
		if err != nil {
			buildImagesOnce.err = fmt.Errorf("%s: %v\n%s", script, err, out)
		}
	})
	if buildImagesOnce.err != nil {
		t.Fatal(buildImagesOnce.err)
	}
}

// Registry is one running docker-registry.
type Registry struct {
	Addr    string // 127.0.0.1:port
	Storage string
	Log     string
}

// RegistryOptions change one registry.
type RegistryOptions struct {
	// Empty starts with no images instead of the seeded ones.
	Empty bool
	// Users enables htpasswd basic auth with these user → password pairs.
	Users map[string]string
}

// startRegistry starts a registry for the test; t.Cleanup kills it.
func startRegistry(t *testing.T, opts RegistryOptions) *Registry {
	t.Helper()
	buildImages(t)
	dir := t.TempDir()
	r := &Registry{Storage: filepath.Join(dir, "storage"), Log: filepath.Join(dir, "registry.log")}
	if opts.Empty {
		if err := os.MkdirAll(r.Storage, 0o755); err != nil {
			t.Fatal(err)
		}
	} else if out, err := exec.Command("cp", "-a", filepath.Join(imagesDir(), "registry"), r.Storage).CombinedOutput(); err != nil {
		t.Fatalf("copy seeded registry: %v: %s", err, out)
	}
	auth := ""
	if len(opts.Users) > 0 {
		htpasswd := filepath.Join(dir, "htpasswd")
		var lines string
		for u, p := range opts.Users {
			hash, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			lines += u + ":" + string(hash) + "\n"
		}
		if err := os.WriteFile(htpasswd, []byte(lines), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth: {htpasswd: {realm: crib-test, path: %q}}\n", htpasswd)
	}
	r.Addr = freeAddr(t)
	cfg := filepath.Join(dir, "registry.yml")
	body := fmt.Sprintf("version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\n"+
		"storage: {filesystem: {rootdirectory: %q}, delete: {enabled: true}}\nhttp: {addr: %q}\n%s",
		r.Storage, r.Addr, auth)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(r.Log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start docker-registry: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	eventually(t, 10*time.Second, "registry answers /v2/", func() (bool, string) {
		select {
		case <-done:
			b, _ := os.ReadFile(r.Log)
			t.Fatalf("docker-registry exited: %s", b)
		default:
		}
		resp, err := http.Get("http://" + r.Addr + "/v2/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200 || resp.StatusCode == 401, resp.Status
	})
	return r
}

// freeAddr is a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// mirroredRegistries are the public registries the tests' images come
// from; the registries.conf the tests write mirrors each to a loopback one.
var mirroredRegistries = []string{"docker.io", "registry.k8s.io", "k8s.gcr.io", "gcr.io", "public.ecr.aws"}

// registriesConf renders a containers-registries.conf(5) file mirroring
// the public registries to addr (insecure), plus extra TOML.
func registriesConf(addr, extra string) string {
	s := "unqualified-search-registries = []\n"
	for _, reg := range mirroredRegistries {
		// A rewrite, not a mirror: a mirror miss falls back to the upstream
		// host, and tests must not reach or resolve any address off this machine.
		s += fmt.Sprintf("\n[[registry]]\nprefix = %q\nlocation = %q\ninsecure = true\n", reg, addr)
	}
	return s + extra
}

// imageHarness starts a registry and a cribd whose registries.conf mirrors
// the public registries to it. extraConf is added to registries.conf,
// extraImage to crib.toml's [image] section.
func imageHarness(t *testing.T, extraConf, extraImage string) (*Harness, *Registry) {
	t.Helper()
	reg := startRegistry(t, RegistryOptions{})
	dir := t.TempDir()
	conf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(conf, []byte(registriesConf(reg.Addr, extraConf)), 0o644); err != nil {
		t.Fatal(err)
	}
	h := start(t, Options{ExtraConfig: fmt.Sprintf("\n[image]\nregistries_conf = %q\n%s", conf, extraImage)})
	return h, reg
}
