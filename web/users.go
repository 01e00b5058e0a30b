package web

import (
	"net/http"
	"strings"

	"github.com/strata-paas/strata/api"
)

type usersData struct {
	page
	Users   []api.UserInfo
	Created *api.CreatedUser
}

// usersPage lists users with a form to create one (api.UserService; the
// controller allows it to admins only).
func (c *Console) usersPage(w http.ResponseWriter, r *http.Request) {
	c.renderUsers(w, r, nil)
}

func (c *Console) renderUsers(w http.ResponseWriter, r *http.Request, created *api.CreatedUser) {
	us, err := c.svc.Users.ListUsers(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, http.StatusOK, "users", usersData{page: c.basePage(w, r, "Users"), Users: us, Created: created})
}

// createUser creates a user and answers the users page with the generated
// password, shown this once (never put in a cookie or a redirect).
func (c *Console) createUser(w http.ResponseWriter, r *http.Request) {
	req := api.UserRequest{Name: strings.TrimSpace(r.PostFormValue("name")), Admin: r.PostFormValue("admin") == "on",
		Password: r.PostFormValue("password")}
	u, err := c.svc.Users.CreateUser(r.Context(), req)
	if api.ErrorCode(err) == api.EUnauthorized {
		c.fail(w, r, err)
		return
	}
	if err != nil {
		c.setFlash(w, r, false, api.ErrorMessage(err))
		http.Redirect(w, r, "/users", http.StatusSeeOther)
		return
	}
	c.renderUsers(w, r, u)
}

type confirmUserData struct {
	page
	Name string
}

func (c *Console) deleteUserConfirm(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("user")
	if err := api.ValidateName("user", name); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, http.StatusOK, "deleteuser", confirmUserData{page: c.basePage(w, r, "Delete "+name), Name: name})
}

func (c *Console) deleteUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("user")
	err := c.svc.Users.DeleteUser(r.Context(), name)
	if api.ErrorCode(err) == api.EUnauthorized {
		c.fail(w, r, err)
		return
	}
	if err != nil {
		c.setFlash(w, r, false, api.ErrorMessage(err))
	} else {
		c.setFlash(w, r, true, "deleted user "+name)
	}
	http.Redirect(w, r, "/users", http.StatusSeeOther)
}

type accountData struct {
	page
	Tokens []api.TokenInfo
}

// accountPage shows the caller's tokens and a password form.
func (c *Console) accountPage(w http.ResponseWriter, r *http.Request) {
	ts, err := c.svc.Users.Tokens(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, http.StatusOK, "account", accountData{page: c.basePage(w, r, "Your account"), Tokens: ts})
}

func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("id")
	err := c.svc.Users.RevokeToken(r.Context(), id)
	c.accountDone(w, r, err, "revoked token "+id)
}

func (c *Console) changePassword(w http.ResponseWriter, r *http.Request) {
	if r.PostFormValue("new") != r.PostFormValue("repeat") {
		c.accountDone(w, r, api.Errorf(api.EInvalid, "the new passwords differ — type the same one twice"), "")
		return
	}
	err := c.svc.Users.ChangePassword(r.Context(), api.PasswordChange{Old: r.PostFormValue("old"), New: r.PostFormValue("new")})
	c.accountDone(w, r, err, "your password is changed")
}

func (c *Console) accountDone(w http.ResponseWriter, r *http.Request, err error, ok string) {
	switch {
	case api.ErrorCode(err) == api.EUnauthorized:
		c.fail(w, r, err)
		return
	case err != nil:
		c.setFlash(w, r, false, api.ErrorMessage(err))
	default:
		c.setFlash(w, r, true, ok)
	}
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}
