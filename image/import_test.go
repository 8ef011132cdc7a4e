package image

import "testing"

func TestOCIArchiveName(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        string // "" for no name
		wantErr     bool
	}{
		{"none", nil, "", false},
		{"bare tag", map[string]string{annotationRefName: "latest"}, "", false},
		{"bare version tag", map[string]string{annotationRefName: "v1.2"}, "", false},
		{"repo and tag", map[string]string{annotationRefName: "busybox:1.36"}, "docker.io/library/busybox:1.36", false},
		{"full reference", map[string]string{annotationRefName: "registry.k8s.io/pause:3.9"}, "registry.k8s.io/pause:3.9", false},
		{"repo path, no tag", map[string]string{annotationRefName: "example.com/app"}, "example.com/app:latest", false},
		{"containerd name wins", map[string]string{annotationContainerdName: "docker.io/library/nginx:1", annotationRefName: "1"}, "docker.io/library/nginx:1", false},
		{"bad containerd name", map[string]string{annotationContainerdName: "Bad Name"}, "", true},
		{"bad ref.name", map[string]string{annotationRefName: "UPPER/case:1"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ociArchiveName(tc.annotations)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			s := ""
			if got != nil {
				s = got.String()
			}
			if s != tc.want {
				t.Errorf("name = %q, want %q", s, tc.want)
			}
		})
	}
}
