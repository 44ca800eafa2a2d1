package gate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/gate"
)

func TestMonitoringActiveUnit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked []string
		missing := errors.New("no alerting rule mentions it")
		m := &gate.MonitoringActive{Checker: gate.MonitoringFunc(func(ctx context.Context, service string) error {
			asked = append(asked, service)
			if service == "checkout" {
				return nil
			}
			return missing
		})}
		if err := m.Check(t.Context(), dep); err != nil {
			t.Errorf("checkout: %v", err)
		}
		m.Service = "payments"
		err := m.Check(t.Context(), dep)
		wantBlock(t, err, "monitoring of payments not confirmed: no alerting rule mentions it")
		if !errors.Is(err, missing) {
			t.Errorf("err = %v does not wrap the checker's error", err)
		}
		m.Retry = 30 * time.Second
		wantRetry(t, m.Check(t.Context(), dep), time.Now().Add(30*time.Second), "monitoring of payments not confirmed: no alerting rule mentions it")
		if got := strings.Join(asked, ","); got != "checkout,payments,payments" {
			t.Errorf("asked for %s", got)
		}
		if m.Name() != "monitoring-active" || len(m.ChecklistItems()) != 1 || m.ChecklistItems()[0] != deploy.ItemMonitoringActive {
			t.Errorf("Name() = %q, items %v", m.Name(), m.ChecklistItems())
		}
		for _, c := range []struct {
			m    gate.MonitoringActive
			want string
		}{
			{gate.MonitoringActive{}, "gate.MonitoringActive: Checker is nil"},
			{gate.MonitoringActive{Checker: m.Checker, Retry: -time.Second}, "Retry -1s is negative"},
		} {
			if err := c.m.Validate(); !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate() = %v, want ErrInvalid naming %q", err, c.want)
			}
			wantBlock(t, c.m.Check(t.Context(), dep), c.want)
		}
	})
}
