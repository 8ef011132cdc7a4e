package image

import (
	"encoding/base64"
	"fmt"
	"strings"

	"go.podman.io/image/v5/types"

	"github.com/crib-runtime/crib/api/errdefs"
)

// Auth is the credentials a pull request carries: the fields of CRI's
// AuthConfig. The zero value means none.
type Auth struct {
	Username      string
	Password      string
	Auth          string // base64("user:password")
	IdentityToken string // an OAuth2 refresh token
	RegistryToken string // a bearer token sent to the registry as is
}

// IsZero reports whether a carries no credentials.
func (a Auth) IsZero() bool { return a == Auth{} }

// apply puts the credentials in sys, in the order the CRI defines:
// a registry token, else username/password (or their base64 auth form),
// else an identity token; with none, the configured auth file is used.
func (a Auth) apply(sys *types.SystemContext, authFile string) error {
	switch {
	case a.RegistryToken != "":
		sys.DockerBearerRegistryToken = a.RegistryToken
	case a.Username != "" || a.Password != "":
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: a.Username, Password: a.Password}
	case a.Auth != "":
		user, pass, err := decodeAuth(a.Auth)
		if err != nil {
			return err
		}
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: user, Password: pass}
	case a.IdentityToken != "":
		sys.DockerAuthConfig = &types.DockerAuthConfig{IdentityToken: a.IdentityToken}
	default:
		sys.AuthFilePath = authFile
	}
	return nil
}

// decodeAuth splits a base64 "user:password".
func decodeAuth(s string) (string, string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", errdefs.InvalidArgument("auth.auth is not base64: %v", err)
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", "", errdefs.InvalidArgument("auth.auth does not decode to user:password")
	}
	return user, pass, nil
}

// key identifies the credentials for merging pulls: two requests with
// different credentials are not merged (one could be refused).
func (a Auth) key() string {
	if a.IsZero() {
		return ""
	}
	return fmt.Sprintf("%x", hashStrings(a.Username, a.Password, a.Auth, a.IdentityToken, a.RegistryToken))
}
