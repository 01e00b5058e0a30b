package manifest

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/strata-paas/strata/api"
)

// seqItems returns the items of the sequence under key in mapping n.
func seqItems(n *yaml.Node, key string) []*yaml.Node {
	for n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v := n.Content[i+1]
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			if v.Kind == yaml.SequenceNode {
				return v.Content
			}
		}
	}
	return nil
}

// validate fills the Line fields from the node tree and checks every value.
func (m *Manifest) validate(root *yaml.Node) error {
	if len(m.Applications) == 0 {
		return api.Errorf(api.EInvalid, "manifest has no applications — add applications: with a - name: entry")
	}
	if len(m.Applications) > MaxApps {
		return api.Errorf(api.EInvalid, "manifest has %d applications, more than %d — split it", len(m.Applications), MaxApps)
	}
	appNodes := seqItems(root, "applications")
	seen := map[string]bool{}
	for i := range m.Applications {
		a := &m.Applications[i]
		var an *yaml.Node
		if i < len(appNodes) {
			an = appNodes[i]
			a.Line = an.Line
		}
		if err := a.validate(an); err != nil {
			return err
		}
		if seen[a.Name] {
			return lineErr(a.Line, "application %q appears twice — keep one entry per app", a.Name)
		}
		seen[a.Name] = true
	}
	return nil
}

func (a *App) validate(n *yaml.Node) error {
	if a.Name == "" {
		return lineErr(a.Line, "application has no name — add name: my-app")
	}
	if err := api.ValidateAppName(a.Name); err != nil {
		return lineErr(a.Line, "%s", api.ErrorMessage(err))
	}
	if err := checkInstances(a.Instances, a.Line); err != nil {
		return err
	}
	if err := checkCommand(a.Command, a.Line); err != nil {
		return err
	}
	if len(a.Env) > api.MaxEnvVars {
		return lineErr(a.Line, "env has %d vars, more than %d", len(a.Env), api.MaxEnvVars)
	}
	for k, v := range a.Env {
		if err := api.ValidateEnvName(k); err != nil {
			return lineErr(keyLine(n, "env", k, a.Line), "%s", api.ErrorMessage(err))
		}
		if err := api.ValidateEnvValue(k, v); err != nil {
			return lineErr(keyLine(n, "env", k, a.Line), "%s", api.ErrorMessage(err))
		}
	}
	routeNodes := seqItems(n, "routes")
	for i := range a.Routes {
		r := &a.Routes[i]
		r.Line = a.Line
		if i < len(routeNodes) {
			r.Line = routeNodes[i].Line
		}
		if r.Route == "" || len(r.Route) > MaxRouteLen || strings.ContainsAny(r.Route, " \t\r\n\x00") {
			return lineErr(r.Line, "route %q is not a host name — write route: %s.localhost", clip(r.Route), a.Name)
		}
	}
	if err := checkHealth(a.HealthCheck, a.HealthPath, a.Timeout, a.Interval, a.Line); err != nil {
		return err
	}
	procNodes := seqItems(n, "processes")
	types := map[string]bool{}
	for i := range a.Processes {
		p := &a.Processes[i]
		p.Line = a.Line
		if i < len(procNodes) {
			p.Line = procNodes[i].Line
		}
		if err := p.validate(); err != nil {
			return err
		}
		if types[p.Type] {
			return lineErr(p.Line, "process type %q appears twice — keep one entry per type", p.Type)
		}
		types[p.Type] = true
	}
	return nil
}

func (p *Process) validate() error {
	if p.Type == "" || len(p.Type) > 63 {
		return lineErr(p.Line, "process has no valid type — add type: worker")
	}
	for _, c := range p.Type {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return lineErr(p.Line, "process type %q may only contain a-z, 0-9, '_' and '-'", clip(p.Type))
		}
	}
	if err := checkInstances(p.Instances, p.Line); err != nil {
		return err
	}
	if err := checkCommand(p.Command, p.Line); err != nil {
		return err
	}
	return checkHealth(p.HealthCheck, p.HealthPath, p.Timeout, p.Interval, p.Line)
}

func checkInstances(n *int, line int) error {
	if n != nil && (*n < 0 || *n > 100) {
		return lineErr(line, "instances %d is out of range — use 0 to 100", *n)
	}
	return nil
}

func checkCommand(cmd string, line int) error {
	if len(cmd) > MaxCommand {
		return lineErr(line, "command is longer than %d bytes — put it in a script", MaxCommand)
	}
	for _, r := range cmd {
		if r < ' ' && r != '\t' || r == 0x7f {
			return lineErr(line, "command contains a control character or newline — keep it on one line")
		}
	}
	return nil
}

func checkHealth(h HealthCheckType, path string, timeout, interval *int, line int) error {
	if timeout != nil && (*timeout < 1 || *timeout > api.MaxHealthCheckTimeout) {
		return lineErr(line, "timeout %d is outside 1–%d seconds (the health check start-up timeout)", *timeout, api.MaxHealthCheckTimeout)
	}
	if interval != nil && (*interval < 1 || *interval > api.MaxHealthCheckInterval) {
		return lineErr(line, "health-check-interval %d is outside 1–%d seconds", *interval, api.MaxHealthCheckInterval)
	}
	if path == "" {
		return nil
	}
	if h.Type != api.HealthHTTP {
		return lineErr(line, "health-check-http-endpoint needs health-check-type: http")
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n\x00") || len(path) > 1024 {
		return lineErr(line, "health-check-http-endpoint %q must be a path like /healthz", clip(path))
	}
	return nil
}

// keyLine returns the line of key k in the mapping under section of n.
func keyLine(n *yaml.Node, section, k string, def int) int {
	if n == nil || n.Kind != yaml.MappingNode {
		return def
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != section {
			continue
		}
		m := n.Content[i+1]
		for j := 0; j+1 < len(m.Content); j += 2 {
			if m.Content[j].Value == k {
				return m.Content[j].Line
			}
		}
	}
	return def
}
