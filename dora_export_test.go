package deploy

import (
	"context"

	"github.com/deploykit/deploy/state"
)

// RecordDORA exposes recordDORA to the tests of package deploy_test.
func (r *Runner) RecordDORA(ctx context.Context, rec *state.Record) { r.recordDORA(ctx, rec) }
