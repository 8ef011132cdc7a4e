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
// else an identity token.
//
// Which host gets what: kubelet picks a request's credentials by the
// image's registry, so they are sent to that registry only. A mirror or a
// registries.conf location that sends the pull to another host takes that
// host's entry in the auth file instead, with or without credentials in
// the request (the libraries withhold the request's credentials from any
// host other than the image's own, and read the auth file per host). With
// none in the request, the image's registry uses the auth file too.
func (a Auth) apply(sys *types.SystemContext, authFile string) error {
	sys.AuthFilePath = authFile
	switch {
	case a.RegistryToken != "":
		sys.DockerBearerRegistryToken = a.RegistryToken
		// The libraries withhold the token from other hosts only along
		// with DockerAuthConfig; empty credentials make them do so.
		sys.DockerAuthConfig = &types.DockerAuthConfig{}
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
