package bus

import (
	"crypto/subtle"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/strata-paas/strata/api"
)

// Grant is what one authenticated bus client may do: the subjects (NATS
// wildcards allowed) it may publish to and subscribe to. See docs/tenancy.md
// ("the bus") for who gets which grant.
type Grant struct {
	// All grants every subject; only the controller has it.
	All       bool
	Publish   []string
	Subscribe []string
	// Respond lets the client answer the requests it receives (one reply
	// each) without a publish grant on other clients' reply inboxes.
	Respond bool
}

// Authenticator decides who may connect to an embedded server: it returns
// the grant of the client that presents user and password, or false.
type Authenticator func(user, password string) (Grant, bool)

// The bus users of the components. A client authenticates as
// "<component>/<id>" with its component credential as the password; the
// id binds what it may read (an executor reads only its own node's
// commands) and names its reply inbox.
const (
	// ControllerUser is the bus user of the controller that embeds the server.
	ControllerUser = "controller"
	userExecutor   = "executor/"
	userRouter     = "router/"
)

// ExecutorUser is the bus user of the executor of node nodeID.
func ExecutorUser(nodeID string) string { return userExecutor + nodeID }

// RouterUser is the bus user of a router; id tells routers apart in logs.
func RouterUser(id string) string { return userRouter + id }

// inboxPrefix is the reply-inbox prefix of user: a client may subscribe to
// its own inbox only, so nobody reads the replies another client asked for.
func inboxPrefix(user string) string {
	return "_INBOX_" + strings.NewReplacer("/", "_", ".", "_").Replace(user)
}

// ComponentAuth returns the Authenticator for the components of one
// controller: the controller itself (controllerSecret, held in memory by
// the process that embeds the server), executors and routers (their
// component credentials, read through creds at each connection so that a
// credential made after the server started counts). A client that
// presents anything else is refused; app instances have no credential.
func ComponentAuth(controllerSecret string, creds func(component string) string) Authenticator {
	return func(user, password string) (Grant, bool) {
		switch {
		case user == ControllerUser:
			return Grant{All: true}, equal(password, controllerSecret)
		case strings.HasPrefix(user, userExecutor):
			node := strings.TrimPrefix(user, userExecutor)
			if !subjectToken(node) || !equal(password, creds(api.ComponentExecutor)) {
				return Grant{}, false
			}
			return executorGrant(node), true
		case strings.HasPrefix(user, userRouter):
			if !subjectToken(strings.TrimPrefix(user, userRouter)) || !equal(password, creds(api.ComponentRouter)) {
				return Grant{}, false
			}
			return routerGrant(user), true
		}
		return Grant{}, false
	}
}

// executorGrant: an executor reports its node and instances, registers
// routes and ships logs; it reads only its own node's commands. Like a
// router it has no JetStream API ($JS.API.>) and no object store subjects
// ($O.>): only controllers open the blob store (Objects); executors fetch
// droplets over the REST blob API.
func executorGrant(node string) Grant {
	return Grant{
		Publish: []string{
			api.SubjectNodeHeartbeat, api.SubjectInstanceEvent,
			api.SubjectRouterRegister, api.SubjectRouterUnregister, api.SubjectRouterGreet,
			api.SubjectLogsAll, api.SubjectTaskExit("*"),
		},
		Subscribe: []string{api.SubjectNodeCommand(node), api.SubjectRouterStart, inboxPrefix(ExecutorUser(node)) + ".>"},
		Respond:   true,
	}
}

// routerGrant: a router learns routes and certificate changes, announces
// itself, ships access logs, reports its routes' activity and asks for
// sleeping apps to wake; it cannot send node commands or register routes.
func routerGrant(user string) Grant {
	return Grant{
		Publish: []string{api.SubjectRouterStart, api.SubjectLogsAll, api.SubjectRouterWake, api.SubjectRouterActivity},
		// "router.*" is every subject meant for routers (registrations,
		// greetings, starts), as the registry subscribes to them.
		Subscribe: []string{"router.*", api.SubjectCertificatesChanged, inboxPrefix(user) + ".>"},
		Respond:   true,
	}
}

func equal(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// subjectToken reports whether s can stand as one token of a subject.
func subjectToken(s string) bool {
	return s != "" && len(s) <= 128 && !strings.ContainsAny(s, ".*> \t\r\n")
}

// authAdapter plugs an Authenticator into nats-server.
type authAdapter struct{ fn Authenticator }

func (a authAdapter) Check(c server.ClientAuthentication) bool {
	o := c.GetOpts()
	g, ok := a.fn(o.Username, o.Password)
	if !ok {
		return false
	}
	u := &server.User{Username: o.Username}
	if !g.All {
		u.Permissions = &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: g.Publish},
			Subscribe: &server.SubjectPermission{Allow: g.Subscribe},
		}
		if g.Respond {
			u.Permissions.Response = &server.ResponsePermission{MaxMsgs: 1}
		}
	}
	c.RegisterUser(u)
	return true
}
