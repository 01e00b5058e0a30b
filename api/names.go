package api

import (
	"strings"
)

// MaxNameLength is the longest app, org or space name (one DNS label).
const MaxNameLength = 63

// reservedNames cannot be used as app names: they would shadow platform hosts.
var reservedNames = map[string]bool{
	"api": true, "www": true, "admin": true, "strata": true, "router": true,
	"git": true, "console": true, "localhost": true, "default": false,
}

// ValidateName checks that name is a lowercase DNS label usable as an app,
// org or space name: 1–63 characters of a–z, 0–9 and '-', not starting or
// ending with '-', not starting with "xn--" (punycode). It returns an EInvalid
// *Error that says how to fix the name.
func ValidateName(kind, name string) error {
	if name == "" {
		return Errorf(EInvalid, "%s name is empty — give a name like \"hello\"", kind)
	}
	if len(name) > MaxNameLength {
		return Errorf(EInvalid, "%s name %q is longer than %d characters — choose a shorter name", kind, truncate(name, 20), MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return Errorf(EInvalid, "%s name %q may only contain lowercase letters, digits and '-' — try %q", kind, truncate(name, 40), suggestName(name))
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return Errorf(EInvalid, "%s name %q must not start or end with '-'", kind, name)
	}
	if strings.HasPrefix(name, "xn--") {
		return Errorf(EInvalid, "%s name %q looks like punycode — choose a plain ASCII name", kind, name)
	}
	return nil
}

// ValidateAppName is ValidateName for apps, which also refuses names reserved
// by the platform.
func ValidateAppName(name string) error {
	if err := ValidateName("app", name); err != nil {
		return err
	}
	if reservedNames[name] {
		return Errorf(EInvalid, "app name %q is reserved by the platform — choose another name", name)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func suggestName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == '_' || r == '.' || r == ' ':
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		return "my-app"
	}
	if len(out) > MaxNameLength {
		out = strings.Trim(out[:MaxNameLength], "-")
	}
	return out
}
