package streaming

import (
	"testing"

	utilexec "k8s.io/utils/exec"
)

func TestExitError(t *testing.T) {
	tests := []struct {
		code    int
		wantErr bool
	}{
		{code: 0},
		{code: 1, wantErr: true},
		{code: 3, wantErr: true},
		{code: 137, wantErr: true},
	}
	for _, tc := range tests {
		err := exitError([]string{"sh"}, tc.code)
		if !tc.wantErr {
			if err != nil {
				t.Errorf("code %d: got %v, want nil", tc.code, err)
			}
			continue
		}
		// cri-streaming's ServeExec checks err.(utilexec.ExitError).
		ee, ok := err.(utilexec.ExitError)
		if !ok || !ee.Exited() || ee.ExitStatus() != tc.code {
			t.Errorf("code %d: got %#v, want an exited ExitError with status %d", tc.code, err, tc.code)
		}
	}
}
