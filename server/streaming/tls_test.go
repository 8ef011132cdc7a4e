package streaming

import (
	"crypto/tls"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/internal/testcert"
)

// TestStartTLS: with a certificate the server speaks HTTPS only and hands
// out https URLs; a key that does not load names both keys.
func TestStartTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := testcert.Write(t, dir, "streaming")
	log := logrus.New()
	log.SetOutput(os.Stderr)

	s, err := Start(Options{Address: "127.0.0.1", TLSCertFile: certFile, TLSKeyFile: keyFile}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") {
		t.Fatalf("URL = %q, want https", s.URL)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(s.URL + "/exec/none")
	if err != nil {
		t.Fatalf("HTTPS request: %v", err)
	}
	resp.Body.Close()
	if resp.TLS == nil {
		t.Error("response not over TLS")
	}
	// Plain HTTP to the same port is refused by the TLS server.
	if resp, err := http.Get("http" + strings.TrimPrefix(s.URL, "https") + "/exec/none"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP: status %d, want 400 from the TLS server", resp.StatusCode)
		}
	}

	plain, err := Start(Options{Address: "127.0.0.1"}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if !strings.HasPrefix(plain.URL, "http://") {
		t.Errorf("URL without TLS = %q, want http", plain.URL)
	}

	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Start(Options{Address: "127.0.0.1", TLSCertFile: certFile, TLSKeyFile: keyFile}, nil, log)
	if err == nil || !strings.Contains(err.Error(), `"streaming.tls_cert_file"`) || !strings.Contains(err.Error(), `"streaming.tls_key_file"`) {
		t.Fatalf("bad key: %v, want an error naming both keys", err)
	}
}
