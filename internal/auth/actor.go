package auth

import (
	"net/http"
	"strings"
)

// RoleSystem is Vigía acting by itself: the outage consumer, the sweeps,
// dispatch starting and ending its own waits.
const RoleSystem = "system"

// Actor is who acts on a row: an authenticated principal, or Vigía itself.
// Every domain package takes this one type, so a caller's rights are read the
// same way in tickets, dispatch and biomed.
type Actor struct {
	Name       string
	Role       string
	CustomerID string // the customer a RoleCustomer actor is confined to
	EngineerID string // the engineer a RoleEngineer actor is bound to, if any
}

// ActorOf is the actor of an authenticated principal.
func ActorOf(p Principal) Actor {
	return Actor{Name: p.Name, Role: p.Role, CustomerID: p.CustomerScope(), EngineerID: p.EngineerID}
}

// NOCActor is an actor with every right, for the command line and tests.
func NOCActor(name string) Actor { return Actor{Name: name, Role: RoleNOC} }

// IsNOC reports NOC staff.
func (a Actor) IsNOC() bool { return a.Role == RoleNOC }

// IsEngineer reports a field engineer.
func (a Actor) IsEngineer() bool { return a.Role == RoleEngineer }

// IsCustomer reports a hospital's user, confined to CustomerID.
func (a Actor) IsCustomer() bool { return a.Role == RoleCustomer }

// IsProvider reports the provider's people: NOC staff or an engineer.
func (a Actor) IsProvider() bool { return a.IsNOC() || a.IsEngineer() }

// String is how the actor signs what it did: "name (role)", or the role alone.
func (a Actor) String() string {
	name := strings.TrimSpace(a.Name)
	if name == "" {
		return a.Role
	}
	return name + " (" + a.Role + ")"
}

// RequestActor is the actor of the principal Middleware put on r (the zero
// Actor, with no rights, when there is none).
func RequestActor(r *http.Request) Actor {
	p, _ := FromContext(r.Context())
	return ActorOf(p)
}
