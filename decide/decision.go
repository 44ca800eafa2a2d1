package decide

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/state"
)

// Outcome is the page's answer to a decision, as the JSON endpoints return
// it and the release's page shows it.
type Outcome struct {
	ID     string `json:"id"`
	Action Action `json:"action"`
	// Step is the step the decision was for: its index in the current
	// stage's plan, from 0.
	Step int       `json:"step"`
	By   string    `json:"by"`
	At   time.Time `json:"at"`
	// OK is true when the decision was taken.
	OK bool `json:"ok"`
	// Pending is true when it was taken and is still being carried out
	// (a rollback that outlasted the page's time limit).
	Pending bool `json:"pending,omitempty"`
	// Repeated is true when the same decision had been sent before: this
	// is the first one's answer, and nothing was done again.
	Repeated bool   `json:"repeated,omitempty"`
	Message  string `json:"message"`
	// Code is the HTTP status of the answer.
	Code int `json:"code"`
}

// request is one decision to take.
type request struct {
	who, id, reason string
	step            int
	action          Action
	key             string    // replay key; "" for none
	until           time.Time // how long the key is remembered
}

// decide takes one decision: at most once per replay key, only if it
// applies to the release as it is now, with the decider's call bounded.
func (h *Handler) decide(ctx context.Context, q request) Outcome {
	if q.key != "" {
		e, first := h.replays.claim(q.key, q.until, h.now())
		if !first {
			res, ok := e.wait(ctx)
			if !ok {
				return h.outcome(q, http.StatusGatewayTimeout, "the same decision is under way; it did not end in time")
			}
			res.Repeated = true
			if res.OK {
				res.Message = "already decided, nothing done again: " + res.Message
			}
			return res
		}
		res := h.take(ctx, q)
		h.replays.settle(q.key, e, res, res.OK)
		return res
	}
	return h.take(ctx, q)
}

func (h *Handler) take(ctx context.Context, q request) Outcome {
	rec, err := h.load(ctx, q.id)
	if err != nil {
		return h.outcome(q, codeOf(err), err.Error())
	}
	if err := applies(rec, q.action, q.step); err != nil {
		return h.outcome(q, http.StatusConflict, err.Error())
	}
	dec := deploy.Decision{By: q.who, Reason: q.reason}
	if dec.Reason == "" {
		dec.Reason = "from the decision page"
	}
	h.log.Info("decide: decision", "id", q.id, "action", q.action, "step", q.step, "by", q.who, "reason", dec.Reason)
	var (
		pending bool
		call    func(context.Context) error
	)
	d := h.decider
	switch q.action {
	case Approve:
		call = func(ctx context.Context) error { return d.Approve(ctx, q.id, q.step, dec) }
	case Promote, PromoteFull:
		call = func(ctx context.Context) error { return d.Promote(ctx, q.id, q.action == PromoteFull, dec) }
	case Skip:
		call = func(ctx context.Context) error { return d.Skip(ctx, q.id, q.step, dec) }
	case Abort:
		call = func(ctx context.Context) error { return d.Abort(ctx, q.id, dec) }
	case Retry:
		call = func(ctx context.Context) error { return d.Retry(ctx, q.id, dec) }
	case Rollback:
		// A rollback runs until it is verified, longer than a page should
		// wait: it goes on under its own time limit, detached from the
		// request, and the page answers that it is under way.
		reason := "by " + q.who + ": " + dec.Reason
		done := make(chan error, 1)
		go func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.rbwait)
			defer cancel()
			err := bounded(rctx, func(ctx context.Context) error { _, err := d.Rollback(ctx, q.id, reason); return err })
			if err != nil {
				// Also when the page answered before it ended: the
				// release's page shows how it ended, the log why.
				h.log.Warn("decide: rollback", "id", q.id, "by", q.who, "err", err)
			}
			done <- err
		}()
		// Wait half the page's time at most, leaving the rest to show the
		// release as it is.
		wait := time.NewTimer(h.timeout / 2)
		defer wait.Stop()
		select {
		case err = <-done:
		case <-wait.C:
			pending = true
		case <-ctx.Done():
			pending = true
		}
	default:
		return h.outcome(q, http.StatusNotFound, fmt.Sprintf("no action %q", q.action))
	}
	if call != nil {
		err = bounded(ctx, call)
	}
	if err != nil {
		h.log.Warn("decide: decision failed", "id", q.id, "action", q.action, "by", q.who, "err", err)
		return h.outcome(q, codeOf(err), err.Error())
	}
	res := h.outcome(q, http.StatusOK, fmt.Sprintf("%s %s step %s of release %s", q.who, actions[q.action].done, stepName(rec, q.step), q.id))
	if q.action != Approve && q.action != Skip {
		res.Message = fmt.Sprintf("%s %s release %s", q.who, actions[q.action].done, q.id)
	}
	res.OK = true
	if pending {
		res.Pending, res.Code = true, http.StatusAccepted
		res.Message = fmt.Sprintf("%s asked for the rollback of release %s: it is under way", q.who, q.id)
	}
	return res
}

func (h *Handler) outcome(q request, code int, msg string) Outcome {
	return Outcome{ID: q.id, Action: q.action, Step: q.step, By: q.who, At: h.now(), Code: code, Message: msg}
}

// load reads a release under the page's time limit.
func (h *Handler) load(ctx context.Context, id string) (*state.Record, error) {
	var rec *state.Record
	err := bounded(ctx, func(ctx context.Context) error {
		var err error
		rec, err = h.store.Load(ctx, id)
		return err
	})
	return rec, err
}

// codeOf maps an error of a store or a decision to an HTTP status.
func codeOf(err error) int {
	switch {
	case errors.Is(err, state.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, state.ErrQuery):
		return http.StatusBadRequest
	case errors.Is(err, deploy.ErrNotApprover):
		return http.StatusForbidden
	case errors.Is(err, deploy.ErrNotWaiting), errors.Is(err, deploy.ErrInvalid), errors.Is(err, deploy.ErrLocked),
		errors.Is(err, state.ErrQuarantined), errors.Is(err, state.ErrConflict):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}
