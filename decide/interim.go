package decide

import (
	"context"
	"time"

	"github.com/deploykit/deploy/state"
)

// The shapes below are the cross-workstream API agreed for package deploy
// (Decision) and package state (Query, Summary, Page, Lister). They are
// defined here until those land, and become aliases of them then.

// Decision says who decided and why.
type Decision struct{ By, Reason string }

// Query selects releases to list.
type Query struct {
	Service, Environment string
	Statuses             []state.Status
	ActiveOnly           bool
	After                string
	Limit                int
}

// Summary is one release of a listing.
type Summary struct {
	ID, Service, Environment, Version string
	Status                            state.Status
	Phase                             state.Phase
	Next                              time.Time
	Updated                           time.Time
}

// Page is one page of a listing; Next is the cursor for Query.After, "" at
// the end.
type Page struct {
	Releases []Summary
	Next     string
}

// Lister lists releases.
type Lister interface {
	List(ctx context.Context, q Query) (Page, error)
}
