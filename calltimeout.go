package deploy

import (
	"fmt"
	"time"
)

// CallBounder is implemented by a gate, monitor or notifier that bounds its
// own calls — a webhook's or a command's Timeout. The runner bounds every
// call too (Timeouts): a call bound longer than the runner's would be cut
// short at the runner's without saying why, so NewRunner refuses it, naming
// both. CallTimeout returns 0 when the call sets no bound of its own.
type CallBounder interface {
	CallTimeout() time.Duration
}

// checkCallTimeout refuses x when its own bound exceeds limit, the
// runner's bound for that kind of call (named by option).
func checkCallTimeout(where string, x any, limit time.Duration, option string) error {
	b, ok := x.(CallBounder)
	if !ok {
		return nil
	}
	var own time.Duration
	if err := safely(where+" CallTimeout", func() error { own = b.CallTimeout(); return nil }); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, where, err)
	}
	if own > limit {
		return fmt.Errorf("%w: %s: its timeout %v is longer than the runner's bound %v for it (WithTimeouts, Timeouts.%s): raise that, or lower the timeout", ErrInvalid, where, own, limit, option)
	}
	return nil
}
