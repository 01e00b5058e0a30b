package docker

import (
	"strings"
	"testing"

	"github.com/strata-paas/strata/api"
)

// The engine's JSON message streams are decoded by one function for pulls,
// loads and builds; these cases need no engine.

func TestReadStream(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string // want "" = no error
	}{
		{"progress only", `{"status":"Loading"}{"stream":"Loaded image: a:b\n"}`, ""},
		{"error", `{"status":"x"}{"error":"plain"}{"error":"later"}`, "plain"},
		{"error detail wins", `{"error":"plain","errorDetail":{"message":"detailed"}}`, "detailed"},
		{"broken stream", `{"status":`, "unexpected EOF"},
	} {
		err := readStream(strings.NewReader(tc.in))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: readStream = %v, want nil", tc.name, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%s: readStream = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestDecodeBuild(t *testing.T) {
	in := `{"stream":"Step 1/2 : FROM x\n ---> abc"}{"aux":{"ID":"sha256:1"}}{"stream":"\nStep 2/2"}{"stream":" : RUN y\n"}`
	var out strings.Builder
	var lines []string
	if err := decodeBuild(strings.NewReader(in), &out, func(l string) { lines = append(lines, l) }); err != nil {
		t.Fatalf("decodeBuild = %v", err)
	}
	if want := "Step 1/2 : FROM x\n ---> abc\nStep 2/2 : RUN y\n"; out.String() != want {
		t.Fatalf("out = %q, want %q", out.String(), want)
	}
	if len(lines) != 3 || lines[0] != "Step 1/2 : FROM x" || lines[1] != " ---> abc" || lines[2] != "Step 2/2 : RUN y" {
		t.Fatalf("lines = %q", lines)
	}

	out.Reset()
	err := decodeBuild(strings.NewReader(`{"stream":"Step 1/1\n"}{"errorDetail":{"message":"  exit 1\n"},"error":"x","stream":"never"}{"stream":"after"}`), &out, func(string) {})
	if api.ErrorCode(err) != api.EInvalid || !strings.HasSuffix(err.Error(), ": exit 1") {
		t.Fatalf("decodeBuild of a failed build = %v, want EInvalid ending in %q", err, ": exit 1")
	}
	if out.String() != "Step 1/1\n" {
		t.Fatalf("out after a failure = %q", out.String())
	}
	if err := decodeBuild(strings.NewReader(`{"stream":`), &out, func(string) {}); api.ErrorCode(err) != api.EUnavailable {
		t.Fatalf("decodeBuild of a broken stream = %v, want EUnavailable", err)
	}
}
