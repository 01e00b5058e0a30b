package controller

import (
	"context"
	"slices"
	"strings"

	"github.com/strata-paas/strata/api"
)

// action is what a request wants to do; authorize decides, in this one
// place, whether a principal may (docs/tenancy.md, "Who may do what").
type action int

const (
	actRead        action = iota // see a space's apps, releases, events, logs, routes
	actDevelop                   // push, scale, env, tasks, routes, start/stop/delete apps
	actManageSpace               // manage a space's members
	actReadOrg                   // see an org, its spaces and members
	actManageOrg                 // create and delete spaces, manage org members
	actAdmin                     // everything else: users, orgs, nodes, certificates, policies
)

var actionNames = map[action]string{
	actRead: "reading this space", actDevelop: "changing apps in this space", actManageSpace: "managing this space's members",
	actReadOrg: "reading this org", actManageOrg: "managing this org", actAdmin: "this",
}

// decision is the outcome of authorize.
type decision int

const (
	allow  decision = iota
	hidden          // the principal may not even see the resource: answer 404
	forbid          // it may see it but not do this: answer 403
)

// authorize decides whether p may do act on a resource of orgID (and
// spaceID, "" for org-level resources). Admins may do everything. Org
// managers see and manage their org and read its spaces' apps; org auditors
// see the org; space managers manage members and read apps of their space;
// space developers also change its apps; space auditors read them.
func authorize(p *api.Principal, act action, orgID, spaceID string) decision {
	if p == nil {
		return hidden
	}
	if p.Admin {
		return allow
	}
	if act == actAdmin {
		return forbid
	}
	if p.Component != "" {
		return hidden // components see no tenant's apps or orgs (requireComponent)
	}
	var orgRoles, spaceRoles []api.Role
	for _, b := range p.Roles {
		switch {
		case b.OrgID != orgID:
		case b.SpaceID == "":
			orgRoles = append(orgRoles, b.Role)
		case b.SpaceID == spaceID:
			spaceRoles = append(spaceRoles, b.Role)
		default:
			// A role in another space of the org lets one see the org.
			orgRoles = append(orgRoles, "")
		}
	}
	has := func(roles []api.Role, want ...api.Role) bool {
		for _, r := range roles {
			for _, w := range want {
				if r == w {
					return true
				}
			}
		}
		return false
	}
	seesOrg := len(orgRoles) > 0 || len(spaceRoles) > 0
	if spaceID == "" {
		switch {
		case !seesOrg:
			return hidden
		case act == actReadOrg:
			return allow
		case act == actManageOrg && has(orgRoles, api.RoleOrgManager):
			return allow
		}
		return forbid
	}
	seesSpace := len(spaceRoles) > 0 || has(orgRoles, api.RoleOrgManager)
	switch act {
	case actReadOrg:
		if seesOrg {
			return allow
		}
	case actRead:
		if seesSpace {
			return allow
		}
	case actDevelop:
		if has(spaceRoles, api.RoleSpaceDeveloper) {
			return allow
		}
	case actManageSpace, actManageOrg:
		if has(spaceRoles, api.RoleSpaceManager) || has(orgRoles, api.RoleOrgManager) {
			return allow
		}
	}
	// Who may see the org sees that its spaces exist: managing members is
	// refused as such. Apps stay hidden from those who may not read them.
	if act == actReadOrg || act == actManageSpace || act == actManageOrg {
		if !seesOrg {
			return hidden
		}
		return forbid
	}
	if !seesSpace {
		return hidden
	}
	return forbid
}

// forbidden is the 403 answer to act.
func forbidden(act action, where string) error {
	need := map[action]string{
		actRead: "a role in the space", actDevelop: "the space-developer role", actManageSpace: "the space-manager or org-manager role",
		actReadOrg: "a role in the org", actManageOrg: "the org-manager role", actAdmin: "an admin",
	}[act]
	msg := actionNames[act] + " needs " + need
	if where != "" {
		msg += " in " + where
	}
	return api.Errorf(api.EForbidden, "%s — ask an org manager or an admin", msg)
}

// requireComponent refuses callers that are neither admins nor one of
// components.
func requireComponent(ctx context.Context, what string, components ...string) error {
	p := api.PrincipalFrom(ctx)
	if p != nil && (p.Admin || p.Component != "" && slices.Contains(components, p.Component)) {
		return nil
	}
	return api.Errorf(api.EForbidden, "%s needs an admin or the %s credential", what, strings.Join(components, " or "))
}

// requireAdmin refuses callers who are not admins.
func requireAdmin(ctx context.Context, what string) error {
	if authorize(api.PrincipalFrom(ctx), actAdmin, "", "") != allow {
		return api.Errorf(api.EForbidden, "%s needs an admin — ask one, or log in as one", what)
	}
	return nil
}
