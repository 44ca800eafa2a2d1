package river

import (
	"context"
	"fmt"
	"time"

	rq "github.com/riverqueue/river"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/state"
)

// SweepResult says what a sweep found.
type SweepResult struct {
	// Active counts the active releases listed.
	Active int
	// Enqueued are the active releases that had no live job and were given
	// one; each was also reported with an urgent EventOrphaned.
	Enqueued []string
	// Unreadable are records the store could not read (state.Summary's
	// Problem): they may be active, and no job can drive them until a
	// person sets them aside.
	Unreadable []string
}

// Sweep gives every active release without a live job a job: after a
// restore of the database, a job deleted by hand, or one River discarded
// (a round rescued MaxAttempts times). It lists the store's active
// releases (state.Lister) in pages and inserts their jobs with the unique
// options, so a release that has its job is left alone and sweeps from
// several processes at once enqueue each release once. A release it
// enqueues is reported: an urgent EventOrphaned to the notifiers and a log
// at Error. The leader runs it every SweepInterval.
func (f *Fleet) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	q := state.Query{ActiveOnly: true, Limit: state.MaxLimit}
	for {
		page, err := f.s.Store.List(ctx, q)
		if err != nil {
			return res, fmt.Errorf("river: sweep: %w", err)
		}
		params := make([]rq.InsertManyParams, 0, len(page.Releases))
		var listed []state.Summary
		for _, r := range page.Releases {
			if r.Problem != "" {
				res.Unreadable = append(res.Unreadable, r.ID)
				f.log.Error("river: sweep: a record cannot be read; set it aside (Quarantine) or repair it", "release", r.ID, "problem", r.Problem)
				continue
			}
			res.Active++
			listed = append(listed, r)
			params = append(params, rq.InsertManyParams{Args: Args{ID: r.ID}, InsertOpts: insertOpts(f.s.Queue, f.s.MaxAttempts)})
		}
		if len(params) > 0 {
			ins, err := f.client.InsertMany(ctx, params)
			if err != nil {
				return res, fmt.Errorf("river: sweep: enqueuing: %w", err)
			}
			for i, in := range ins {
				if !in.UniqueSkippedAsDuplicate {
					f.orphaned(ctx, listed[i], in.Job.ID)
					res.Enqueued = append(res.Enqueued, listed[i].ID)
				}
			}
		}
		if page.Next == "" {
			return res, nil
		}
		q.After = page.Next
	}
}

// orphaned reports a release the sweep gave a job, unless it ended since
// it was listed (its job then completed just before the insert; the new
// one completes at once).
func (f *Fleet) orphaned(ctx context.Context, s state.Summary, job int64) {
	if rec, err := f.s.Store.Load(ctx, s.ID); err == nil && rec.Status.Final() {
		return
	}
	msg := fmt.Sprintf("release %s of %s %s to %s was active without a job to drive it (restored database, job deleted or given up); the sweep enqueued job %d",
		s.ID, s.Service, s.Version, s.Environment, job)
	f.log.Error("river: "+msg, "release", s.ID)
	f.notify(deploy.Event{Kind: EventOrphaned, At: time.Now(), DeploymentID: s.ID, Urgent: true, Message: msg,
		Release: deploy.Release{Service: s.Service, Environment: s.Environment, Version: s.Version}, Phase: s.Phase, Status: s.Status})
}
