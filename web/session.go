package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/strata-paas/strata/api"
)

// Cookie names. The session cookie holds the API token itself (HttpOnly,
// so page scripts never see it): the console keeps no session state, and
// any controller of a cluster serves any request.
const (
	sessionCookie = "strata_session"
	loginCookie   = "strata_login" // CSRF secret of the login forms, before a session exists
	flashCookie   = "strata_flash"
	csrfField     = "csrf"
	maxFormBytes  = 1 << 20
)

// Session kinds, the prefix of the session cookie's value. A password
// login's token was made for this session and is revoked at logout; an
// API token the user pasted is theirs (it may be the admin token nodes
// use), so logout only forgets it.
const (
	kindPassword = "p"
	kindToken    = "t"
)

type session struct {
	kind  string
	token string
	p     *api.Principal
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// csrfToken is the CSRF token of a session: an HMAC of a fixed label keyed
// by the session's API token, which a cross-site page cannot know.
func csrfToken(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("strata-console-csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) secure(r *http.Request) bool { return c.cfg.SecureCookies || r.TLS != nil }

func (c *Console) cookie(r *http.Request, name, value, path string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: c.secure(r)}
}

func (c *Console) setSession(w http.ResponseWriter, r *http.Request, kind, token string, expires time.Time) {
	ck := c.cookie(r, sessionCookie, kind+"."+base64.RawURLEncoding.EncodeToString([]byte(token)), "/", 0)
	if !expires.IsZero() {
		ck.Expires = expires
	}
	http.SetCookie(w, ck)
}

func (c *Console) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, c.cookie(r, sessionCookie, "", "/", -1))
}

// readSession returns the kind and token of the session cookie, or "".
func readSession(r *http.Request) (kind, token string) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", ""
	}
	kind, enc, ok := strings.Cut(ck.Value, ".")
	if !ok || (kind != kindPassword && kind != kindToken) {
		return "", ""
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(b) == 0 {
		return "", ""
	}
	return kind, string(b)
}

func (c *Console) setFlash(w http.ResponseWriter, r *http.Request, ok bool, msg string) {
	v := "e"
	if ok {
		v = "o"
	}
	http.SetCookie(w, c.cookie(r, flashCookie, v+base64.RawURLEncoding.EncodeToString([]byte(msg)), "/", 60))
}

// takeFlash returns the flash message set by the previous response and
// clears it.
func (c *Console) takeFlash(w http.ResponseWriter, r *http.Request) (string, bool) {
	ck, err := r.Cookie(flashCookie)
	if err != nil || len(ck.Value) < 1 {
		return "", false
	}
	http.SetCookie(w, c.cookie(r, flashCookie, "", "/", -1))
	b, err := base64.RawURLEncoding.DecodeString(ck.Value[1:])
	if err != nil {
		return "", false
	}
	return string(b), ck.Value[0] == 'o'
}

// authed requires a session whose token the controller accepts, puts the
// principal (and the page's org and space) in the request's context, and
// refuses a POST without the session's CSRF token.
func (c *Console) authed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		kind, token := readSession(r)
		if token == "" {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			c.fail(w, r, api.Errorf(api.EUnauthorized, "you are not logged in — log in first"))
			return
		}
		p, err := c.svc.Auth.Authenticate(r.Context(), token)
		if err == nil && p == nil {
			err = api.Errorf(api.EUnauthorized, "the session's token is not valid — log in again")
		}
		if err != nil {
			if api.ErrorCode(err) == api.EUnauthorized {
				err = api.Errorf(api.EUnauthorized, "your session has ended — log in again")
			}
			c.fail(w, r, err)
			return
		}
		s := &session{kind: kind, token: token, p: p}
		ctx := context.WithValue(api.WithPrincipal(r.Context(), p), sessionKey{}, s)
		if org := r.PathValue("org"); org != "" {
			t := api.Target{Org: org, Space: r.PathValue("space")}
			if err := t.Validate(); err != nil {
				c.fail(w, r, err)
				return
			}
			ctx = api.WithTarget(ctx, t)
		}
		r = r.WithContext(ctx)
		if r.Method == http.MethodPost {
			// Forms are small: a config var value is at most 32 KiB.
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if !hmac.Equal([]byte(r.PostFormValue(csrfField)), []byte(csrfToken(token))) {
				c.fail(w, r, api.Errorf(api.EForbidden, "the form had no valid CSRF token — reload the page and try again"))
				return
			}
		}
		next(w, r)
	}
}

// basePage fills the layout's fields from the request's session.
func (c *Console) basePage(w http.ResponseWriter, r *http.Request, title string) page {
	p := page{Title: title}
	p.Flash, p.FlashOK = c.takeFlash(w, r)
	s := sessionFrom(r.Context())
	if s == nil {
		return p
	}
	p.User, p.Admin, p.CSRF = s.p.Name, s.p.Admin, csrfToken(s.token)
	if orgs, err := c.svc.Orgs.ListOrgs(r.Context()); err == nil {
		p.Orgs = orgs
	}
	p.Target = api.TargetFrom(r.Context())
	if p.Target.Space != "" {
		p.Base = "/orgs/" + p.Target.Org + "/spaces/" + p.Target.Space
	}
	return p
}

type loginData struct {
	page
	Username string
}

// loginPage shows the login forms, with a fresh login CSRF secret.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, token := readSession(r); token != "" {
		if p, err := c.svc.Auth.Authenticate(r.Context(), token); err == nil && p != nil {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
	}
	c.renderLogin(w, r, http.StatusOK, "", "")
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, user, msg string) {
	secret := loginSecret(r)
	if secret == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		secret = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, c.cookie(r, loginCookie, secret, "/login", 0))
	}
	d := loginData{page: page{Title: "Log in", CSRF: secret}, Username: user}
	d.Flash, d.FlashOK = c.takeFlash(w, r)
	d.Error = msg
	c.render(w, status, "login", d)
}

func loginSecret(r *http.Request) string {
	ck, err := r.Cookie(loginCookie)
	if err != nil {
		return ""
	}
	return ck.Value
}

// login checks a user name and password (api.UserService.Login, throttled
// by the controller) or an API token, and starts a session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	user := strings.TrimSpace(r.PostFormValue("username"))
	secret := loginSecret(r)
	if secret == "" || !hmac.Equal([]byte(r.PostFormValue(csrfField)), []byte(secret)) {
		c.renderLogin(w, r, http.StatusForbidden, user, "the login form had no valid CSRF token — try again")
		return
	}
	if token := strings.TrimSpace(r.PostFormValue("token")); token != "" {
		p, err := c.svc.Auth.Authenticate(r.Context(), token)
		if err != nil || p == nil {
			c.renderLogin(w, r, http.StatusUnauthorized, "", "that API token is not valid — check it, or log in with your user name and password")
			return
		}
		c.setSession(w, r, kindToken, token, time.Time{})
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	from, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		from = r.RemoteAddr
	}
	res, err := c.svc.Users.Login(r.Context(), api.LoginRequest{Username: user, Password: r.PostFormValue("password")}, from)
	if err != nil {
		c.renderLogin(w, r, statusOf(err), user, api.ErrorMessage(err))
		return
	}
	c.setSession(w, r, kindPassword, res.Token, res.ExpiresAt)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout revokes a password login's token and forgets the session.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r.Context())
	msg := "you are logged out"
	if s.kind == kindPassword {
		if err := c.svc.Users.Logout(r.Context()); err != nil {
			c.fail(w, r, err)
			return
		}
	} else {
		msg = "you are logged out; the API token you logged in with is still valid (strata tokens revoke ID revokes it)"
	}
	c.clearSession(w, r)
	c.setFlash(w, r, true, msg)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
