package decide

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deploykit/deploy/state"
)

// DecisionRequest is the body of POST /api/releases/{id}/{action}.
type DecisionRequest struct {
	// Step is the step the decision is for, by its index in the current
	// stage's plan from 0 (View.Step, -1 once every step is done): required
	// for approve and skip; for the others, absent means the step the
	// release is at now, and a value must be that step.
	Step *int `json:"step"`
	// Reason says why, for the timeline and the report.
	Reason string `json:"reason"`
}

func (h *Handler) apiList(w http.ResponseWriter, r *http.Request) {
	_, page, ok := h.listPage(w, r)
	if !ok {
		return
	}
	list := List{Releases: make([]Summary, 0, len(page.Releases)), Next: page.Next}
	for _, s := range page.Releases {
		list.Releases = append(list.Releases, Summary{
			ID: s.ID, Service: s.Service, Environment: s.Environment, Version: s.Version, Status: s.Status, Phase: s.Phase,
			Next: s.Next, Holder: s.Holder, LeaseUntil: s.LeaseUntil, Created: s.Created, Updated: s.Updated, Problem: s.Problem, Waiting: s.Waiting,
		})
	}
	writeJSON(w, http.StatusOK, list)
}

// List is the answer to GET /api/releases: Next is the cursor for the next
// page (?after=), "" at the end.
type List struct {
	Releases []Summary `json:"releases"`
	Next     string    `json:"next"`
}

// Summary is one release of a List: state.Summary with JSON names.
type Summary struct {
	ID          string       `json:"id"`
	Service     string       `json:"service"`
	Environment string       `json:"environment"`
	Version     string       `json:"version"`
	Status      state.Status `json:"status"`
	Phase       state.Phase  `json:"phase"`
	Next        time.Time    `json:"next,omitzero"`
	Holder      string       `json:"holder,omitempty"`
	LeaseUntil  time.Time    `json:"leaseUntil,omitzero"`
	Created     time.Time    `json:"created"`
	Updated     time.Time    `json:"updated"`
	Problem     string       `json:"problem,omitempty"`
	// Waiting says what the release waits for (an approval, a pause, a
	// person's decision after an inconclusive analysis or an abort).
	Waiting *state.Wait `json:"waiting,omitempty"`
}

func (h *Handler) apiRelease(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, err := h.load(r.Context(), id)
	if err != nil {
		h.refuse(w, r, codeOf(err), "cannot show release "+id+": "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, viewOf(rec))
}

// apiDecide takes a decision sent by a script: a JSON body (the content
// type a cross-site form cannot send), authorized like every request, and
// once per Idempotency-Key header when one is given.
func (h *Handler) apiDecide(w http.ResponseWriter, r *http.Request) {
	id, a := r.PathValue("id"), Action(r.PathValue("action"))
	if !a.Valid() {
		h.refuse(w, r, http.StatusNotFound, "no action "+strconv.Quote(string(a)))
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		h.refuse(w, r, http.StatusUnsupportedMediaType, "send the decision as application/json")
		return
	}
	var body DecisionRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		h.refuse(w, r, http.StatusBadRequest, "cannot read the decision: "+err.Error())
		return
	}
	body.Reason = strings.TrimSpace(body.Reason)
	if len(body.Reason) > 1024 {
		h.refuse(w, r, http.StatusBadRequest, "reason is longer than 1024 bytes")
		return
	}
	var step int
	switch {
	case body.Step == nil && (a == Approve || a == Skip):
		h.refuse(w, r, http.StatusBadRequest, string(a)+" needs the step it is for: {\"step\": its index, from 0}")
		return
	case body.Step != nil:
		step = *body.Step
	default:
		rec, err := h.load(r.Context(), id)
		if err != nil {
			h.refuse(w, r, codeOf(err), "cannot load release "+id+": "+err.Error())
			return
		}
		step = stepOf(rec)
	}
	who := identity(r)
	q := request{who: who, id: id, step: step, action: a, reason: body.Reason}
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		if len(k) > 256 {
			h.refuse(w, r, http.StatusBadRequest, "Idempotency-Key is longer than 256 bytes")
			return
		}
		// The key counts for this person, release, action and step only.
		q.key = "api\x00" + who + "\x00" + id + "\x00" + string(a) + "\x00" + strconv.Itoa(step) + "\x00" + k
		q.until = h.now().Add(h.forms.ttl)
	}
	res := h.decide(r.Context(), q)
	writeJSON(w, res.Code, res)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
