package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/strata-paas/strata/api"
)

// Limits.
const (
	MaxBytes    = 1 << 20 // manifest file size
	MaxNodes    = 10000   // YAML nodes after alias expansion
	MaxApps     = 100
	MaxCommand  = 4096
	MaxRouteLen = 253
)

// Names tried by Find, in order.
var Names = []string{"strata.yml", "strata.yaml", "manifest.yml", "manifest.yaml"}

// Manifest is a parsed manifest file.
type Manifest struct {
	Applications []App `yaml:"applications"`
}

// App is one application of a manifest. Zero fields are unset.
type App struct {
	Name        string            `yaml:"name"`
	Instances   *int              `yaml:"instances"`
	Memory      Size              `yaml:"memory"`
	DiskQuota   Size              `yaml:"disk_quota"`
	Buildpacks  []string          `yaml:"buildpacks"`
	Buildpack   string            `yaml:"buildpack"`
	Command     string            `yaml:"command"`
	Env         map[string]string `yaml:"env"`
	Routes      []Route           `yaml:"routes"`
	HealthCheck HealthCheckType   `yaml:"health-check-type"`
	HealthPath  string            `yaml:"health-check-http-endpoint"`
	Timeout     *int              `yaml:"timeout"`
	Interval    *int              `yaml:"health-check-interval"`
	ScaleToZero *ScaleToZero      `yaml:"scale-to-zero"`
	Processes   []Process         `yaml:"processes"`
	Placement   *Placement        `yaml:"placement"`
	Stack       string            `yaml:"stack"`
	Path        string            `yaml:"path"`
	NoRoute     bool              `yaml:"no-route"`
	RandomRoute bool              `yaml:"random-route"`
	// Docker deploys an image instead of building the pushed source.
	Docker *Docker `yaml:"docker"`

	Line int `yaml:"-"` // line of the application's entry
}

// Docker is an application's image (Cloud Foundry's docker: key).
type Docker struct {
	Image string `yaml:"image"`
}

// Process is one entry of an application's processes.
type Process struct {
	Type        string          `yaml:"type"`
	Instances   *int            `yaml:"instances"`
	Memory      Size            `yaml:"memory"`
	DiskQuota   Size            `yaml:"disk_quota"`
	Command     string          `yaml:"command"`
	HealthCheck HealthCheckType `yaml:"health-check-type"`
	HealthPath  string          `yaml:"health-check-http-endpoint"`
	Timeout     *int            `yaml:"timeout"`
	Interval    *int            `yaml:"health-check-interval"`

	Line int `yaml:"-"`
}

// Route is one entry of routes.
type Route struct {
	Route string `yaml:"route"`
	Line  int    `yaml:"-"`
}

// Placement is Strata's placement extension.
type Placement struct {
	Substrate string            `yaml:"substrate"`
	Isolation string            `yaml:"isolation"`
	Labels    map[string]string `yaml:"labels"`
}

// Size is a memory or disk size in MB with the line it was read from; 0 is
// unset. It accepts 512M, 512MB, 1G, 1GB and a bare number of MB.
type Size struct {
	MB   int
	Line int
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	mb, err := ParseSize(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return lineErr(n.Line, "size %q is not valid — use e.g. 256M or 1G", clip(n.Value))
	}
	s.MB, s.Line = mb, n.Line
	return nil
}

// ScaleToZero is an app's scale-to-zero: how long its web instances may go
// without requests before they are stopped (Seconds, 0 = off).
type ScaleToZero struct {
	Seconds int
	Line    int
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (z *ScaleToZero) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return lineErr(n.Line, "scale-to-zero must be a duration such as 15m, or off")
	}
	sec, err := ParseScaleToZero(n.Value)
	if err != nil {
		return lineErr(n.Line, "scale-to-zero: %s", err.(*api.Error).Message)
	}
	z.Seconds, z.Line = sec, n.Line
	return nil
}

// ParseScaleToZero parses a scale-to-zero idle time: a Go duration of at
// least api.MinScaleToZero seconds and at most api.MaxScaleToZero, in whole
// seconds, or "off" (0).
func ParseScaleToZero(s string) (int, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, api.Errorf(api.EInvalid, "idle time %q is not valid — use a duration such as 15m or 1h, or off", clip(s))
	}
	if d < api.MinScaleToZero*time.Second || d > api.MaxScaleToZero*time.Second {
		return 0, api.Errorf(api.EInvalid, "idle time %s is outside %s–%s — use e.g. 15m, or off", d, time.Duration(api.MinScaleToZero)*time.Second, time.Duration(api.MaxScaleToZero)*time.Second)
	}
	return int(d / time.Second), nil
}

// HealthCheckType is port, http or process ("" = unset).
type HealthCheckType struct {
	Type string
	Line int
}

// UnmarshalYAML implements yaml.Unmarshaler; CF's old "none" means process.
func (h *HealthCheckType) UnmarshalYAML(n *yaml.Node) error {
	v := n.Value
	if v == "none" {
		v = api.HealthProcess
	}
	if n.Kind != yaml.ScalarNode || v != api.HealthPort && v != api.HealthHTTP && v != api.HealthProcess {
		return lineErr(n.Line, "health-check-type %q is not valid — use port, http or process", clip(n.Value))
	}
	h.Type, h.Line = v, n.Line
	return nil
}

// ParseSize parses 512, 512M, 512MB, 1G, 1GB, 1.5G (case-insensitive) into
// whole megabytes.
func ParseSize(s string) (int, error) {
	bad := api.Errorf(api.EInvalid, "size %q is not valid — use e.g. 512M or 1G", clip(s))
	u := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B")
	mult := 1.0
	switch {
	case strings.HasSuffix(u, "G"):
		mult, u = 1024, strings.TrimSuffix(u, "G")
	case strings.HasSuffix(u, "M"):
		u = strings.TrimSuffix(u, "M")
	}
	if u == "" || strings.Trim(u, "0123456789.") != "" {
		return 0, bad
	}
	f, err := strconv.ParseFloat(u, 64)
	if err != nil || f <= 0 || f*mult > 1<<30 {
		return 0, bad
	}
	mb := int(f * mult)
	if float64(mb) != f*mult {
		return 0, bad
	}
	return mb, nil
}

// Find returns the path of the manifest in dir ("" when there is none).
func Find(dir string) string {
	for _, n := range Names {
		p := filepath.Join(dir, n)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// Load reads and parses the manifest at path.
func Load(path string) (*Manifest, error) {
	m, _, err := ReadFile(path)
	return m, err
}

// ReadFile reads and parses the manifest at path, returning its bytes too
// (what `strata push` uploads).
func ReadFile(path string) (*Manifest, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, api.Errorf(api.EInvalid, "cannot read manifest %s: %v — check the path given with -f", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, nil, api.Errorf(api.EInvalid, "cannot read manifest %s: %v", path, err)
	}
	m, err := Parse(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return m, b, nil
}

// Parse parses and validates a manifest.
func Parse(data []byte) (*Manifest, error) {
	if len(data) > MaxBytes {
		return nil, api.Errorf(api.EInvalid, "manifest is larger than %d bytes — keep it short", MaxBytes)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, api.Errorf(api.EInvalid, "manifest contains a NUL byte — save it as plain UTF-8 text")
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, api.Errorf(api.EInvalid, "manifest is empty — add an applications: list")
		}
		return nil, yamlErr(err)
	}
	budget := MaxNodes
	if !bounded(&root, &budget, 0) {
		return nil, api.Errorf(api.EInvalid, "manifest is too large or too deeply nested after expanding aliases (more than %d nodes) — write it out plainly", MaxNodes)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, api.Errorf(api.EInvalid, "manifest holds more than one YAML document — keep one")
	}
	m := &Manifest{}
	if err := strictDecode(&root, m); err != nil {
		return nil, err
	}
	if err := m.validate(&root); err != nil {
		return nil, err
	}
	return m, nil
}

// bounded walks n, following aliases, and reports whether it has at most
// *budget nodes and depth 100.
func bounded(n *yaml.Node, budget *int, depth int) bool {
	*budget--
	if *budget < 0 || depth > 100 {
		return false
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return bounded(n.Alias, budget, depth+1)
	}
	for _, c := range n.Content {
		if !bounded(c, budget, depth+1) {
			return false
		}
	}
	return true
}

// strictDecode decodes node into v refusing unknown keys. yaml.v3 applies
// KnownFields only through a Decoder, so the node is re-encoded first.
func strictDecode(node *yaml.Node, v *Manifest) error {
	b, err := yaml.Marshal(node)
	if err != nil {
		return api.Errorf(api.EInvalid, "manifest cannot be read: %v", err)
	}
	// Re-encoding keeps the structure but not the lines; decode the original
	// node for line numbers when the strict pass fails.
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	strictErr := dec.Decode(&Manifest{})
	if err := node.Decode(v); err != nil {
		return yamlErr(err)
	}
	if strictErr != nil {
		return unknownKeyErr(node, strictErr)
	}
	return nil
}

// unknownKeyErr finds the first key yaml refused and names its line.
func unknownKeyErr(root *yaml.Node, err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "field "); i >= 0 {
		name := strings.Fields(msg[i+len("field "):])[0]
		if line := findKey(root, name); line > 0 {
			return lineErr(line, "unknown key %q — see the manifest schema in docs/cli.md", clip(name))
		}
	}
	return yamlErr(err)
}

func findKey(n *yaml.Node, key string) int {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key && !knownKey(n.Content[i].Value) {
				return n.Content[i].Line
			}
		}
	}
	for _, c := range n.Content {
		if l := findKey(c, key); l > 0 {
			return l
		}
	}
	return 0
}

// knownKey lists every key of the schema, so findKey skips legitimate uses.
func knownKey(k string) bool {
	switch k {
	case "applications", "name", "instances", "memory", "disk_quota", "buildpacks", "buildpack", "command", "env",
		"routes", "route", "health-check-type", "health-check-http-endpoint", "timeout", "health-check-interval", "scale-to-zero", "processes", "type",
		"placement", "substrate", "isolation", "labels", "stack", "path", "no-route", "random-route", "docker", "image":
		return true
	}
	return false
}

var lineRe = "line "

// yamlErr turns a yaml error into an EInvalid *api.Error keeping its line.
func yamlErr(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	msg = strings.Join(strings.Fields(msg), " ")
	if !strings.Contains(msg, lineRe) {
		msg = "manifest: " + msg
	}
	return api.Errorf(api.EInvalid, "%s — fix the manifest", clip(msg))
}

func lineErr(line int, format string, args ...any) error {
	return api.Errorf(api.EInvalid, "line %d: %s", line, fmt.Sprintf(format, args...))
}

func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s), "?")
}
