package controller

import (
	"testing"

	"github.com/strata-paas/strata/api"
)

// The whole role matrix of authorize, on a space of the principal's own org
// ("o1"/"s1"), another space of that org ("s2") and a foreign org ("o2").
func TestAuthorizeMatrix(t *testing.T) {
	as := func(roles ...api.RoleBinding) *api.Principal { return &api.Principal{Name: "u", Roles: roles} }
	org := func(r api.Role) api.RoleBinding { return api.RoleBinding{OrgID: "o1", Role: r} }
	space := func(r api.Role) api.RoleBinding { return api.RoleBinding{OrgID: "o1", SpaceID: "s1", Role: r} }
	principals := map[string]*api.Principal{
		"none":            nil,
		"admin":           {Name: "root", Admin: true},
		"no-role":         as(),
		"org-manager":     as(org(api.RoleOrgManager)),
		"org-auditor":     as(org(api.RoleOrgAuditor)),
		"space-manager":   as(space(api.RoleSpaceManager)),
		"space-developer": as(space(api.RoleSpaceDeveloper)),
		"space-auditor":   as(space(api.RoleSpaceAuditor)),
	}
	type target struct{ org, space string }
	own, sibling, foreign, ownOrg, foreignOrg := target{"o1", "s1"}, target{"o1", "s2"}, target{"o2", "s9"}, target{"o1", ""}, target{"o2", ""}
	A, H, F := allow, hidden, forbid
	for _, c := range []struct {
		who  string
		act  action
		at   target
		want decision
	}{
		{"none", actRead, own, H},
		{"admin", actAdmin, own, A}, {"admin", actDevelop, foreign, A}, {"admin", actManageOrg, foreignOrg, A},
		{"no-role", actRead, own, H}, {"no-role", actReadOrg, ownOrg, H}, {"no-role", actAdmin, own, F},

		{"org-manager", actRead, own, A}, {"org-manager", actRead, sibling, A}, {"org-manager", actDevelop, own, F},
		{"org-manager", actManageSpace, own, A}, {"org-manager", actManageOrg, ownOrg, A}, {"org-manager", actReadOrg, ownOrg, A},
		{"org-manager", actRead, foreign, H}, {"org-manager", actReadOrg, foreignOrg, H}, {"org-manager", actAdmin, ownOrg, F},

		{"org-auditor", actReadOrg, ownOrg, A}, {"org-auditor", actManageOrg, ownOrg, F}, {"org-auditor", actRead, own, H},
		{"org-auditor", actManageSpace, own, F}, {"org-auditor", actDevelop, own, H},
		{"org-auditor", actReadOrg, foreignOrg, H},

		{"space-manager", actRead, own, A}, {"space-manager", actManageSpace, own, A}, {"space-manager", actDevelop, own, F},
		{"space-manager", actRead, sibling, H}, {"space-manager", actManageSpace, sibling, F}, {"space-manager", actReadOrg, ownOrg, A}, {"space-manager", actManageOrg, ownOrg, F},

		{"space-developer", actRead, own, A}, {"space-developer", actDevelop, own, A}, {"space-developer", actManageSpace, own, F},
		{"space-developer", actDevelop, sibling, H}, {"space-developer", actRead, foreign, H}, {"space-developer", actDevelop, foreign, H},

		{"space-auditor", actRead, own, A}, {"space-auditor", actDevelop, own, F}, {"space-auditor", actRead, sibling, H},
		{"space-auditor", actManageSpace, own, F},
	} {
		if got := authorize(principals[c.who], c.act, c.at.org, c.at.space); got != c.want {
			t.Errorf("%s %s on %s/%s: got %v, want %v", c.who, actionNames[c.act], c.at.org, c.at.space, got, c.want)
		}
	}
}
