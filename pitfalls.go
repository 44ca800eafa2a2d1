package deploy

import (
	"fmt"

	"github.com/deploykit/deploy/state"
)

// guard checks the pitfall guards for a release; waived pitfalls are
// returned, and one error for each pitfall that is neither avoided nor
// waived.
func (r *Runner) guard(rel Release) ([]state.Waiver, []error) {
	var (
		waivers []state.Waiver
		errs    []error
	)
	check := func(p Pitfall, bad bool, what string) {
		if !bad {
			return
		}
		if reason, ok := r.cfg.waivers[p]; ok {
			waivers = append(waivers, state.Waiver{Pitfall: string(p), Reason: reason})
			return
		}
		errs = append(errs, fmt.Errorf("%w: pitfall %s: production release of %s with %s; fix it or waive it with WithWaiver(deploy.%s, reason)",
			ErrBlocked, p, rel.Service, what, pitfallConst(p)))
	}
	prod := isProduction(rel.Environment)
	check(NoRollbackPlan, prod && !hasRollbackPath(r.strategy), "no rollback path")
	check(NoMonitoring, prod && len(r.cfg.monitors) == 0, "no monitor")
	check(SilentDeploy, prod && len(r.cfg.notifiers) == 0, "no notifier")
	if len(errs) > 0 {
		return nil, errs
	}
	// A Friday deploy is judged by the window gate at preflight; a waiver
	// turns the built-in window off.
	if reason, ok := r.cfg.waivers[FridayDeploy]; ok && prod {
		waivers = append(waivers, state.Waiver{Pitfall: string(FridayDeploy), Reason: reason})
	}
	return waivers, nil
}

func pitfallConst(p Pitfall) string {
	switch p {
	case FridayDeploy:
		return "FridayDeploy"
	case NoMonitoring:
		return "NoMonitoring"
	case NoRollbackPlan:
		return "NoRollbackPlan"
	}
	return "SilentDeploy"
}

func hasRollbackPath(s Strategy) bool {
	if rp, ok := s.(interface{ RollbackPath() bool }); ok {
		return rp.RollbackPath()
	}
	return true
}
