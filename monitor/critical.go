package monitor

// CriticalChecker is implemented by monitors whose checks may be critical
// (Check.Critical): a runner refuses a rollback policy that would not judge
// them (one without rollback.CriticalChecks), so that a failing critical
// check is never silently ignored.
type CriticalChecker interface {
	// CriticalChecks reports whether the monitor reports critical checks.
	CriticalChecks() bool
}

// CriticalChecks reports whether the probe's check is critical.
func (p *Probe) CriticalChecks() bool { return p != nil && p.Critical }

// CriticalChecks reports whether the scan's check is critical.
func (s *LogScan) CriticalChecks() bool { return s != nil && s.Critical }

var (
	_ CriticalChecker = (*Probe)(nil)
	_ CriticalChecker = (*LogScan)(nil)
)
