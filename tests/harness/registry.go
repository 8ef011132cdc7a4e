package harness

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The tests' registries: Debian's docker-registry on 127.0.0.1 with a free
// port, serving a copy of the storage tests/images/build.sh seeded with
// every test image (so starting one costs a directory copy, not a push).

// buildImagesOnce runs the image builder once per test binary.
var buildImagesOnce struct {
	sync.Once
	err error
}

// ImagesDir is the image builder's cache.
func ImagesDir() string { return filepath.Join(ToolsDir(), "images") }

// BuildImages runs tests/images/build.sh once per test binary (it returns
// at once when its cache is current).
func BuildImages(t testing.TB) {
	t.Helper()
	buildImagesOnce.Do(func() {
		script := filepath.Join(RepoDir(), "tests", "images", "build.sh")
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
	Addr    string // ip:port, 127.0.0.1 unless RegistryOptions.Host
	Storage string
	Log     string
}

// RegistryOptions change one registry.
type RegistryOptions struct {
	// Empty starts with no images instead of the seeded ones.
	Empty bool
	// Users enables htpasswd basic auth with these user → password pairs.
	Users map[string]string
	// Host is the IP address it listens on; default 127.0.0.1. A test
	// whose pulls come from other network namespaces gives an address
	// they reach (e.g. a test bridge's).
	Host string
}

// StartRegistry starts a registry for the test; t.Cleanup kills it.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	BuildImages(t)
	dir := t.TempDir()
	r := &Registry{Storage: filepath.Join(dir, "storage"), Log: filepath.Join(dir, "registry.log")}
	if opts.Empty {
		if err := os.MkdirAll(r.Storage, 0o755); err != nil {
			t.Fatal(err)
		}
	} else if out, err := exec.Command("cp", "-a", filepath.Join(ImagesDir(), "registry"), r.Storage).CombinedOutput(); err != nil {
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
	r.Addr = FreeAddr(t)
	if opts.Host != "" {
		r.Addr = FreeAddrOn(t, opts.Host)
	}
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
	Eventually(t, 10*time.Second, "registry answers /v2/", func() (bool, string) {
		select {
		case <-done:
			t.Fatalf("docker-registry exited: %s", ReadFile(r.Log))
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

// MirroredRegistries are the public registries the tests' images come
// from; RegistriesConf points each at a loopback one.
var MirroredRegistries = []string{"docker.io", "registry.k8s.io", "k8s.gcr.io", "gcr.io", "public.ecr.aws"}

// RegistriesConf renders a containers-registries.conf(5) file that
// rewrites the public registries to addr (insecure), plus extra TOML.
func RegistriesConf(addr, extra string) string {
	s := "unqualified-search-registries = []\n"
	for _, reg := range MirroredRegistries {
		// A rewrite, not a mirror: a mirror miss falls back to the upstream
		// host, and tests must not reach or resolve any address off this machine.
		s += fmt.Sprintf("\n[[registry]]\nprefix = %q\nlocation = %q\ninsecure = true\n", reg, addr)
	}
	return s + extra
}
