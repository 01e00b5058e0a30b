package secretbox_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-paas/strata/api"
	"github.com/strata-paas/strata/api/secretbox"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, secretbox.KeySize)
	other := bytes.Repeat([]byte{8}, secretbox.KeySize)
	box, err := secretbox.New(key)
	if err != nil {
		t.Fatal(err)
	}
	otherBox, _ := secretbox.New(other)
	secret := []byte("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n")
	sealed, err := box.Seal(secret, []byte("www.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("secret")) {
		t.Fatal("sealed value contains the plaintext")
	}
	again, _ := box.Seal(secret, []byte("www.example.com"))
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of the same value are equal: the nonce is not random")
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name   string
		box    *secretbox.Box
		sealed []byte
		ad     string
		want   []byte
	}{
		{"same key and ad", box, sealed, "www.example.com", secret},
		{"other ad", box, sealed, "evil.example.com", nil},
		{"other key", otherBox, sealed, "www.example.com", nil},
		{"tampered", box, flipped, "www.example.com", nil},
		{"truncated", box, sealed[:10], "www.example.com", nil},
		{"empty", box, nil, "www.example.com", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.box.Open(tc.sealed, []byte(tc.ad))
			if tc.want == nil {
				if !errors.Is(err, secretbox.ErrOpen) {
					t.Fatalf("Open: got %q, %v; want ErrOpen", got, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("Open: got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := secretbox.New(key[:16]); api.ErrorCode(err) != api.EInvalid {
		t.Fatalf("New with a short key: %v, want invalid", err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "secret.key")
	k1, err := secretbox.LoadOrCreateKey(path)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v, want 0600", st.Mode(), err)
	}
	k2, err := secretbox.LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(k1, k2) || len(k1) != secretbox.KeySize {
		t.Fatalf("reload: got a different key (%v)", err)
	}

	bad := []struct {
		name    string
		content string
		mode    os.FileMode
	}{
		{"not hex", "zz\n", 0o600},
		{"short", "abcd\n", 0o600},
		{"readable by others", string(bytes.Repeat([]byte("ab"), secretbox.KeySize)), 0o644},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, tc.mode)
			_, err := secretbox.LoadOrCreateKey(p)
			if api.ErrorCode(err) != api.EInvalid {
				t.Fatalf("got %v, want an invalid error", err)
			}
		})
	}
}
