package notify

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/deploykit/deploy"
)

// Filter passes to Notifier only the events Keep accepts; the others count
// as delivered. Name, ChecklistItems and Validate are Notifier's, so a
// filtered notifier shows in reports and spans under its own name.
type Filter struct {
	Notifier deploy.Notifier
	// Keep reports whether e goes to Notifier; nil keeps every event.
	Keep func(e deploy.Event) bool
}

var (
	_ deploy.Notifier    = (*Filter)(nil)
	_ deploy.Checklister = (*Filter)(nil)
)

// Only returns n receiving only events of the given kinds, such as
// Only(n, deploy.EventFinished) for the outcome alone.
func Only(n deploy.Notifier, kinds ...deploy.EventKind) deploy.Notifier {
	kinds = slices.Clone(kinds)
	return &Filter{Notifier: n, Keep: func(e deploy.Event) bool { return slices.Contains(kinds, e.Kind) }}
}

// OnlyUrgent returns n receiving only urgent events: a failed rollback and
// the outcome of a release whose rollback failed. Use it to page on-call.
func OnlyUrgent(n deploy.Notifier) deploy.Notifier {
	return &Filter{Notifier: n, Keep: func(e deploy.Event) bool { return e.Urgent }}
}

// Notify implements deploy.Notifier: it passes e on if Keep accepts it,
// and returns nil otherwise.
func (f *Filter) Notify(ctx context.Context, e deploy.Event) error {
	if f.Notifier == nil {
		return fmt.Errorf("notify: Filter.Notifier is nil")
	}
	if f.Keep != nil && !f.Keep(e) {
		return nil
	}
	return f.Notifier.Notify(ctx, e)
}

// Name returns the name of the wrapped notifier: its Name() if it has one,
// else its type.
func (f *Filter) Name() string {
	if n, ok := f.Notifier.(interface{ Name() string }); ok {
		if s := n.Name(); s != "" {
			return s
		}
	}
	if f.Notifier == nil {
		return "filter"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", f.Notifier), "*")
}

// ChecklistItems returns the wrapped notifier's items, if it is a
// deploy.Checklister.
func (f *Filter) ChecklistItems() []deploy.Item {
	if c, ok := f.Notifier.(deploy.Checklister); ok {
		return c.ChecklistItems()
	}
	return nil
}

// Validate reports a nil Notifier, or the wrapped notifier's Validate
// error if it has that method.
func (f *Filter) Validate() error {
	if f.Notifier == nil {
		return fmt.Errorf("notify: Filter.Notifier is nil")
	}
	if v, ok := f.Notifier.(interface{ Validate() error }); ok {
		return v.Validate()
	}
	return nil
}
