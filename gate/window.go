package gate

import (
	"context"
	"errors"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/internal/window"
)

// SearchHorizon bounds how far ahead [Window.Next] looks for the next
// opening. A window that stays closed longer (a long freeze, hours on no day
// that is not a holiday) blocks the release instead of asking it to wait.
const SearchHorizon = window.SearchHorizon

// DefaultEveCloses is when the day before a holiday closes when
// [Window.EveCloses] is zero: noon, like a Friday.
const DefaultEveCloses = window.DefaultEveCloses

// Hours is a deploy period on one day of the week, in wall-clock time of the
// window's location: from From (inclusive) to To (exclusive), both offsets
// from midnight, such as 9*time.Hour. To may be 24h, the end of the day.
//
// A time that does not exist on a day when clocks go forward is resolved as
// [time.Date] resolves it (02:30 becomes 03:30), and a time that happens
// twice when they go back is one of the two, so periods keep to wall-clock
// time across daylight-saving changes.
type Hours = window.Hours

// DefaultHours returns the hours used when [Window.Hours] is empty: Monday to
// Thursday 09:00–17:00 and Friday 09:00–12:00.
func DefaultHours() []Hours { return window.DefaultHours() }

// Holiday is a day with no deploys, in the window's location. Year 0 makes it
// recur every year (Christmas); otherwise it is that one date (Easter Monday
// 2025). The day before a holiday closes at [Window.EveCloses].
type Holiday = window.Holiday

// Freeze is a period with no deploys, from Start (inclusive) to End
// (exclusive), such as a year-end change freeze.
type Freeze = window.Freeze

// Window is a deploy window with a freeze calendar: it passes when now is
// within its Hours in its Location and not on a holiday, in the afternoon
// before a holiday or in a freeze. When closed, Check asks the runner to
// check again when the window next opens, with [deploy.RetryAt] and an error
// such as
//
//	window closed until Monday 09:00 Europe/Berlin: Friday afternoon
//
// so the runner waits up to its gate deadline, then blocks. A window that
// stays closed for longer than [SearchHorizon] blocks at once.
//
// A Window declares itself the deploy window (DeployWindow), so the runner
// does not add its built-in one: the Window's calendar is the whole rule.
// Its fields must not change while a runner uses it.
type Window struct {
	// Location is the time zone of Hours, Holidays and EveCloses. Required.
	Location *time.Location
	// Hours are the periods open for deploys; empty means DefaultHours().
	Hours []Hours
	// Holidays are days with no deploys.
	Holidays []Holiday
	// EveCloses is the time of day at which the day before a holiday closes;
	// 0 means DefaultEveCloses (noon), 24h keeps that day's hours whole.
	EveCloses time.Duration
	// Freezes are periods with no deploys.
	Freezes []Freeze
}

var _ deploy.Gate = (*Window)(nil)

// Name returns "deploy-window".
func (w *Window) Name() string { return "deploy-window" }

// DeployWindow reports true: the runner does not add its built-in window
// when a gate declares itself a deploy window.
func (w *Window) DeployWindow() bool { return true }

// calendar is w's calendar, whose logic the runner's built-in window shares.
func (w *Window) calendar() *window.Calendar {
	return &window.Calendar{Location: w.Location, Hours: w.Hours, Holidays: w.Holidays, EveCloses: w.EveCloses, Freezes: w.Freezes}
}

// Validate reports the fields that are wrong, naming each with its value.
// The error wraps [deploy.ErrInvalid].
func (w *Window) Validate() error {
	return problems(w.calendar().Problems()).err("Window")
}

// Check passes when the window is open now. When it is closed, it returns
// a [deploy.RetryAt] error for the next opening that says why it is closed,
// or, when it stays closed beyond [SearchHorizon], a blocking error.
// An invalid window blocks with the error of Validate.
func (w *Window) Check(ctx context.Context, d *deploy.Deployment) error {
	if err := w.Validate(); err != nil {
		return err
	}
	open, evidence, next, reason := w.calendar().Verdict(time.Now())
	switch {
	case open:
		deploy.Evidence(ctx, "%s", evidence)
		return nil
	case next.IsZero():
		return errors.New(reason)
	}
	return deploy.RetryAt(next, reason)
}

// Next reports whether the window is open at t. When it is, next is t and
// reason is empty. When it is closed, next is when it opens next and reason
// says why it is closed at t: a freeze ("freeze \"Q4 freeze\""), a holiday
// ("holiday \"Christmas\""), the afternoon before one ("day before holiday
// \"Christmas\""), "weekend", "Friday afternoon", "no deploy hours on
// Wednesday" or "outside deploy hours 09:00–17:00". When the window does
// not open within [SearchHorizon] of t, next is the zero time.
//
// Next looks at whole days in the window's location, so it is correct
// across daylight-saving changes. An invalid window is closed, with the
// validation problems as reason.
func (w *Window) Next(t time.Time) (open bool, next time.Time, reason string) {
	return w.calendar().Next(t)
}
