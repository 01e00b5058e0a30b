package web

import (
	"net/http"

	"github.com/strata-paas/strata/api"
)

type nodesData struct {
	page
	Nodes []api.Node
}

// nodesPage lists the executors with their substrate, isolations, capacity,
// instances and state, and drain/undrain buttons (admins only: the
// controller refuses others).
func (c *Console) nodesPage(w http.ResponseWriter, r *http.Request) {
	ns, err := c.svc.Nodes.Nodes(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, http.StatusOK, "nodes", nodesData{page: c.basePage(w, r, "Nodes"), Nodes: ns})
}

// drain drains a node (its instances move off, new ones stay away) or
// undrains it.
func (c *Console) drain(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var err error
		if on {
			_, err = c.svc.Nodes.DrainNode(r.Context(), id)
		} else {
			_, err = c.svc.Nodes.UndrainNode(r.Context(), id)
		}
		if api.ErrorCode(err) == api.EUnauthorized {
			c.fail(w, r, err)
			return
		}
		switch {
		case err != nil:
			c.setFlash(w, r, false, api.ErrorMessage(err))
		case on:
			c.setFlash(w, r, true, "draining "+id+": its instances move to other nodes")
		default:
			c.setFlash(w, r, true, id+" takes instances again")
		}
		http.Redirect(w, r, "/nodes", http.StatusSeeOther)
	}
}
