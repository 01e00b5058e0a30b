package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `stratad controller --init-only --credentials-dir D` creates the admin and
// component credentials and the secret key in D and exits; a second run on
// the same database with another data dir reuses every one of them (the
// compose cluster's init service, then its controllers).
func TestControllerInitOnlySharesCredentials(t *testing.T) {
	dir := t.TempDir()
	creds, db := filepath.Join(dir, "creds"), "sqlite://"+filepath.Join(dir, "strata.db")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(data string) map[string]string {
		t.Helper()
		var out, errOut bytes.Buffer
		args := []string{"--init-only", "--data", filepath.Join(dir, data), "--database", db, "--credentials-dir", creds,
			"--api-addr", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--builder=false", "--log-level", "warn"}
		if err := runController(ctx, args, &out, &errOut); err != nil {
			t.Fatalf("controller %v: %v\n%s", args, err, errOut.String())
		}
		if !strings.Contains(out.String(), "database and credentials ready") {
			t.Fatalf("output %q", out.String())
		}
		files := map[string]string{}
		for _, f := range []string{"admin.token", "executor.token", "router.token", "builder.token", "secret.key"} {
			b, err := os.ReadFile(filepath.Join(creds, f))
			if err != nil || len(bytes.TrimSpace(b)) == 0 {
				t.Fatalf("%s: %v %q", f, err, b)
			}
			files[f] = string(b)
			if _, err := os.Stat(filepath.Join(dir, data, f)); !os.IsNotExist(err) {
				t.Errorf("%s in the data dir too: %v", f, err)
			}
		}
		return files
	}
	first := run("one")
	second := run("two")
	for f, v := range first {
		if second[f] != v {
			t.Errorf("%s changed on the second controller", f)
		}
	}
}
