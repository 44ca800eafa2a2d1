// Package decide is a decision page for releases: an http.Handler a deploy
// tool mounts to let people see the releases that are running or waiting
// and take the decisions a release waits for — Approve, Promote, Abort,
// Retry, Rollback — with who decided recorded.
//
//	h, err := decide.New(runner, store, auth)
//	mux.Handle("/deploys/", http.StripPrefix("/deploys", h))
//
// The page is server-rendered HTML (html/template, no JavaScript), with JSON
// endpoints alongside for scripts and chat-ops. It imports only the standard
// library and the deploy module's own packages.
//
// # Routes
//
//	GET  /                               releases running or waiting (?service=&environment=&after=)
//	GET  /releases/{id}                  a release: steps, exposure, what it waits for, analysis, gates, timeline
//	GET  /releases/{id}/report.md        its Markdown report (Runner.Report)
//	POST /releases/{id}/{action}         a decision from the release's page (a form)
//	GET  /login, POST /login, /logout    a form that keeps a token in a cookie, for Tokens
//	GET  /api/releases                   the list as JSON (List: {"releases": [...], "next": cursor})
//	GET  /api/releases/{id}              a release as JSON (View)
//	POST /api/releases/{id}/{action}     a decision as JSON (DecisionRequest), answered with an Outcome
//
// The actions are approve, promote, promote-full, skip, abort, retry and
// rollback (Action). A release offers only those that apply to it now, from
// what it waits for (state.Record.Waiting): approve, abort and rollback to a
// release waiting for a step's approval; promote, promote-full, abort and
// rollback to a pause or an inconclusive analysis; retry and rollback to an
// aborted release; promote-full, abort and rollback (and skip while the
// step's inline analysis runs) to a release being deployed. An approval gate (deploy.WithApproval) that asked the
// runner to wait shows as a wait for the approval of its step too. Steps are
// named as the runner counts them, by their index in the current stage's plan
// from 0, in forms and JSON; the page shows them from 1, with their names.
//
// # Who may decide
//
// Every route but the login form asks the Authorizer who the request comes
// from, and answers 401 without one; the identity becomes Decision.By. Tokens
// is an Authorizer of shared tokens, compared in constant time, presented as
// "Authorization: Bearer" by scripts or kept by the login form in an
// HttpOnly, SameSite=Strict cookie; an AuthorizerFunc can trust the
// headers of an authenticating proxy or the deploy tool's own sessions.
// The Decider has the last word: a step that names its approvers
// (deploy.Step.Approvers) refuses anyone else's approval, answered 403.
//
// A decision the page takes is written into the release's record by the
// Runner (durable, fenced, usable from any process sharing the store) and
// carried out by the runner that holds the release: at once in the same
// process, within an observation interval from another. The release's page
// shows it among the decisions, pending until it is carried out.
//
// # What the page refuses
//
// Nothing changes on GET: decisions are POST routes, and a GET of one is
// answered 405. Cross-origin posts are refused (http.CrossOriginProtection,
// which reads Sec-Fetch-Site and Origin). Each form carries a token, an
// HMAC of the person it was shown to, the release, the step the release was
// at and the action, which expires (WithFormTTL): a form cannot be replayed
// for another release, step, action or person, and one for a step the
// release has left is refused with 409 Conflict. JSON decisions need an
// application/json body, which a cross-site form cannot send. A decision
// that does not apply to the release as it is now (approving a release that
// waits for nothing, anything on a release that is over) is refused with 409
// and the reason, before the Decider is called.
//
// # The same decision twice
//
// A form posted twice (a double click, a reload) and a JSON decision sent
// again with the same Idempotency-Key header take effect once: the second
// gets the first one's answer with Repeated set, even while the first is
// still under way. This memory belongs to one Handler; across processes the
// runner's own rule holds: a decision already taken is a no-op.
//
// # Time limits
//
// Every request runs under WithTimeout (10 s by default): the store's reads,
// the Authorizer and each decision call, which is abandoned, answered 504,
// when it outlives it. A rollback the page has waited half that time for
// goes on after the answer, under WithRollbackTimeout, and the page answers
// 202 that it is under way. Serve
// the page from an http.Server with ReadHeaderTimeout and WriteTimeout set,
// so that a slow client cannot hold a connection either.
package decide
