package prometheus

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/deploykit/deploy/internal/redact"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Monitoring checks that a service is monitored: it has scrape targets, they
// are all up, and alerting rules that mention it are loaded and healthy.
type Monitoring struct {
	// API is the Prometheus client.
	API v1.API
	// TargetLabel is the target label whose value is the service name; empty
	// means DefaultTargetLabel ("job"). "service" is common too.
	TargetLabel string
	// NoRules skips the alerting-rule check (when alerts live elsewhere).
	NoRules bool
}

// CheckMonitoring is Monitoring{API: the source's API, TargetLabel: set by
// WithTargetLabel}.Check(ctx, service).
func (s *Source) CheckMonitoring(ctx context.Context, service string) error {
	return Monitoring{API: s.api, TargetLabel: s.label}.Check(ctx, service)
}

// Check returns nil when service is monitored. Otherwise it returns an error
// wrapping ErrMonitoringInactive that lists what is missing: no scrape
// target whose TargetLabel is service, a target that is not up (with its
// last scrape error), no alerting rule mentioning service, a mentioning rule
// that fails to evaluate. An alerting rule mentions service when one of its
// labels has it as value or its expression has it as a whole word (as in
// job="checkout"). Errors from the API are returned as they are, wrapped.
func (m Monitoring) Check(ctx context.Context, service string) error {
	_, err := m.Confirm(ctx, service)
	return err
}

// Confirm is Check that also says, when the service is monitored, what it
// found: "2 scrape targets up (job="checkout"); 3 alerting rules mentioning
// checkout: CheckoutDown, CheckoutErrors, CheckoutLatency" (rule names sorted).
// gate.MonitoringActive records it as the evidence of the checklist's
// "Confirm monitoring/alerting active".
func (m Monitoring) Confirm(ctx context.Context, service string) (evidence string, err error) {
	evidence, err = m.confirm(ctx, service)
	return redact.Text(evidence), redact.Error(err)
}

func (m Monitoring) confirm(ctx context.Context, service string) (evidence string, err error) {
	if m.API == nil {
		return "", errors.New("prometheus: Monitoring.API is nil")
	}
	if service == "" {
		return "", errors.New(`prometheus: Monitoring.Check: service "" is empty`)
	}
	label := m.TargetLabel
	if label == "" {
		label = DefaultTargetLabel
	}
	var problems []string

	targets, err := m.API.Targets(ctx)
	if err != nil {
		return "", fmt.Errorf("prometheus: checking the monitoring of %q: targets: %w", service, err)
	}
	found := 0
	for _, tg := range targets.Active {
		if string(tg.Labels[model.LabelName(label)]) != service {
			continue
		}
		found++
		if tg.Health != v1.HealthGood {
			p := fmt.Sprintf("scrape target %s is %s", tg.ScrapeURL, tg.Health)
			switch {
			case tg.LastError != "":
				p += ": " + redact.Clip(tg.LastError, 300)
			case tg.Health == v1.HealthUnknown:
				p += " (not scraped yet)"
			}
			problems = append(problems, p)
		}
	}
	if found == 0 {
		problems = append(problems, fmt.Sprintf("no scrape target has %s=%q (%d active targets)", label, service, len(targets.Active)))
	}

	var names []string
	if !m.NoRules {
		rules, err := m.API.Rules(ctx, nil)
		if err != nil {
			return "", fmt.Errorf("prometheus: checking the monitoring of %q: rules: %w", service, err)
		}
		word := regexp.MustCompile(`(^|[^A-Za-z0-9_:-])` + regexp.QuoteMeta(service) + `($|[^A-Za-z0-9_:-])`)
		alerting := 0
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				a, ok := r.(v1.AlertingRule)
				if !ok {
					continue
				}
				alerting++
				if !mentions(a, service, word) {
					continue
				}
				names = append(names, a.Name)
				if a.Health == v1.RuleHealthBad {
					problems = append(problems, fmt.Sprintf("alerting rule %s (group %s) fails: %s", a.Name, g.Name, redact.Clip(a.LastError, 300)))
				}
			}
		}
		if len(names) == 0 {
			problems = append(problems, fmt.Sprintf("no alerting rule mentions %q (%d alerting rules loaded)", service, alerting))
		}
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("prometheus: %w for %q: %s", ErrMonitoringInactive, service, strings.Join(problems, "; "))
	}
	evidence = fmt.Sprintf("%s up (%s=%q)", plural(found, "scrape target"), label, service)
	if !m.NoRules {
		slices.Sort(names)
		names = slices.Compact(names)
		evidence += fmt.Sprintf("; %s mentioning %s: %s", plural(len(names), "alerting rule"), service, strings.Join(names, ", "))
	}
	return evidence, nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func mentions(a v1.AlertingRule, service string, word *regexp.Regexp) bool {
	for _, v := range a.Labels {
		if string(v) == service {
			return true
		}
	}
	return word.MatchString(a.Query)
}
