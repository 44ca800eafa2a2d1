package rollback

import (
	"slices"
	"strings"

	"github.com/deploykit/deploy/monitor"
)

// cite adds to a failed result the trace IDs of failing or slow requests
// its metric carries (monitor.Metric.Traces, from exemplars), or the note
// saying why the source could not give them: the verdict, and the report
// and rollback span that quote its reason, then name the requests to look
// at — or say that none could be named.
func cite(r *Result, obs *monitor.Observation) {
	m, ok := obs.Metrics[r.Metric]
	if !ok {
		return
	}
	switch {
	case len(m.Traces) > 0:
		r.Traces = slices.Clone(m.Traces)
		r.Reason += "; failing traces: " + strings.Join(m.Traces, ", ")
	case m.TracesNote != "":
		r.Reason += "; " + m.TracesNote
	}
}
