package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage"
)

// Image is what the CRI reports about one stored image.
type Image struct {
	ID          ID
	RepoTags    []string // "repo:tag", sorted
	RepoDigests []string // "repo@sha256:…" for each repo and manifest digest, sorted
	Size        uint64   // bytes of the image's layers, unpacked
	// UID is the numeric user of the image's USER, if it names one by number.
	UID *int64
	// Username is USER's user when it is a name.
	Username string
	Pinned   bool
	// Config is the OCI image config, for verbose status.
	Config *imgspecv1.Image
}

// configInfo is what the service caches per image ID (images never change).
type configInfo struct {
	config   *imgspecv1.Image
	uid      *int64
	username string
	size     uint64
}

// Status returns the image that ref names: a reference ("busybox",
// "repo:tag", "repo@sha256:…"), a full image ID or an ID prefix such as
// crictl prints. An unknown image wraps errdefs.ErrNotFound.
func (s *Service) Status(ref string) (*Image, error) {
	img, err := s.resolve(ref)
	if err != nil {
		return nil, err
	}
	return s.describe(img)
}

// List returns every image, or, with a non-empty filter, the images that
// filter names (as Status resolves it).
func (s *Service) List(filter string) ([]*Image, error) {
	if filter != "" {
		img, err := s.resolve(filter)
		if errors.Is(err, errNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		d, err := s.describe(img)
		if err != nil {
			return nil, err
		}
		return []*Image{d}, nil
	}
	imgs, err := s.store.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]*Image, 0, len(imgs))
	for i := range imgs {
		d, err := s.describe(&imgs[i])
		if errors.Is(err, storage.ErrImageUnknown) || errors.Is(err, storage.ErrLayerUnknown) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// errNotFound marks resolve's "no such image"; it wraps errdefs.ErrNotFound.
var errNotFound = storage.ErrImageUnknown

// imageGone reports a store error meaning the image is not there (any
// more): unknown, or an ID a concurrent removal left as "not an image".
func imageGone(err error) bool {
	return errors.Is(err, storage.ErrImageUnknown) || errors.Is(err, storage.ErrNotAnImage)
}

// resolve finds the stored image ref names.
func (s *Service) resolve(ref string) (*storage.Image, error) {
	if h, ok := idPrefix(ref); ok {
		if img, err := s.store.Image(h); err == nil {
			return img, nil
		} else if !imageGone(err) {
			return nil, fmt.Errorf("image %q: %w", ref, err)
		}
		if strings.HasPrefix(ref, "sha256:") || len(h) == idLen {
			return nil, notFound(ref)
		}
	}
	cands, err := candidates(ref, s.search)
	if err != nil {
		return nil, err
	}
	for _, named := range cands {
		img, err := s.lookup(named, ref)
		if err == nil || !errors.Is(err, errNotFound) {
			return img, err
		}
	}
	return nil, notFound(ref)
}

// lookup finds the stored image of one fully qualified reference.
func (s *Service) lookup(named reference.Named, ref string) (*storage.Image, error) {
	if c, ok := named.(reference.Canonical); ok {
		return s.byDigest(reference.TrimNamed(named).Name(), c, ref)
	}
	img, err := s.store.Image(named.String())
	if imageGone(err) {
		return nil, notFound(ref)
	}
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", ref, err)
	}
	return img, nil
}

// byDigest finds the image of repo whose manifest has the given digest.
func (s *Service) byDigest(repo string, c reference.Canonical, ref string) (*storage.Image, error) {
	imgs, err := s.store.ImagesByDigest(c.Digest())
	if err != nil && !errors.Is(err, storage.ErrImageUnknown) {
		return nil, fmt.Errorf("image %q: %w", ref, err)
	}
	for _, img := range imgs {
		for _, n := range img.Names {
			if nn, err := reference.ParseNormalizedNamed(n); err == nil && nn.Name() == repo {
				return img, nil
			}
		}
	}
	return nil, notFound(ref)
}

func notFound(ref string) error {
	return fmt.Errorf("image %q: %w", ref, notFoundErr{})
}

// notFoundErr is both storage's ErrImageUnknown and errdefs' ErrNotFound.
type notFoundErr struct{}

func (notFoundErr) Error() string { return "image not known" }
func (notFoundErr) Is(target error) bool {
	return target == errNotFound || target == errdefsNotFound
}

// describe builds the CRI view of img.
func (s *Service) describe(img *storage.Image) (*Image, error) {
	id, err := idFromStore(img.ID)
	if err != nil {
		return nil, err
	}
	info, err := s.configInfo(img)
	if err != nil {
		return nil, err
	}
	out := &Image{ID: id, Size: info.size, UID: info.uid, Username: info.username, Config: info.config}
	repos := map[string]bool{}
	for _, n := range img.Names {
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			continue
		}
		repos[named.Name()] = true
		if isTagged(n) {
			out.RepoTags = append(out.RepoTags, named.String())
		}
		if s.pinned[n] {
			out.Pinned = true
		}
	}
	digests := img.Digests
	if len(digests) == 0 && img.Digest != "" {
		digests = append(digests, img.Digest)
	}
	for repo := range repos {
		for _, d := range digests {
			out.RepoDigests = append(out.RepoDigests, repo+"@"+d.String())
		}
	}
	sort.Strings(out.RepoTags)
	sort.Strings(out.RepoDigests)
	return out, nil
}

// configInfo reads (once per image) the image's config and size.
func (s *Service) configInfo(img *storage.Image) (*configInfo, error) {
	s.infoMu.Lock()
	info, ok := s.info[img.ID]
	s.infoMu.Unlock()
	if ok {
		return info, nil
	}
	raw, err := s.store.ImageBigData(img.ID, "sha256:"+img.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: read config: %w", img.ID, err)
	}
	var cfg imgspecv1.Image
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("image %s: parse config: %w", img.ID, err)
	}
	size, err := s.store.ImageSize(img.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: size: %w", img.ID, err)
	}
	info = &configInfo{config: &cfg, size: uint64(max(size, 0))}
	info.uid, info.username = parseUser(cfg.Config.User)
	s.infoMu.Lock()
	s.info[img.ID] = info
	s.infoMu.Unlock()
	return info, nil
}

// parseUser splits an image's USER ("uid", "name", "uid:gid",
// "name:group") into the CRI's uid or username; the group is not reported.
func parseUser(user string) (*int64, string) {
	u, _, _ := strings.Cut(user, ":")
	if u == "" {
		return nil, ""
	}
	if n, err := strconv.ParseInt(u, 10, 64); err == nil {
		return &n, ""
	}
	return nil, u
}

// forget drops the cached config of a removed image.
func (s *Service) forget(id string) {
	s.infoMu.Lock()
	delete(s.info, id)
	s.infoMu.Unlock()
}
