package flags

import (
	"context"

	"github.com/open-feature/go-sdk/openfeature"
)

// Client is the read side of a feature flag: the one method of
// *openfeature.Client that progressive.Strategy and gate.FlagOff use to
// check what users get. Any OpenFeature client works, preferably one from an
// isolated API (isolated.NewAPI) rather than the global one; a test may pass
// a fake.
type Client interface {
	BooleanValueDetails(ctx context.Context, flag string, defaultValue bool, evalCtx openfeature.EvaluationContext, options ...openfeature.Option) (openfeature.BooleanEvaluationDetails, error)
}

var _ Client = (*openfeature.Client)(nil)
