package state

import "context"

type tokenKey struct{}

// WithToken returns ctx carrying the fencing token of the lease under which
// a runner makes an effect. Runners call it; effects read it with
// [TokenFrom].
func WithToken(ctx context.Context, token int64) context.Context {
	return context.WithValue(ctx, tokenKey{}, token)
}

// TokenFrom returns the fencing token ctx carries, if any: code that
// changes a target (a rollback step, a strategy's Apply) stores it with
// each change and refuses a change that carries a lower one, so that a
// runner paused past its lease cannot change the target behind the runner
// that took the release over.
func TokenFrom(ctx context.Context) (int64, bool) {
	t, ok := ctx.Value(tokenKey{}).(int64)
	return t, ok
}
