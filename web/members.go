package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/strata-paas/strata/api"
)

type membersData struct {
	page
	Org     string
	Members []api.Member
	Spaces  []string
	Roles   []api.Role
}

// membersPage lists an org's members and their roles, with forms to give
// and take roles (api.OrgService; the controller decides who may).
func (c *Console) membersPage(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("org")
	ms, err := c.svc.Orgs.Members(r.Context(), org)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := membersData{page: c.basePage(w, r, "Members of "+org), Org: org, Members: ms, Roles: api.Roles}
	for _, o := range d.Orgs {
		if o.Name == org {
			d.Spaces = o.Spaces
		}
	}
	c.render(w, http.StatusOK, "members", d)
}

// changeRole sets (unset=false) or unsets a role from a members form.
func (c *Console) changeRole(unset bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		org := r.PathValue("org")
		req := api.RoleRequest{User: strings.TrimSpace(r.PostFormValue("user")), Org: org, Space: r.PostFormValue("space")}
		role, err := api.ParseRole(r.PostFormValue("role"))
		if err == nil {
			req.Role = role
			if unset {
				err = c.svc.Orgs.UnsetRole(r.Context(), req)
			} else {
				err = c.svc.Orgs.SetRole(r.Context(), req)
			}
		}
		switch {
		case api.ErrorCode(err) == api.EUnauthorized:
			c.fail(w, r, err)
			return
		case err != nil:
			c.setFlash(w, r, false, api.ErrorMessage(err))
		case unset:
			c.setFlash(w, r, true, fmt.Sprintf("%s is no longer %s%s", req.User, req.Role, where(req.Space)))
		default:
			c.setFlash(w, r, true, fmt.Sprintf("%s is %s%s", req.User, req.Role, where(req.Space)))
		}
		http.Redirect(w, r, "/orgs/"+url.PathEscape(org)+"/members", http.StatusSeeOther)
	}
}

func where(space string) string {
	if space == "" {
		return ""
	}
	return " in space " + space
}
