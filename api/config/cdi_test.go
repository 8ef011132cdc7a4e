package config

import (
	"slices"
	"strings"
	"testing"
)

func TestParseCDI(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		want    CDI
		wantErr string // substring; empty means success
	}{
		{name: "defaults", toml: "", want: CDI{Enabled: true, SpecDirs: []string{"/etc/cdi", "/var/run/cdi"}}},
		{name: "own dirs", toml: "[cdi]\nspec_dirs = [\"/opt/cdi\"]\npod_annotations = true\n",
			want: CDI{Enabled: true, SpecDirs: []string{"/opt/cdi"}, PodAnnotations: true}},
		{name: "off", toml: "[cdi]\nenabled = false\nspec_dirs = []\n", want: CDI{SpecDirs: []string{}}},
		{name: "no dirs while on", toml: "[cdi]\nspec_dirs = []\n", wantErr: `key "cdi.spec_dirs": at least one directory`},
		{name: "relative dir", toml: "[cdi]\nspec_dirs = [\"cdi\"]\n", wantErr: `key "cdi.spec_dirs": "cdi" is not an absolute path`},
		{name: "unknown key", toml: "[cdi]\nspec_dir = \"/etc/cdi\"\n", wantErr: `unknown key "cdi.spec_dir"`},
		{name: "not a bool", toml: "[cdi]\nenabled = \"yes\"\n", wantErr: "enabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			err := Parse([]byte(tt.toml), &c)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(): %v", err)
			}
			if c.CDI.Enabled != tt.want.Enabled || c.CDI.PodAnnotations != tt.want.PodAnnotations || !slices.Equal(c.CDI.SpecDirs, tt.want.SpecDirs) {
				t.Errorf("cdi = %+v, want %+v", c.CDI, tt.want)
			}
		})
	}
}
