package prometheus

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/deploykit/deploy/internal/redact"
)

// MaxTraces is the most trace IDs a metric carries from exemplars.
const MaxTraces = 5

// traceLabels are the exemplar labels that hold a trace ID, in the order
// they are looked for (OpenTelemetry's, then common spellings).
var traceLabels = []model.LabelName{"trace_id", "traceID", "traceId", "trace-id"}

// exemplarStore remembers whether the server stores exemplars: Prometheus
// keeps them only with --enable-feature=exemplar-storage, and without it
// answers every exemplar query with nothing, which must not read as "no
// failing requests". It asks the server's flags once; an answer that
// could not be had is asked again next time.
type exemplarStore struct {
	mu    sync.Mutex
	known bool
	ok    bool
}

// enabled reports whether the server stores exemplars; note says why not,
// or why it could not tell.
func (e *exemplarStore) enabled(ctx context.Context, api v1.API, timeout time.Duration) (ok bool, note string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.known {
		if !e.ok {
			return false, noStorage
		}
		return true, ""
	}
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	flags, err := api.Flags(fctx)
	if err != nil {
		return false, redact.Error(fmt.Errorf("failing traces not cited: could not ask the Prometheus server whether it stores exemplars: %w", err)).Error()
	}
	e.known = true
	e.ok = slices.Contains(strings.Split(flags["enable-feature"], ","), "exemplar-storage")
	if !e.ok {
		return false, noStorage
	}
	return true, ""
}

const noStorage = "failing traces not cited: the Prometheus server stores no exemplars (start it with --enable-feature=exemplar-storage)"

// traces returns up to MaxTraces trace IDs from the exemplars of q's
// Exemplars selector over the window, most recent first, or a note that
// says why there are none: the server stores no exemplars, the query
// failed, or the window had none.
func (s *Source) traces(ctx context.Context, q compiled, vars Vars, now time.Time, window time.Duration) ([]string, string) {
	timeout := q.Timeout
	if timeout <= 0 {
		timeout = s.timeout
	}
	if ok, note := s.store.enabled(ctx, s.api, timeout); !ok {
		return nil, note
	}
	sel, err := execute(q.exemplars, vars)
	if err != nil {
		return nil, "failing traces not cited: " + err.Error()
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := s.api.QueryExemplars(qctx, sel, now.Add(-window), now)
	if err != nil {
		return nil, redact.Error(fmt.Errorf("failing traces not cited: exemplar query %s: %w", sel, err)).Error()
	}
	type ex struct {
		id string
		at model.Time
	}
	var all []ex
	odd := 0 // trace labels that are no trace ID: not quoted into verdicts
	for _, r := range res {
		for _, e := range r.Exemplars {
			if q.ExemplarsAbove > 0 && float64(e.Value) <= q.ExemplarsAbove {
				continue
			}
			for _, l := range traceLabels {
				if id := string(e.Labels[l]); id != "" {
					if traceID(id) {
						all = append(all, ex{id, e.Timestamp})
					} else {
						odd++
					}
					break
				}
			}
		}
	}
	if len(all) == 0 {
		if odd > 0 {
			return nil, fmt.Sprintf("no failing traces: %d exemplar(s) in the window have a trace label that is not a trace ID (letters, digits, - and _, at most 64)", odd)
		}
		return nil, "no failing traces: no exemplar with a trace ID in the window"
	}
	slices.SortStableFunc(all, func(a, b ex) int { return int(b.at - a.at) })
	var ids []string
	for _, e := range all {
		if !slices.Contains(ids, e.id) {
			ids = append(ids, e.id)
		}
		if len(ids) == MaxTraces {
			break
		}
	}
	return ids, ""
}

// traceID reports whether id looks like a trace ID — letters, digits, '-'
// and '_', at most 64 — so that a label value never carries markup or
// text into a verdict, a report or a span.
func traceID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
