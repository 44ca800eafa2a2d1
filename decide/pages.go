package decide

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/deploykit/deploy/state"
)

// pageData is what every template gets.
type pageData struct {
	Title    string
	Base     string
	Who      string
	LoggedIn bool
	Message  string
	// List page.
	Releases []state.Summary
	Next     string
	Query    state.Query
	// Release page.
	View    *View
	Forms   []formData
	Outcome *Outcome
}

// formData is one decision form: posted to Base/releases/ID/Action.
type formData struct {
	Action Action
	Label  string
	Danger bool
	Step   int
	Token  string
	Reason bool // asks for a reason
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q, page, ok := h.listPage(w, r)
	if !ok {
		return
	}
	h.render(w, r, http.StatusOK, "list", pageData{
		Title: "Releases running or waiting", Base: base(r), Who: identity(r), LoggedIn: true,
		Releases: page.Releases, Next: page.Next, Query: q,
	})
}

// listPage reads the list's query from r and lists one page, bounded; when
// it cannot, it answers the refusal on w and returns false.
func (h *Handler) listPage(w http.ResponseWriter, r *http.Request) (state.Query, state.Page, bool) {
	q, err := queryOf(r)
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, err.Error())
		return q, state.Page{}, false
	}
	var page state.Page
	err = bounded(r.Context(), func(ctx context.Context) error {
		var err error
		page, err = h.store.List(ctx, q)
		return err
	})
	if err != nil {
		h.refuse(w, r, codeOf(err), "cannot list releases: "+err.Error())
		return q, page, false
	}
	return q, page, true
}

// queryOf reads the list's filters from the URL: service, environment,
// after, limit; it lists active releases only.
func queryOf(r *http.Request) (state.Query, error) {
	v := r.URL.Query()
	q := state.Query{Service: v.Get("service"), Environment: v.Get("environment"), After: v.Get("after"), ActiveOnly: true, Limit: PageSize}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return q, &paramError{"limit", s, "is not a number from 1 to 500"}
		}
		q.Limit = n
	}
	for _, f := range []struct{ name, val string }{{"service", q.Service}, {"environment", q.Environment}} {
		if f.val == "" {
			continue
		}
		rel := state.Release{Service: "x", Version: "x", Environment: f.val}
		if f.name == "service" {
			rel = state.Release{Service: f.val, Version: "x"}
		}
		if rel.Validate() != nil {
			return q, &paramError{f.name, f.val, "is not a valid name"}
		}
	}
	return q, nil
}

type paramError struct{ name, value, problem string }

func (e *paramError) Error() string {
	return "parameter " + e.name + " " + strconv.Quote(e.value) + " " + e.problem
}

func (h *Handler) release(w http.ResponseWriter, r *http.Request) {
	h.showRelease(w, r, http.StatusOK, nil)
}

// showRelease renders a release's page, with the outcome of a decision
// just taken, if any.
func (h *Handler) showRelease(w http.ResponseWriter, r *http.Request, code int, res *Outcome) {
	id := r.PathValue("id")
	rec, err := h.load(r.Context(), id)
	if err != nil {
		if res != nil {
			h.render(w, r, res.Code, "message", pageData{Title: "Decision", Message: res.Message, Base: base(r), Who: identity(r), LoggedIn: true})
			return
		}
		h.refuse(w, r, codeOf(err), "cannot show release "+id+": "+err.Error())
		return
	}
	v := viewOf(rec)
	who := identity(r)
	data := pageData{Title: rec.Release.Service + " " + rec.Release.Version, Base: base(r), Who: who, LoggedIn: true, View: &v, Outcome: res}
	now := h.now()
	for _, a := range v.Offers {
		data.Forms = append(data.Forms, formData{
			Action: a, Label: actions[a].label, Danger: actions[a].danger, Step: v.Step,
			Token:  h.forms.issue(who, rec.ID, v.Step, a, now),
			Reason: a == Rollback || a == Abort,
		})
	}
	h.render(w, r, code, "release", data)
}

func (h *Handler) report(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var md string
	err := bounded(r.Context(), func(ctx context.Context) error {
		rep, err := h.decider.Report(ctx, id)
		if err == nil {
			md = rep.Markdown()
		}
		return err
	})
	if err != nil {
		h.refuse(w, r, codeOf(err), "cannot build the report of "+id+": "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	w.Write([]byte(md))
}

// decideForm takes a decision posted from a release's page: the form's
// token must be the one the page issued to this person for this release,
// step and action.
func (h *Handler) decideForm(w http.ResponseWriter, r *http.Request) {
	id, a := r.PathValue("id"), Action(r.PathValue("action"))
	if !a.Valid() {
		h.refuse(w, r, http.StatusNotFound, "no action "+strconv.Quote(string(a)))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		h.refuse(w, r, http.StatusBadRequest, "cannot read the form: "+err.Error())
		return
	}
	step, err := strconv.Atoi(r.PostForm.Get("step"))
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, "the form has no step")
		return
	}
	who := identity(r)
	nonce, err := h.forms.check(r.PostForm.Get("token"), who, id, step, a, h.now())
	if err != nil {
		h.log.Info("decide: form refused", "id", id, "action", a, "step", step, "by", who, "err", err)
		h.refuse(w, r, http.StatusForbidden, err.Error())
		return
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if len(reason) > 1024 {
		h.refuse(w, r, http.StatusBadRequest, "the reason is longer than 1024 bytes")
		return
	}
	res := h.decide(r.Context(), request{
		who: who, id: id, step: step, action: a, reason: reason,
		key: "form\x00" + nonce, until: h.now().Add(h.forms.ttl),
	})
	// Show the release as it is now, with the answer on top: with the
	// status of the answer, so that scripts posting forms can tell.
	h.showRelease(w, r, res.Code, &res)
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "login", pageData{Title: "Log in", Base: base(r)})
}

// login checks the token typed in with the Authorizer, as a bearer token,
// and keeps it in an HttpOnly, SameSite=Strict cookie.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		h.refuse(w, r, http.StatusBadRequest, "cannot read the form")
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	probe := r.Clone(r.Context())
	probe.Header = probe.Header.Clone()
	probe.Header.Set("Authorization", "Bearer "+tok)
	var who string
	err := bounded(r.Context(), func(context.Context) error {
		var err error
		who, err = h.auth.Authorize(probe)
		return err
	})
	if tok == "" || err != nil || who == "" {
		h.render(w, r, http.StatusUnauthorized, "login", pageData{Title: "Log in", Base: base(r), Message: "That token is not known."})
		return
	}
	http.SetCookie(w, h.cookie(r, tok, 12*3600))
	http.Redirect(w, r, base(r)+"/", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, h.cookie(r, "", -1))
	http.Redirect(w, r, base(r)+"/login", http.StatusSeeOther)
}

func (h *Handler) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: TokenCookie, Value: value, Path: base(r) + "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	}
}
