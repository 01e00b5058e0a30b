package api

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strings"
)

// PlacementAny matches every substrate or isolation in a PlacementPolicy, as
// does the empty string; it is stored so an app can lift a space default.
const PlacementAny = "any"

// Placement policy limits.
const (
	MaxPlacementLabels     = 32
	MaxPlacementLabelBytes = 63
)

// PlacementPolicy constrains the nodes an app's instances may run on. Empty
// fields constrain nothing; every label must match the node's label exactly.
type PlacementPolicy struct {
	Substrate Substrate         `json:"substrate,omitempty"` // metal | vm | any
	Isolation Isolation         `json:"isolation,omitempty"` // process | process-unconfined | container | microvm | any
	Labels    map[string]string `json:"labels,omitempty"`
}

// IsZero reports whether p constrains nothing and sets nothing.
func (p PlacementPolicy) IsZero() bool {
	return p.Substrate == "" && p.Isolation == "" && len(p.Labels) == 0
}

// Over returns p with every field set in over replacing p's: substrate and
// isolation when non-empty, labels key by key.
func (p PlacementPolicy) Over(over PlacementPolicy) PlacementPolicy {
	out := PlacementPolicy{Substrate: p.Substrate, Isolation: p.Isolation}
	if over.Substrate != "" {
		out.Substrate = over.Substrate
	}
	if over.Isolation != "" {
		out.Isolation = over.Isolation
	}
	if len(p.Labels)+len(over.Labels) > 0 {
		out.Labels = maps.Clone(p.Labels)
		if out.Labels == nil {
			out.Labels = map[string]string{}
		}
		maps.Copy(out.Labels, over.Labels)
	}
	return out
}

// String renders p as "substrate=metal isolation=process k=v" ("any" when
// it constrains nothing).
func (p PlacementPolicy) String() string {
	var parts []string
	if p.Substrate != "" && p.Substrate != PlacementAny {
		parts = append(parts, "substrate="+string(p.Substrate))
	}
	if p.Isolation != "" && p.Isolation != PlacementAny {
		parts = append(parts, "isolation="+string(p.Isolation))
	}
	keys := make([]string, 0, len(p.Labels))
	for k := range p.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+p.Labels[k])
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " ")
}

// Matches reports whether node n satisfies p: empty or "any" fields match
// everything; every label must match exactly.
func (p PlacementPolicy) Matches(n *Node) bool {
	if p.Substrate != "" && p.Substrate != PlacementAny && n.Substrate != p.Substrate {
		return false
	}
	if p.Isolation != "" && p.Isolation != PlacementAny && !slices.Contains(n.Isolations, p.Isolation) {
		return false
	}
	for k, v := range p.Labels {
		if got, ok := n.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Validate checks substrate and isolation against the known values and the
// labels' shape, returning an EInvalid *Error that says what to fix.
func (p PlacementPolicy) Validate() error {
	switch p.Substrate {
	case "", PlacementAny, SubstrateMetal, SubstrateVM:
	default:
		return Errorf(EInvalid, "substrate %q is not known — use metal, vm or any", truncate(string(p.Substrate), 20))
	}
	switch p.Isolation {
	case "", PlacementAny, IsolationProcess, IsolationProcessUnconfined, IsolationContainer, IsolationMicroVM:
	default:
		return Errorf(EInvalid, "isolation %q is not known — use process, process-unconfined, container, microvm or any", truncate(string(p.Isolation), 20))
	}
	if len(p.Labels) > MaxPlacementLabels {
		return Errorf(EInvalid, "%d placement labels are more than %d — use fewer", len(p.Labels), MaxPlacementLabels)
	}
	for k, v := range p.Labels {
		if err := ValidateLabel(k, v); err != nil {
			return err
		}
	}
	return nil
}

// ValidateLabel checks one placement label: a key of 1–63 characters of
// letters, digits, '-', '_', '.' and '/', and a value of at most 63 of
// letters, digits, '-', '_' and '.'.
func ValidateLabel(k, v string) error {
	if k == "" || len(k) > MaxPlacementLabelBytes || !labelChars(k, "-_./") {
		return Errorf(EInvalid, "label key %q is not valid — use 1–%d letters, digits, '-', '_', '.' or '/'", truncate(k, 20), MaxPlacementLabelBytes)
	}
	if len(v) > MaxPlacementLabelBytes || !labelChars(v, "-_.") {
		return Errorf(EInvalid, "label %s value %q is not valid — use at most %d letters, digits, '-', '_' or '.'", k, truncate(v, 20), MaxPlacementLabelBytes)
	}
	return nil
}

func labelChars(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// PlacementScope is what a stored placement policy belongs to.
type PlacementScope string

// Placement scopes, from the widest default to the app's own policy; a
// narrower scope overrides a wider one field by field.
const (
	PlacementOrg   PlacementScope = "org"
	PlacementSpace PlacementScope = "space"
	PlacementApp   PlacementScope = "app"
)

// Placement is one stored policy and its owner (an org, space or app ID).
type Placement struct {
	Scope   PlacementScope  `json:"scope"`
	OwnerID string          `json:"owner_id"`
	Policy  PlacementPolicy `json:"policy"`
}

// SpaceInfo is one line of `strata spaces`: a space and its default
// placement policy (and its org's, which it overrides).
type SpaceInfo struct {
	Space
	Org          string          `json:"org"`
	Placement    PlacementPolicy `json:"placement"`
	OrgPlacement PlacementPolicy `json:"org_placement"`
}

// PlacementService manages placement policies and node drain. Changing
// another space's or the org's defaults and draining nodes need an admin.
type PlacementService interface {
	// Spaces lists the spaces of the default org with their policies.
	Spaces(ctx context.Context) ([]*SpaceInfo, error)
	// SetSpacePlacement replaces a space's default policy (a zero policy
	// clears it).
	SetSpacePlacement(ctx context.Context, space string, p PlacementPolicy) (*SpaceInfo, error)
	// SetOrgPlacement replaces the default org's policy (zero clears it).
	SetOrgPlacement(ctx context.Context, p PlacementPolicy) error
	// AppPlacement returns an app's own policy (zero when it has none).
	AppPlacement(ctx context.Context, app string) (PlacementPolicy, error)
	// SetAppPlacement replaces an app's own policy (zero clears it).
	SetAppPlacement(ctx context.Context, app string, p PlacementPolicy) error
	// DrainNode marks a node draining: its instances move elsewhere, each
	// replacement running before the old one stops, and it takes no new
	// placements. UndrainNode ends that. Both persist across restarts.
	DrainNode(ctx context.Context, id string) (*Node, error)
	UndrainNode(ctx context.Context, id string) (*Node, error)
}
