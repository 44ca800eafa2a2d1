package hook

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/deploykit/deploy"
)

// maxRemembered bounds how many delivered events a notifier remembers for
// de-duplication.
const maxRemembered = 4096

// seen remembers delivered events by release and Seq, in a bounded set.
type seen struct {
	mu    sync.Mutex
	done  map[string]bool
	order []string
}

func (s *seen) has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[key]
}

func (s *seen) add(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = map[string]bool{}
	}
	if s.done[key] {
		return
	}
	s.done[key] = true
	s.order = append(s.order, key)
	if len(s.order) > maxRemembered {
		delete(s.done, s.order[0])
		s.order = s.order[1:]
	}
}

func eventKey(e deploy.Event) string { return e.DeploymentID + "\x00" + strconv.Itoa(e.Seq) }

// answerErr is a call that did not get a yes, for the runner's outbox to
// retry.
func answerErr(name string, a Answer) error { return fmt.Errorf("%s %s", name, a.String()) }

// PostRollout is Flagger's post-rollout webhook as a deploy.Notifier: it is
// called once per release, on the event that ends it (deploy.EventFinished),
// with phase Succeeded when the release succeeded and Failed when it was
// rolled back or failed — after the promotion or the rollback, as in
// Flagger. A release that deployed nothing (blocked by a gate, aborted before
// its first step) calls nothing: it was neither promoted nor rolled back.
// Every other event is taken without a call.
//
// Flagger calls it once and only logs a failure. Here a call without a yes
// is an error, so the runner's outbox retries it with backoff (keeping the
// same Seq) until the receiver says yes, and the report shows it NOT
// delivered meanwhile; wrap it in deploy.ExpireAfter to give up after a
// while. An event it already delivered (same release and Seq, in this
// process) is not sent again.
type PostRollout struct {
	Webhook
	seen seen
}

var _ deploy.Notifier = (*PostRollout)(nil)

// Name returns "post-rollout" and the webhook's name.
func (h *PostRollout) Name() string { return checkName(TypePostRollout, &h.Webhook) }

// Notify calls the webhook for the event that ends a release.
func (h *PostRollout) Notify(ctx context.Context, e deploy.Event) error {
	if err := h.Validate(); err != nil {
		return err
	}
	if e.Kind != deploy.EventFinished || e.Status == deploy.Blocked || e.Status == deploy.Aborted || h.seen.has(eventKey(e)) {
		return nil
	}
	phase := PhaseFailed
	if e.Status == deploy.Succeeded {
		phase = PhaseSucceeded
	}
	a := h.Call(ctx, h.payload(e.DeploymentID, e.Release.Service, e.Release.Version, e.Release.Environment, phase))
	if !a.OK() {
		return answerErr(h.Name(), a)
	}
	h.seen.add(eventKey(e))
	return nil
}

// Event is Flagger's event webhook as a deploy.Notifier: every event of the
// release is posted as Flagger posts its Kubernetes events — the payload with
// metadata eventMessage (Event.Message), eventType ("Normal", or "Warning"
// for rollbacks, blocks, waits on a bad observation, urgent events and a
// release that did not succeed) and timestamp (the event's time, Unix
// milliseconds), plus the webhook's Metadata for keys Flagger does not set.
// The phase follows the release (see PhaseOf).
//
// A call without a yes is an error, so the runner's outbox retries it (Flagger
// drops it); an event already delivered in this process is not sent again.
type Event struct {
	Webhook
	seen seen
}

var _ deploy.Notifier = (*Event)(nil)

// Name returns "event" and the webhook's name.
func (h *Event) Name() string { return checkName(TypeEvent, &h.Webhook) }

// Notify posts e.
func (h *Event) Notify(ctx context.Context, e deploy.Event) error {
	if err := h.Validate(); err != nil {
		return err
	}
	if h.seen.has(eventKey(e)) {
		return nil
	}
	p := h.payload(e.DeploymentID, e.Release.Service, e.Release.Version, e.Release.Environment, PhaseOf(e))
	meta := map[string]string{"eventMessage": e.Message, "eventType": eventType(e), "timestamp": strconv.FormatInt(e.At.UnixMilli(), 10)}
	for k, v := range p.Metadata {
		if _, ok := meta[k]; !ok {
			meta[k] = v
		}
	}
	p.Metadata = meta
	a := h.Call(ctx, p)
	if !a.OK() {
		return answerErr(h.Name(), a)
	}
	h.seen.add(eventKey(e))
	return nil
}

// PhaseOf returns the Flagger phase of the release when e happened:
//
//	finished, succeeded                     Succeeded
//	finished otherwise, a rollback          Failed
//	a gate waiting                          Waiting
//	preflight                               Initialized
//	verify (everyone on the new version)    Finalising
//	deploy                                  Progressing
func PhaseOf(e deploy.Event) Phase {
	switch {
	case e.Kind == deploy.EventFinished && e.Status == deploy.Succeeded:
		return PhaseSucceeded
	case e.Kind == deploy.EventFinished, e.Kind == deploy.EventRollback, e.Phase == deploy.PhaseRollback:
		return PhaseFailed
	case e.Kind == deploy.EventGate && e.Gate == "waiting":
		return PhaseWaiting
	case e.Phase == deploy.PhasePreflight:
		return PhaseInitialized
	case e.Phase == deploy.PhaseVerify:
		return PhaseFinalising
	}
	return PhaseProgressing
}

// eventType is Kubernetes' event type Flagger sends: Warning for what went
// or may go wrong, Normal for the rest.
func eventType(e deploy.Event) string {
	switch {
	case e.Urgent, e.Kind == deploy.EventRollback,
		e.Kind == deploy.EventGate && e.Gate == "blocked",
		e.Kind == deploy.EventObservation && e.Verdict != "" && e.Verdict != "continue",
		e.Kind == deploy.EventFinished && e.Status != deploy.Succeeded:
		return "Warning"
	}
	return "Normal"
}
