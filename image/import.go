package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/copy"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	ociarchive "go.podman.io/image/v5/oci/archive"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"

	"github.com/crib-runtime/crib/api/errdefs"
)

// Imported is one image loaded from an archive.
type Imported struct {
	ID ID
	// Names are the normalised references the image is stored under; none
	// when the archive does not name it (it is then reachable by ID only).
	Names []string
}

// Annotations an oci-archive may name its image with.
const (
	// annotationContainerdName holds a full reference (containerd, buildkit).
	annotationContainerdName = "io.containerd.image.name"
	// annotationRefName is the OCI image-spec's name, usually only a tag.
	annotationRefName = "org.opencontainers.image.ref.name"
)

// Import loads the images of the archive at path into the store under the
// names the archive gives them. path is a docker-archive ("docker save",
// "skopeo copy … docker-archive:", every image with its RepoTags) or an
// oci-archive holding one image (named by its io.containerd.image.name
// annotation, else by org.opencontainers.image.ref.name when that is a
// full reference rather than a bare tag). A name already on another image
// moves to the imported one, as a pull does. The store is shared through
// its own locks, so this works while cribd runs in another process; the
// import keeps cribd's sweeps of orphaned layers off until it ends.
func (s *Service) Import(ctx context.Context, path string) ([]Imported, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, errdefs.InvalidArgument("import %s: %v", path, err)
	}
	sys, err := s.systemContext(Auth{})
	if err != nil {
		return nil, err
	}
	release, err := s.holdForImport()
	if err != nil {
		return nil, err
	}
	defer release()
	dockerReader, dockerErr := dockerarchive.NewReader(sys, path)
	if dockerErr == nil {
		defer func() { _ = dockerReader.Close() }()
		return s.importDocker(ctx, sys, path, dockerReader)
	}
	out, ociErr := s.importOCI(ctx, sys, path)
	if ociErr == nil {
		return out, nil
	}
	var notOCI notOCIError
	if errors.As(ociErr, &notOCI) {
		return nil, errdefs.InvalidArgument("import %s: neither a docker-archive (%v) nor an oci-archive (%v)", path, dockerErr, notOCI.err)
	}
	return nil, ociErr
}

// notOCIError marks a file the oci-archive transport cannot read at all,
// as opposed to an archive that failed later, while copying.
type notOCIError struct{ err error }

func (e notOCIError) Error() string { return e.err.Error() }
func (e notOCIError) Unwrap() error { return e.err }

// importDocker copies each image of a docker-archive, under all its tags.
func (s *Service) importDocker(ctx context.Context, sys *types.SystemContext, path string, r *dockerarchive.Reader) ([]Imported, error) {
	groups, err := r.List()
	if err != nil {
		return nil, errdefs.InvalidArgument("import %s: docker-archive: %v", path, err)
	}
	out := make([]Imported, 0, len(groups))
	for i, refs := range groups {
		var names []reference.Named
		for _, ref := range refs {
			if named := ref.DockerReference(); named != nil {
				names = append(names, named)
			}
		}
		imp, err := s.importOne(ctx, sys, refs[0], names, fmt.Sprintf("%s (docker-archive image %d)", path, i))
		if err != nil {
			return out, err
		}
		out = append(out, imp)
	}
	return out, nil
}

// importOCI copies the one image of an oci-archive.
func (s *Service) importOCI(ctx context.Context, sys *types.SystemContext, path string) ([]Imported, error) {
	ref, err := ociarchive.NewReference(path, "")
	if err != nil {
		return nil, notOCIError{err}
	}
	desc, err := ociarchive.LoadManifestDescriptorWithContext(sys, ref)
	if err != nil {
		return nil, notOCIError{err}
	}
	named, err := ociArchiveName(desc.Annotations)
	if err != nil {
		return nil, errdefs.InvalidArgument("import %s: %v", path, err)
	}
	var names []reference.Named
	if named != nil {
		names = append(names, named)
	} else if tag := desc.Annotations[annotationRefName]; tag != "" {
		s.log.WithFields(logrus.Fields{"archive": path, "ref.name": tag}).Warn("import: the archive names its image by a tag only (no repository); stored unnamed")
	}
	imp, err := s.importOne(ctx, sys, ref, names, path+" (oci-archive)")
	if err != nil {
		return nil, err
	}
	return []Imported{imp}, nil
}

// ociArchiveName is the name an oci-archive's manifest descriptor gives
// its image: containerd's full-name annotation, else the OCI ref.name when
// it names a repository ("repo:tag", "host/repo"); a bare tag ("latest",
// "v1") or no name gives nil. The name is normalised as Normalize does.
func ociArchiveName(annotations map[string]string) (reference.Named, error) {
	if n := annotations[annotationContainerdName]; n != "" {
		named, err := Normalize(n)
		if err != nil {
			return nil, fmt.Errorf("annotation %s: %w", annotationContainerdName, err)
		}
		return named, nil
	}
	n := annotations[annotationRefName]
	if !strings.ContainsAny(n, "/:@") {
		return nil, nil
	}
	named, err := Normalize(n)
	if err != nil {
		return nil, fmt.Errorf("annotation %s: %w", annotationRefName, err)
	}
	return named, nil
}

// importOne copies the image src refers to into the store under names
// (the first through the copy, the rest added after it).
func (s *Service) importOne(ctx context.Context, sys *types.SystemContext, src types.ImageReference, names []reference.Named, what string) (Imported, error) {
	var destRef types.ImageReference
	var err error
	if len(names) > 0 {
		destRef, err = istorage.Transport.NewStoreReference(s.store, names[0], "")
	} else {
		var id string
		if id, err = configDigest(ctx, sys, src); err == nil {
			destRef, err = istorage.Transport.NewStoreReference(s.store, nil, id)
		}
	}
	if err != nil {
		return Imported{}, fmt.Errorf("import %s: storage reference: %w", what, err)
	}
	policyCtx, err := signature.NewPolicyContext(s.policy)
	if err != nil {
		return Imported{}, fmt.Errorf("import %s: signature policy: %w", what, err)
	}
	defer func() { _ = policyCtx.Destroy() }()
	if _, err := copy.Image(ctx, policyCtx, destRef, checkedRef{src}, &copy.Options{SourceCtx: sys, DestinationCtx: sys}); err != nil {
		var escape *EscapeError
		if errors.As(err, &escape) {
			return Imported{}, errdefs.FailedPrecondition("import %s: %v", what, escape)
		}
		return Imported{}, fmt.Errorf("import %s: %w", what, err)
	}
	img, err := istorage.Transport.GetStoreImage(s.store, destRef)
	if err != nil {
		return Imported{}, fmt.Errorf("import %s: find the stored image: %w", what, err)
	}
	id, err := idFromStore(img.ID)
	if err != nil {
		return Imported{}, err
	}
	imp := Imported{ID: id}
	for _, n := range names {
		imp.Names = append(imp.Names, n.String())
	}
	if len(imp.Names) > 1 {
		if err := s.store.AddNames(img.ID, imp.Names[1:]); err != nil {
			return Imported{}, fmt.Errorf("import %s: name image %s: %w", what, img.ID, err)
		}
	}
	s.fsInvalidate()
	s.log.WithFields(logrus.Fields{"archive": what, "id": id.String(), "names": imp.Names}).Info("imported image")
	return imp, nil
}

// configDigest is the config digest (the image ID) of the single image
// src refers to.
func configDigest(ctx context.Context, sys *types.SystemContext, src types.ImageReference) (string, error) {
	is, err := src.NewImageSource(ctx, sys)
	if err != nil {
		return "", err
	}
	defer func() { _ = is.Close() }()
	raw, mt, err := is.GetManifest(ctx, nil)
	if err != nil {
		return "", err
	}
	m, err := manifest.FromBlob(raw, manifest.NormalizedMIMEType(mt))
	if err != nil {
		return "", fmt.Errorf("unnamed image: %w", err)
	}
	return m.ConfigInfo().Digest.Encoded(), nil
}
