package image

import (
	"errors"
	"testing"

	"go.podman.io/image/v5/types"

	"github.com/crib-runtime/crib/api/errdefs"
)

func TestAuthApply(t *testing.T) {
	const file = "/etc/crib/auth.json"
	tests := []struct {
		name      string
		auth      Auth
		wantCreds *types.DockerAuthConfig
		wantToken string
		wantFile  string
		wantErr   bool
	}{
		{name: "none uses the auth file", wantFile: file},
		// The auth file stays set with credentials: mirrors read it.
		{name: "username and password", auth: Auth{Username: "u", Password: "p"}, wantCreds: &types.DockerAuthConfig{Username: "u", Password: "p"}, wantFile: file},
		{name: "base64 auth", auth: Auth{Auth: "dTpwOnE="}, wantCreds: &types.DockerAuthConfig{Username: "u", Password: "p:q"}, wantFile: file},
		{name: "username wins over auth", auth: Auth{Username: "a", Password: "b", Auth: "dTpw"}, wantCreds: &types.DockerAuthConfig{Username: "a", Password: "b"}, wantFile: file},
		{name: "identity token", auth: Auth{IdentityToken: "refresh"}, wantCreds: &types.DockerAuthConfig{IdentityToken: "refresh"}, wantFile: file},
		// Empty credentials beside the token keep it from mirrors.
		{name: "registry token wins", auth: Auth{RegistryToken: "bearer", Username: "u"}, wantCreds: &types.DockerAuthConfig{}, wantToken: "bearer", wantFile: file},
		{name: "bad base64", auth: Auth{Auth: "%%%"}, wantErr: true},
		{name: "base64 without colon", auth: Auth{Auth: "dXNlcg=="}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sys types.SystemContext
			err := tc.auth.apply(&sys, file)
			if tc.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("apply = %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (sys.DockerAuthConfig == nil) != (tc.wantCreds == nil) ||
				(tc.wantCreds != nil && *sys.DockerAuthConfig != *tc.wantCreds) {
				t.Errorf("creds %+v, want %+v", sys.DockerAuthConfig, tc.wantCreds)
			}
			if sys.DockerBearerRegistryToken != tc.wantToken || sys.AuthFilePath != tc.wantFile {
				t.Errorf("token %q file %q, want %q %q", sys.DockerBearerRegistryToken, sys.AuthFilePath, tc.wantToken, tc.wantFile)
			}
		})
	}
	if (Auth{}).key() != "" || (Auth{Username: "a"}).key() == (Auth{Username: "b"}).key() {
		t.Error("auth keys do not tell credentials apart")
	}
}
