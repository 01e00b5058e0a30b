package password

import (
	"errors"
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "correct horse") {
		t.Errorf("encoded hash %q", h)
	}
	if err := Verify(h, "correct horse"); err != nil {
		t.Errorf("right password: %v", err)
	}
	if err := Verify(h, "correct horsE"); !errors.Is(err, ErrMismatch) {
		t.Errorf("wrong password: %v, want ErrMismatch", err)
	}
	h2, _ := Hash("correct horse")
	if h2 == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	if err := Verify("", "x"); err == nil || errors.Is(err, ErrMismatch) {
		t.Errorf("empty hash: %v, want an unreadable-hash error", err)
	}
}

func TestCheckAndGenerate(t *testing.T) {
	if Check("short") == nil || Check(strings.Repeat("x", MaxLength+1)) == nil || Check("long enough") != nil {
		t.Error("Check bounds")
	}
	p, err := Generate()
	if err != nil || len(p) != 20 || Check(p) != nil {
		t.Errorf("Generate: %q %v", p, err)
	}
}

// Verify reads hashes from the database; a corrupt one must be an error,
// never a panic or a huge allocation.
func FuzzVerify(f *testing.F) {
	h, _ := Hash("pw-for-fuzzing")
	f.Add(h, "pw-for-fuzzing")
	f.Add("$argon2id$v=19$m=65537,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw", "x")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$$", "")
	f.Fuzz(func(t *testing.T, encoded, pw string) {
		err := Verify(encoded, pw)
		if err == nil && encoded != h {
			// Only a well-formed hash of pw verifies.
			if !strings.HasPrefix(encoded, "$argon2id$") {
				t.Fatalf("Verify(%q) accepted a non-argon2id hash", encoded)
			}
		}
	})
}
