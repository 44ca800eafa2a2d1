package gate_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/gate"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

func TestWindowNext(t *testing.T) {
	loc := berlin(t)
	at := func(y int, m time.Month, d, h, mi int) time.Time { return time.Date(y, m, d, h, mi, 0, 0, loc) }
	def := &gate.Window{Location: loc}
	xmas := &gate.Window{Location: loc, Holidays: []gate.Holiday{{Name: "Christmas", Month: time.December, Day: 25}, {Name: "Reformation Day", Year: 2025, Month: time.October, Day: 31}}}
	freeze := &gate.Window{Location: loc,
		Holidays: []gate.Holiday{{Name: "Christmas", Month: time.December, Day: 25}},
		Freezes: []gate.Freeze{
			{Start: at(2025, 12, 15, 0, 0), End: at(2026, 1, 5, 0, 0), Reason: "Q4 freeze"},
			{Start: at(2025, 3, 26, 10, 0), End: at(2025, 3, 26, 11, 0), Reason: "database maintenance"},
		}}
	split := &gate.Window{Location: loc, Hours: []gate.Hours{
		{Day: time.Monday, From: 13 * time.Hour, To: 17 * time.Hour},
		{Day: time.Monday, From: 9 * time.Hour, To: 12 * time.Hour},
	}}
	allDay := &gate.Window{Location: loc}
	for d := time.Sunday; d <= time.Saturday; d++ {
		allDay.Hours = append(allDay.Hours, gate.Hours{Day: d, To: 24 * time.Hour})
	}
	gap := &gate.Window{Location: loc, Hours: []gate.Hours{{Day: time.Sunday, From: 2*time.Hour + 30*time.Minute, To: 4 * time.Hour}}}
	long := &gate.Window{Location: loc, Freezes: []gate.Freeze{{Start: at(2025, 1, 1, 0, 0), End: at(2025, 4, 1, 0, 0), Reason: "migration to the new datacentre"}}}

	cases := []struct {
		name   string
		w      *gate.Window
		t      time.Time
		open   bool
		next   time.Time
		reason string
	}{
		{"Wednesday morning", def, at(2025, 3, 26, 10, 0), true, at(2025, 3, 26, 10, 0), ""},
		{"opens at 09:00 sharp", def, at(2025, 3, 26, 9, 0), true, at(2025, 3, 26, 9, 0), ""},
		{"before hours", def, at(2025, 3, 26, 8, 0), false, at(2025, 3, 26, 9, 0), "outside deploy hours 09:00–17:00"},
		{"closes at 17:00", def, at(2025, 3, 26, 17, 0), false, at(2025, 3, 27, 9, 0), "outside deploy hours 09:00–17:00"},
		{"Friday morning", def, at(2025, 3, 28, 11, 59), true, at(2025, 3, 28, 11, 59), ""},
		{"Friday noon", def, at(2025, 3, 28, 12, 0), false, at(2025, 3, 31, 9, 0), "Friday afternoon"},
		{"Friday before hours", def, at(2025, 3, 28, 7, 0), false, at(2025, 3, 28, 9, 0), "outside deploy hours 09:00–12:00"},
		// Clocks go forward on Sunday 30 March 2025: Monday 09:00 is CEST (07:00 UTC).
		{"weekend before spring DST", def, at(2025, 3, 29, 12, 0), false, time.Date(2025, 3, 31, 7, 0, 0, 0, time.UTC), "weekend"},
		// Clocks go back on Sunday 26 October 2025: Monday 09:00 is CET (08:00 UTC).
		{"weekend before autumn DST", def, at(2025, 10, 25, 12, 0), false, time.Date(2025, 10, 27, 8, 0, 0, 0, time.UTC), "weekend"},
		{"Friday afternoon across DST", def, at(2025, 10, 24, 15, 0), false, time.Date(2025, 10, 27, 8, 0, 0, 0, time.UTC), "Friday afternoon"},
		{"holiday", xmas, at(2025, 12, 25, 10, 0), false, at(2025, 12, 26, 9, 0), `holiday "Christmas"`},
		{"day before a holiday, morning", xmas, at(2025, 12, 24, 11, 0), true, at(2025, 12, 24, 11, 0), ""},
		{"day before a holiday, afternoon", xmas, at(2025, 12, 24, 12, 0), false, at(2025, 12, 26, 9, 0), `day before holiday "Christmas"`},
		{"one-off holiday on a Friday", xmas, at(2025, 10, 31, 10, 0), false, at(2025, 11, 3, 9, 0), `holiday "Reformation Day"`},
		{"one-off holiday does not recur", xmas, at(2026, 10, 30, 10, 0), true, at(2026, 10, 30, 10, 0), ""},
		{"day before a one-off holiday", xmas, at(2025, 10, 30, 14, 0), false, at(2025, 11, 3, 9, 0), `day before holiday "Reformation Day"`},
		{"freeze", freeze, at(2025, 12, 16, 10, 0), false, at(2026, 1, 5, 9, 0), `freeze "Q4 freeze"`},
		{"freeze within a day", freeze, at(2025, 3, 26, 10, 30), false, at(2025, 3, 26, 11, 0), `freeze "database maintenance"`},
		{"freeze ahead", freeze, at(2025, 3, 26, 9, 59), true, at(2025, 3, 26, 9, 59), ""},
		{"weekend before a freeze", freeze, at(2025, 12, 13, 10, 0), false, at(2026, 1, 5, 9, 0), "weekend"},
		{"lunch break", split, at(2025, 3, 31, 12, 30), false, at(2025, 3, 31, 13, 0), "outside deploy hours 09:00–12:00, 13:00–17:00"},
		{"no hours that day", split, at(2025, 3, 26, 10, 0), false, at(2025, 3, 31, 9, 0), "no deploy hours on Wednesday"},
		{"every hour, ambiguous hour", allDay, time.Date(2025, 10, 26, 1, 30, 0, 0, time.UTC), true, time.Date(2025, 10, 26, 1, 30, 0, 0, time.UTC), ""},
		{"every hour, skipped hour", allDay, time.Date(2025, 3, 30, 1, 0, 0, 0, time.UTC), true, time.Date(2025, 3, 30, 1, 0, 0, 0, time.UTC), ""},
		// 02:30 does not exist on 30 March 2025; it opens at 03:30 CEST.
		{"opening in the DST gap", gap, at(2025, 3, 29, 12, 0), false, time.Date(2025, 3, 30, 1, 30, 0, 0, time.UTC), "weekend"},
		{"closed beyond the horizon", long, at(2025, 1, 2, 10, 0), false, time.Time{}, `freeze "migration to the new datacentre"`},
		{"opens just within the horizon", long, at(2025, 2, 1, 10, 0), false, at(2025, 4, 1, 9, 0), "freeze"},
		{"invalid", &gate.Window{}, at(2025, 3, 26, 10, 0), false, time.Time{}, "Location is nil"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			open, next, reason := c.w.Next(c.t)
			if open != c.open || !next.Equal(c.next) || !strings.Contains(reason, c.reason) || (c.open && reason != "") {
				t.Errorf("Next(%s) = %v, %s, %q; want %v, %s, %q", c.t, open, next, reason, c.open, c.next, c.reason)
			}
		})
	}
}

func TestWindowCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble starts on Saturday 2000-01-01 00:00 UTC, 01:00 in Berlin.
		loc := berlin(t)
		w := &gate.Window{Location: loc, Holidays: []gate.Holiday{{Name: "Epiphany", Month: time.January, Day: 6}}}
		mon := time.Date(2000, 1, 3, 9, 0, 0, 0, loc)
		wantRetry(t, w.Check(t.Context(), dep), mon, "window closed until Monday 09:00 Europe/Berlin: weekend")

		time.Sleep(time.Until(mon))
		if err := w.Check(t.Context(), dep); err != nil {
			t.Errorf("Monday 09:00: %v", err)
		}
		// Wednesday afternoon, the day before Epiphany.
		time.Sleep(time.Until(time.Date(2000, 1, 5, 12, 30, 0, 0, loc)))
		wantRetry(t, w.Check(t.Context(), dep), time.Date(2000, 1, 7, 9, 0, 0, 0, loc), `window closed until Friday 09:00 Europe/Berlin: day before holiday "Epiphany"`)
		time.Sleep(time.Until(time.Date(2000, 1, 7, 13, 0, 0, 0, loc)))
		wantRetry(t, w.Check(t.Context(), dep), time.Date(2000, 1, 10, 9, 0, 0, 0, loc), "window closed until Monday 09:00 Europe/Berlin: Friday afternoon")

		// A freeze that ends more than a week ahead shows the date.
		w.Freezes = []gate.Freeze{{Start: time.Now(), End: time.Date(2000, 1, 20, 0, 0, 0, 0, loc), Reason: "Q1 planning"}}
		wantRetry(t, w.Check(t.Context(), dep), time.Date(2000, 1, 20, 9, 0, 0, 0, loc), `window closed until Thursday 2000-01-20 09:00 Europe/Berlin: freeze "Q1 planning"`)

		// A freeze beyond the horizon blocks at once.
		w.Freezes = []gate.Freeze{{Start: time.Now(), End: time.Now().Add(90 * 24 * time.Hour), Reason: "datacentre move"}}
		wantBlock(t, w.Check(t.Context(), dep), "window closed for more than 60 days from Friday 13:00 Europe/Berlin", `freeze "datacentre move"`)
	})
}

func TestWindowReplacesBuiltIn(t *testing.T) {
	var g deploy.Gate = &gate.Window{Location: time.UTC}
	w, ok := g.(interface{ DeployWindow() bool })
	if !ok || !w.DeployWindow() {
		t.Error("Window does not declare itself a deploy window")
	}
	if got := g.(interface{ Name() string }).Name(); got != "deploy-window" {
		t.Errorf("Name() = %q", got)
	}
}

func TestWindowValidate(t *testing.T) {
	utc := time.UTC
	t0 := time.Date(2025, 12, 15, 0, 0, 0, 0, utc)
	cases := []struct {
		name string
		w    gate.Window
		want string
	}{
		{"location", gate.Window{}, "gate.Window: Location is nil"},
		{"day", gate.Window{Location: utc, Hours: []gate.Hours{{Day: 7, From: 9 * time.Hour, To: 17 * time.Hour}}}, "Hours[0].Day 7 is not a weekday"},
		{"from", gate.Window{Location: utc, Hours: []gate.Hours{{Day: 1, From: -time.Hour, To: 17 * time.Hour}}}, "Hours[0].From -1h0m0s is outside 0–24h"},
		{"to", gate.Window{Location: utc, Hours: []gate.Hours{{Day: 1, From: 9 * time.Hour, To: 25 * time.Hour}}}, "Hours[0].To 25h0m0s is outside 0–24h"},
		{"end before start", gate.Window{Location: utc, Hours: []gate.Hours{{Day: 1, From: 17 * time.Hour, To: 9 * time.Hour}}}, "Hours[0].To 9h0m0s is not after From 17h0m0s"},
		{"holiday name", gate.Window{Location: utc, Holidays: []gate.Holiday{{Month: 12, Day: 25}}}, "Holidays[0].Name is empty"},
		{"holiday month", gate.Window{Location: utc, Holidays: []gate.Holiday{{Name: "x", Month: 13, Day: 1}}}, `Holidays[0] ("x").Month 13 is not a month`},
		{"holiday day", gate.Window{Location: utc, Holidays: []gate.Holiday{{Name: "x", Year: 2025, Month: 2, Day: 29}}}, `Holidays[0] ("x").Day 29 is not a day of February (1–28)`},
		{"eve", gate.Window{Location: utc, EveCloses: 25 * time.Hour}, "EveCloses 25h0m0s is outside 0–24h"},
		{"freeze start", gate.Window{Location: utc, Freezes: []gate.Freeze{{End: t0, Reason: "Q4"}}}, `Freezes[0] ("Q4").Start is zero`},
		{"freeze end", gate.Window{Location: utc, Freezes: []gate.Freeze{{Start: t0, End: t0.Add(-time.Hour), Reason: "Q4"}}}, `Freezes[0] ("Q4").End 2025-12-14T23:00:00Z is not after Start 2025-12-15T00:00:00Z`},
	}
	for _, c := range cases {
		err := c.w.Validate()
		if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate() = %v, want ErrInvalid naming %q", c.name, err, c.want)
		}
		wantBlock(t, c.w.Check(t.Context(), dep), c.want)
	}
	ok := gate.Window{Location: utc, Hours: gate.DefaultHours(), EveCloses: 24 * time.Hour,
		Holidays: []gate.Holiday{{Name: "Leap day", Month: 2, Day: 29}},
		Freezes:  []gate.Freeze{{Start: t0, End: t0.Add(time.Hour)}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate() = %v for a good window", err)
	}
}

func ExampleWindow() {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	w := &gate.Window{
		Location: berlin, // default hours: Mon–Thu 09:00–17:00, Fri 09:00–12:00
		Holidays: []gate.Holiday{{Name: "Christmas", Month: time.December, Day: 25}},
		Freezes: []gate.Freeze{{
			Start:  time.Date(2025, 12, 29, 0, 0, 0, 0, berlin),
			End:    time.Date(2026, 1, 5, 0, 0, 0, 0, berlin),
			Reason: "year-end freeze",
		}},
	}
	for _, t := range []time.Time{
		time.Date(2025, 12, 17, 10, 0, 0, 0, berlin), // Wednesday morning
		time.Date(2025, 12, 19, 14, 0, 0, 0, berlin), // Friday afternoon
		time.Date(2025, 12, 24, 15, 0, 0, 0, berlin), // Christmas Eve
		time.Date(2025, 12, 30, 10, 0, 0, 0, berlin), // in the freeze
	} {
		open, next, reason := w.Next(t)
		if open {
			fmt.Printf("%s: open\n", t.Format("Mon Jan 2 15:04"))
			continue
		}
		fmt.Printf("%s: closed until %s: %s\n", t.Format("Mon Jan 2 15:04"), next.Format("Mon Jan 2 15:04"), reason)
	}
	// Output:
	// Wed Dec 17 10:00: open
	// Fri Dec 19 14:00: closed until Mon Dec 22 09:00: Friday afternoon
	// Wed Dec 24 15:00: closed until Fri Dec 26 09:00: day before holiday "Christmas"
	// Tue Dec 30 10:00: closed until Mon Jan 5 09:00: freeze "year-end freeze"
}

// TestWindowEvidence: a passing window says until when it stays open,
// following hours that run on past midnight.
func TestWindowEvidence(t *testing.T) {
	allDay := func(days ...time.Weekday) []gate.Hours {
		var hs []gate.Hours
		for _, d := range days {
			hs = append(hs, gate.Hours{Day: d, From: 0, To: 24 * time.Hour})
		}
		return hs
	}
	everyDay := allDay(time.Sunday, time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday)
	for _, tc := range []struct {
		name  string
		hours []gate.Hours
		want  string
	}{
		// synctest's clock starts on Saturday 2000-01-01 00:00 UTC; the
		// release starts at 10:00.
		{"office hours", []gate.Hours{{Day: time.Saturday, From: 9 * time.Hour, To: 17 * time.Hour}}, "deploy window open at Saturday 10:00 UTC, until 17:00"},
		{"back to back", []gate.Hours{{Day: time.Saturday, From: 9 * time.Hour, To: 12 * time.Hour}, {Day: time.Saturday, From: 12 * time.Hour, To: 17 * time.Hour}}, "deploy window open at Saturday 10:00 UTC, until 17:00"},
		{"into Sunday", append(allDay(time.Saturday), gate.Hours{Day: time.Sunday, From: 0, To: 12 * time.Hour}), "deploy window open at Saturday 10:00 UTC, until Sunday 12:00"},
		{"around the clock", everyDay, "deploy window open at Saturday 10:00 UTC, around the clock for the next week"},
	} {
		synctest.Test(t, func(t *testing.T) {
			time.Sleep(10 * time.Hour)
			r, err := deploy.NewRunner(&deploytest.Strategy{Steps: deploytest.Ramp(0, 1)},
				deploy.WithStore(state.NewMemory()), deploy.WithMonitors(deploytest.Healthy()),
				deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithSchedule(monitor.Schedule{}),
				deploy.WithGates(&gate.Window{Location: time.UTC, Hours: tc.hours, Holidays: []gate.Holiday{}}))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := r.Run(t.Context(), deploy.Release{Service: "checkout", Version: "v2"})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got := rep.Gates[0].Evidence; got != tc.want {
				t.Errorf("%s: evidence %q, want %q", tc.name, got, tc.want)
			}
		})
	}
}
