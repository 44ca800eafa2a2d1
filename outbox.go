package deploy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/deploykit/deploy/internal/retry"
	"github.com/deploykit/deploy/state"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// kick hands the record's undelivered messages to the dispatcher.
func (lp *loop) kick(rec *state.Record) {
	if lp.disp != nil {
		lp.disp.enqueue(rec.Outbox)
	}
}

// flushSync delivers due messages once each, for Reconcile without Run. It
// reports whether the record changed.
func (r *Runner) flushSync(lp *loop, id string) bool {
	ctx := context.WithoutCancel(lp.ctx)
	rec, err := r.cfg.store.Load(ctx, id)
	if err != nil || len(rec.Outbox) == 0 {
		return false
	}
	now := time.Now()
	blocked := map[int]bool{}
	var keep []state.Message
	for _, m := range rec.Outbox {
		if blocked[m.Notifier] || m.NextAt.After(now) {
			blocked[m.Notifier] = true
			keep = append(keep, m)
			continue
		}
		m = r.attempt(ctx, lp, m)
		switch {
		case m.Delivered:
			rec.Delivered++
		case !m.Expired.IsZero():
			rec.Undelivered = append(rec.Undelivered, m)
		default:
			blocked[m.Notifier] = true
			keep = append(keep, m)
		}
	}
	rec.Outbox = keep
	r.tickDelivered(rec)
	return r.cfg.store.Update(ctx, rec) == nil
}

// attempt delivers m once, or expires it, and returns it updated: Delivered,
// Expired, or with its next attempt due at NextAt. A message is never given
// up otherwise: a notifier that keeps failing, or refuses (an HTTP 401 or
// 404), is retried at the longest backoff until it takes the message or,
// with a maximum age (ExpireAfter), the message expires and is shown as not
// delivered.
func (r *Runner) attempt(ctx context.Context, lp *loop, m state.Message) state.Message {
	now := time.Now()
	if age := r.maxAge(m.Notifier); age > 0 && !m.Queued.IsZero() && now.Sub(m.Queued) > age {
		m.Expired = now
		r.logDelivery(m, fmt.Errorf("older than the notifier's maximum age %v: %s", age, cmp.Or(m.LastError, "never attempted")))
		return m
	}
	err := r.deliver(ctx, lp, m)
	m.Attempts++
	if err == nil {
		m.Delivered, m.LastError, m.Refused = true, "", false
		return m
	}
	m.LastError = err.Error()
	m.Refused = permanent(err)
	r.logDelivery(m, err)
	wait := outboxBackoff.Wait(m.Attempts, err)
	if m.Refused {
		wait = maxBackoff
	}
	m.NextAt = time.Now().Add(wait)
	return m
}

// maxAge is notifier i's maximum age for a message (ExpireAfter), 0 for none.
func (r *Runner) maxAge(i int) time.Duration {
	if i < 0 || i >= len(r.cfg.notifiers) {
		return 0
	}
	if a, ok := r.cfg.notifiers[i].(interface{ MaxAge() time.Duration }); ok {
		return a.MaxAge()
	}
	return 0
}

// tickDelivered ticks the checklist's "stakeholders notified" item once a
// finished release's every event reached every notifier; an event that
// expired undelivered keeps it unticked.
func (r *Runner) tickDelivered(rec *state.Record) {
	if len(r.cfg.notifiers) == 0 || !rec.Status.Final() || len(rec.Outbox) > 0 || len(rec.Undelivered) > 0 {
		return
	}
	names := make([]string, len(r.cfg.notifiers))
	for i, n := range r.cfg.notifiers {
		names[i] = nameOf(n)
		r.tickFrom(rec, rec.Updated, n, "notifier "+names[i]+": every event delivered")
	}
	r.tick(rec, time.Now(), ItemStakeholdersTold, fmt.Sprintf("%d event(s) delivered to %s", rec.Delivered, strings.Join(names, ", ")))
}

func marshalEvent(e Event) ([]byte, error) { return json.Marshal(e) }

// deliver sends one message to its notifier, with a span and a timeout.
func (r *Runner) deliver(ctx context.Context, lp *loop, m state.Message) error {
	if m.Notifier < 0 || m.Notifier >= len(r.cfg.notifiers) {
		return fmt.Errorf("notifier %d is not configured", m.Notifier)
	}
	var ev Event
	if err := json.Unmarshal(m.Event, &ev); err != nil {
		return fmt.Errorf("decoding event %d: %w", m.ID, err)
	}
	n := r.cfg.notifiers[m.Notifier]
	name := nameOf(n)
	ctx, span := lp.tr.Start(ctx, "deploy.notify", trace.WithAttributes(
		attribute.String("deploy.notifier", name), attribute.String("deploy.event", string(ev.Kind)),
		attribute.Int("deploy.attempt", m.Attempts+1), attribute.Int("deploy.event.seq", ev.Seq)))
	defer span.End()
	err := boundedErr(ctx, "notifier "+name, r.cfg.timeouts.Notify, func(ctx context.Context) error { return n.Notify(ctx, ev) })
	if err != nil {
		recordError(span, err)
	}
	return err
}

// logDelivery warns of a failed delivery, and of an expired message.
func (r *Runner) logDelivery(m state.Message, err error) {
	name := fmt.Sprint(m.Notifier)
	if m.Notifier >= 0 && m.Notifier < len(r.cfg.notifiers) {
		name = nameOf(r.cfg.notifiers[m.Notifier])
	}
	msg := "deploy: notification not delivered, will retry"
	switch {
	case !m.Expired.IsZero():
		msg = "deploy: notification NOT delivered: it expired"
	case m.Refused:
		msg = "deploy: notification refused, will retry at the longest backoff until the notifier is fixed"
	}
	r.cfg.logger.Warn(msg, "notifier", name, "event", m.ID, "attempt", m.Attempts, "err", err)
}

// permanent reports whether a notifier's error says that retrying cannot
// help: it implements Temporary() bool and returns false (an HTTP 401 or 404).
func permanent(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && !t.Temporary()
}

// maxBackoff is the longest wait between two attempts at a message.
const maxBackoff = 5 * time.Minute

// maxRetryAfter caps how long a receiver's Retry-After can hold a notifier.
const maxRetryAfter = 15 * time.Minute

// outboxBackoff is the wait after a failed delivery: 1 s, 2 s, 4 s …
// capped at maxBackoff, each shortened by up to retry.DefaultJitter, or
// longer when the notifier's error asks for it with a RetryAfter()
// time.Duration method (an HTTP 429 or 503 with Retry-After), capped at
// maxRetryAfter. The attempts are persisted with the message, so the
// schedule survives a restart.
var outboxBackoff = retry.Backoff{Initial: time.Second, Max: maxBackoff, MaxAsked: maxRetryAfter, Jitter: retry.DefaultJitter}

// dispatcher delivers the outbox asynchronously: one worker per notifier so
// that a slow notifier delays nobody else, in order within a notifier, with
// retries and backoff. Results are folded into the record at the next save.
type dispatcher struct {
	r       *Runner
	lp      *loop
	mu      sync.Mutex
	cond    *sync.Cond
	queues  [][]state.Message
	seen    map[int]bool
	results map[int]state.Message // latest state of attempted messages
	busy    int
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stopped bool
}

func newDispatcher(r *Runner) *dispatcher {
	if len(r.cfg.notifiers) == 0 {
		return nil
	}
	return &dispatcher{r: r}
}

func (d *dispatcher) start(lp *loop) {
	d.lp = lp
	d.cond = sync.NewCond(&d.mu)
	d.queues = make([][]state.Message, len(d.r.cfg.notifiers))
	d.seen = map[int]bool{}
	d.results = map[int]state.Message{}
	d.ctx, d.cancel = context.WithCancel(context.WithoutCancel(lp.ctx))
	for i := range d.queues {
		d.wg.Go(func() { d.work(i) })
	}
}

func (d *dispatcher) enqueue(msgs []state.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	queued := false
	for _, m := range msgs {
		if d.seen[m.ID] || m.Notifier < 0 || m.Notifier >= len(d.queues) {
			continue
		}
		d.seen[m.ID] = true
		d.queues[m.Notifier] = append(d.queues[m.Notifier], m)
		queued = true
	}
	if queued {
		// Waking the workers for nothing (every save of a quiet watch
		// hands over the outbox) costs a scheduling round each.
		d.cond.Broadcast()
	}
}

func (d *dispatcher) work(i int) {
	for {
		d.mu.Lock()
		for len(d.queues[i]) == 0 && !d.stopped {
			d.cond.Wait()
		}
		if d.stopped {
			d.mu.Unlock()
			return
		}
		m := d.queues[i][0]
		d.busy++
		d.mu.Unlock()

		if wait := time.Until(m.NextAt); wait > 0 {
			if !d.sleep(wait) {
				d.done(i, m, false)
				return
			}
		}
		m = d.r.attempt(d.ctx, d.lp, m)
		final := m.Delivered || !m.Expired.IsZero()
		d.done(i, m, final)
	}
}

func (d *dispatcher) sleep(wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-d.ctx.Done():
		return false
	}
}

// done records an attempt; a final message leaves its queue.
func (d *dispatcher) done(i int, m state.Message, final bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.busy--
	d.results[m.ID] = m
	if final {
		d.queues[i] = d.queues[i][1:]
	} else if len(d.queues[i]) > 0 {
		d.queues[i][0] = m
	}
	d.cond.Broadcast()
}

// drain waits until every queue is empty, or timeout passes.
func (d *dispatcher) drain(timeout time.Duration) {
	if d == nil {
		return
	}
	timedOut := false
	t := time.AfterFunc(timeout, func() {
		d.mu.Lock()
		timedOut = true
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	defer t.Stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	for !timedOut && !d.idle() {
		d.cond.Wait()
	}
}

func (d *dispatcher) idle() bool {
	if d.busy > 0 {
		return false
	}
	for _, q := range d.queues {
		if len(q) > 0 {
			return false
		}
	}
	return true
}

func (d *dispatcher) stop() {
	if d == nil {
		return
	}
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.stopped = true
	d.cond.Broadcast()
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
}

// apply folds delivery results into rec; it reports whether rec changed.
func (d *dispatcher) apply(rec *state.Record) bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	changed := false
	keep := rec.Outbox[:0]
	for _, m := range rec.Outbox {
		res, ok := d.results[m.ID]
		if !ok {
			keep = append(keep, m)
			continue
		}
		changed = true
		switch {
		case res.Delivered:
			rec.Delivered++
		case !res.Expired.IsZero():
			rec.Undelivered = append(rec.Undelivered, res)
		default:
			keep = append(keep, res)
		}
	}
	rec.Outbox = keep
	return changed
}

// ExpireAfter returns n with a maximum age: an event that n has not taken
// within age of being queued is given up, shown as NOT delivered in the
// report (Report.Notifications) and kept in the record's Undelivered list,
// and the checklist's "stakeholders notified" stays unticked. Without it,
// an event stays pending until the notifier takes it, retried with backoff
// (at most 5 minutes apart) by Run, Resume and Reconcile.
func ExpireAfter(n Notifier, age time.Duration) Notifier { return &expiring{n, age} }

type expiring struct {
	Notifier
	age time.Duration
}

func (e *expiring) MaxAge() time.Duration { return e.age }
func (e *expiring) Name() string          { return nameOf(e.Notifier) }
func (e *expiring) Validate() error {
	if e.age <= 0 {
		return fmt.Errorf("ExpireAfter age %v must be positive", e.age)
	}
	if isNil(e.Notifier) {
		return errors.New("ExpireAfter notifier is nil")
	}
	if v, ok := e.Notifier.(interface{ Validate() error }); ok {
		return v.Validate()
	}
	return nil
}

// ChecklistItems passes on the wrapped notifier's items.
func (e *expiring) ChecklistItems() []Item {
	if c, ok := e.Notifier.(Checklister); ok {
		return c.ChecklistItems()
	}
	return nil
}
