// Package window is the deploy-window calendar shared by gate.Window and
// the runner's built-in window: deploy hours by weekday, holidays with
// their eves, and freezes, in one time zone. It knows nothing of releases:
// it says whether a time is open, and when the calendar next opens.
package window

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// SearchHorizon bounds how far ahead [Calendar.Next] looks for the next
// opening. A window that stays closed longer (a long freeze, hours on no day
// that is not a holiday) blocks the release instead of asking it to wait.
const SearchHorizon = 60 * 24 * time.Hour

// DefaultEveCloses is when the day before a holiday closes when
// [Calendar.EveCloses] is zero: noon, like a Friday.
const DefaultEveCloses = 12 * time.Hour

// Hours is a deploy period on one day of the week, in wall-clock time of the
// window's location: from From (inclusive) to To (exclusive), both offsets
// from midnight, such as 9*time.Hour. To may be 24h, the end of the day.
//
// A time that does not exist on a day when clocks go forward is resolved as
// [time.Date] resolves it (02:30 becomes 03:30), and a time that happens
// twice when they go back is one of the two, so periods keep to wall-clock
// time across daylight-saving changes.
type Hours struct {
	Day      time.Weekday
	From, To time.Duration
}

// DefaultHours returns the hours used when [Calendar.Hours] is empty: Monday to
// Thursday 09:00–17:00 and Friday 09:00–12:00.
func DefaultHours() []Hours {
	h := make([]Hours, 0, 5)
	for d := time.Monday; d <= time.Thursday; d++ {
		h = append(h, Hours{Day: d, From: 9 * time.Hour, To: 17 * time.Hour})
	}
	return append(h, Hours{Day: time.Friday, From: 9 * time.Hour, To: 12 * time.Hour})
}

// Holiday is a day with no deploys, in the window's location. Year 0 makes it
// recur every year (Christmas); otherwise it is that one date (Easter Monday
// 2025). The day before a holiday closes at [Calendar.EveCloses].
type Holiday struct {
	// Name is the reason shown when the window is closed ("Christmas").
	Name  string
	Year  int
	Month time.Month
	Day   int
}

func (h Holiday) on(y int, m time.Month, d int) bool {
	return h.Month == m && h.Day == d && (h.Year == 0 || h.Year == y)
}

// Freeze is a period with no deploys, from Start (inclusive) to End
// (exclusive), such as a year-end change freeze.
type Freeze struct {
	Start, End time.Time
	// Reason is shown when the window is closed ("Q4 freeze").
	Reason string
}

// Calendar is a deploy window with a freeze calendar: it is open when a
// time is within its Hours in its Location and not on a holiday, in the
// afternoon before a holiday or in a freeze. Its fields must not change
// while it is used.
type Calendar struct {
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

// Problems lists the fields that are wrong, naming each with its value.
func (w *Calendar) Problems() []string {
	var p problems
	if w.Location == nil {
		p.add("Location is nil; set a time zone such as time.LoadLocation(%q)", "Europe/Berlin")
	}
	for i, h := range w.Hours {
		if h.Day < time.Sunday || h.Day > time.Saturday {
			p.add("Hours[%d].Day %d is not a weekday", i, int(h.Day))
		}
		if h.From < 0 || h.From >= 24*time.Hour {
			p.add("Hours[%d].From %v is outside 0–24h", i, h.From)
		}
		if h.To <= 0 || h.To > 24*time.Hour {
			p.add("Hours[%d].To %v is outside 0–24h", i, h.To)
		}
		if h.To <= h.From {
			p.add("Hours[%d].To %v is not after From %v", i, h.To, h.From)
		}
	}
	for i, h := range w.Holidays {
		if h.Name == "" {
			p.add("Holidays[%d].Name is empty", i)
		}
		if h.Year < 0 {
			p.add("Holidays[%d] (%q).Year %d is negative", i, h.Name, h.Year)
		}
		if h.Month < time.January || h.Month > time.December {
			p.add("Holidays[%d] (%q).Month %d is not a month", i, h.Name, int(h.Month))
			continue
		}
		y := h.Year
		if y == 0 {
			y = 2000 // a leap year, so that February 29 recurs
		}
		if days := time.Date(y, h.Month+1, 0, 0, 0, 0, 0, time.UTC).Day(); h.Day < 1 || h.Day > days {
			p.add("Holidays[%d] (%q).Day %d is not a day of %s (1–%d)", i, h.Name, h.Day, h.Month, days)
		}
	}
	if w.EveCloses < 0 || w.EveCloses > 24*time.Hour {
		p.add("EveCloses %v is outside 0–24h", w.EveCloses)
	}
	for i, f := range w.Freezes {
		switch {
		case f.Start.IsZero():
			p.add("Freezes[%d] (%q).Start is zero", i, f.Reason)
		case f.End.IsZero():
			p.add("Freezes[%d] (%q).End is zero", i, f.Reason)
		case !f.End.After(f.Start):
			p.add("Freezes[%d] (%q).End %s is not after Start %s", i, f.Reason, f.End.Format(time.RFC3339), f.Start.Format(time.RFC3339))
		}
	}
	return p
}

// Format writes t as "Monday 09:00 Europe/Berlin", with the date when t is a
// week or more after now.
func (w *Calendar) Format(t, now time.Time) string {
	t = t.In(w.Location)
	layout := "Monday 15:04"
	if t.Sub(now) >= 6*24*time.Hour {
		layout = "Monday 2006-01-02 15:04"
	}
	return t.Format(layout) + " " + w.Location.String()
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
// across daylight-saving changes. An invalid calendar is closed, with its
// problems as reason.
func (w *Calendar) Next(t time.Time) (open bool, next time.Time, reason string) {
	if p := w.Problems(); len(p) > 0 {
		return false, time.Time{}, strings.Join(p, "; ")
	}
	t = t.In(w.Location)
	y, m, d := t.Date()
	limit := t.Add(SearchHorizon)
	for i := 0; ; i++ {
		day := time.Date(y, m, d+i, 0, 0, 0, 0, w.Location)
		if day.After(limit) {
			return false, time.Time{}, w.why(t)
		}
		for _, s := range w.spans(day) {
			if !s.end.After(t) {
				continue
			}
			if !s.start.After(t) {
				return true, t, ""
			}
			if s.start.After(limit) {
				return false, time.Time{}, w.why(t)
			}
			return false, s.start, w.why(t)
		}
	}
}

type span struct{ start, end time.Time }

// closes returns when the open period holding t ends, following periods
// that join across midnight, or the zero time when the window is not open at
// t or stays open for the next seven days.
func (w *Calendar) closes(t time.Time) time.Time {
	t = t.In(w.Location)
	y, m, d := t.Date()
	end := time.Time{}
	for _, s := range w.spans(time.Date(y, m, d, 0, 0, 0, 0, w.Location)) {
		switch {
		case !s.start.After(t) && s.end.After(t):
			end = s.end
		case !end.IsZero() && !s.start.After(end) && s.end.After(end):
			end = s.end // a period that starts where the open one ends
		}
	}
	for i := 1; !end.IsZero() && i <= 7; i++ {
		next := w.spans(time.Date(y, m, d+i, 0, 0, 0, 0, w.Location))
		if len(next) == 0 || !next[0].start.Equal(end) {
			return end
		}
		end = next[0].end
	}
	return time.Time{}
}

// wall returns the instant at offset off (0–24h) of wall-clock time on the
// day that starts at day.
func wall(day time.Time, off time.Duration) time.Time {
	y, m, d := day.Date()
	h := off / time.Hour
	off -= h * time.Hour
	mi := off / time.Minute
	off -= mi * time.Minute
	s := off / time.Second
	off -= s * time.Second
	return time.Date(y, m, d, int(h), int(mi), int(s), int(off), day.Location())
}

func (w *Calendar) hours() []Hours {
	if len(w.Hours) == 0 {
		return DefaultHours()
	}
	return w.Hours
}

func (w *Calendar) eveCloses() time.Duration {
	if w.EveCloses == 0 {
		return DefaultEveCloses
	}
	return w.EveCloses
}

// holiday returns the holiday on the day that starts at day, if any.
func (w *Calendar) holiday(day time.Time) (Holiday, bool) {
	y, m, d := day.Date()
	for _, h := range w.Holidays {
		if h.on(y, m, d) {
			return h, true
		}
	}
	return Holiday{}, false
}

// spans returns the open periods of the day that starts at day, sorted by
// start: its hours, less holidays, the afternoon before a holiday and
// freezes.
func (w *Calendar) spans(day time.Time) []span {
	if _, ok := w.holiday(day); ok {
		return nil
	}
	var out []span
	for _, h := range w.hours() {
		if h.Day == day.Weekday() {
			out = append(out, span{wall(day, h.From), wall(day, h.To)})
		}
	}
	if _, ok := w.holiday(wall(day, 24*time.Hour)); ok {
		cut := wall(day, w.eveCloses())
		out = subtract(out, cut, wall(day, 24*time.Hour))
	}
	for _, f := range w.Freezes {
		out = subtract(out, f.Start, f.End)
	}
	slices.SortFunc(out, func(a, b span) int { return a.start.Compare(b.start) })
	return out
}

// subtract removes [from, to) from every span.
func subtract(spans []span, from, to time.Time) []span {
	out := spans[:0:0]
	for _, s := range spans {
		if e := minTime(s.end, from); s.start.Before(e) {
			out = append(out, span{s.start, e})
		}
		if b := maxTime(s.start, to); b.Before(s.end) {
			out = append(out, span{b, s.end})
		}
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// why says why the window is closed at t (in the window's location).
func (w *Calendar) why(t time.Time) string {
	for _, f := range w.Freezes {
		if !t.Before(f.Start) && t.Before(f.End) {
			if f.Reason == "" {
				return "freeze"
			}
			return fmt.Sprintf("freeze %q", f.Reason)
		}
	}
	y, m, d := t.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, w.Location)
	if h, ok := w.holiday(day); ok {
		return fmt.Sprintf("holiday %q", h.Name)
	}
	if h, ok := w.holiday(wall(day, 24*time.Hour)); ok && !t.Before(wall(day, w.eveCloses())) {
		return fmt.Sprintf("day before holiday %q", h.Name)
	}
	var today []Hours
	for _, h := range w.hours() {
		if h.Day == t.Weekday() {
			today = append(today, h)
		}
	}
	if len(today) == 0 {
		if t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
			return "weekend"
		}
		return "no deploy hours on " + t.Weekday().String()
	}
	slices.SortFunc(today, func(a, b Hours) int { return int(a.From - b.From) })
	last := today[len(today)-1]
	for _, h := range today {
		last.To = max(last.To, h.To)
	}
	if t.Weekday() == time.Friday && t.Hour() >= 12 && !t.Before(wall(day, last.To)) {
		return "Friday afternoon"
	}
	s := "outside deploy hours"
	for i, h := range today {
		sep := " "
		if i > 0 {
			sep = ", "
		}
		s += sep + clock(h.From) + "–" + clock(h.To)
	}
	return s
}

// clock formats an offset from midnight as "09:00" (or "09:00:30").
func clock(d time.Duration) string {
	h, mi, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	if s != 0 {
		return fmt.Sprintf("%02d:%02d:%02d", h, mi, s)
	}
	return fmt.Sprintf("%02d:%02d", h, mi)
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// problems collects what Problems finds wrong.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// Verdict says whether the calendar is open at now and, for people, why:
// when open, the evidence ("deploy window open at Tuesday 10:00
// Europe/Berlin, until 17:00"); when closed, when it next opens (zero when
// not within SearchHorizon) and the reason, worded for an error ("window
// closed until Monday 09:00 Europe/Berlin: weekend").
func (w *Calendar) Verdict(now time.Time) (open bool, evidence string, next time.Time, reason string) {
	open, next, why := w.Next(now)
	if open {
		switch end := w.closes(now); {
		case end.IsZero():
			return true, fmt.Sprintf("deploy window open at %s, around the clock for the next week", w.Format(now, now)), now, ""
		case sameDay(end.In(w.Location), now.In(w.Location)):
			return true, fmt.Sprintf("deploy window open at %s, until %s", w.Format(now, now), end.In(w.Location).Format("15:04")), now, ""
		default:
			return true, fmt.Sprintf("deploy window open at %s, until %s", w.Format(now, now), end.In(w.Location).Format("Monday 15:04")), now, ""
		}
	}
	if next.IsZero() {
		return false, "", next, fmt.Sprintf("window closed for more than %d days from %s: %s", int(SearchHorizon/(24*time.Hour)), w.Format(now, now), why)
	}
	return false, "", next, fmt.Sprintf("window closed until %s: %s", w.Format(next, now), why)
}
