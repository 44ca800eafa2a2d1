package state

import "sync"

// creator batches the Creates of one File that arrive at the same time:
// the first becomes the leader, takes the directory lock and creates its
// batch — every Create queued meanwhile — with one write of the index of
// active releases, then the next batch, until none is left. The one-active
// rule is checked for the whole batch under the lock, as for one Create.
type creator struct {
	mu      sync.Mutex
	leading bool
	queue   []*createReq
}

type createReq struct {
	r    *Record
	done chan error
}

// do creates r, alone or in a batch.
func (c *creator) do(f *File, r *Record) error {
	req := &createReq{r: r, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, req)
	if c.leading {
		c.mu.Unlock()
		return <-req.done
	}
	c.leading = true
	for len(c.queue) > 0 {
		batch := c.queue
		c.queue = nil
		c.mu.Unlock()
		recs := make([]*Record, len(batch))
		for i, q := range batch {
			recs[i] = q.r
		}
		var errs []error
		if unlock, err := f.lockDir(); err != nil {
			errs = make([]error, len(batch))
			for i := range errs {
				errs[i] = err
			}
		} else {
			errs = f.create(recs)
			unlock()
		}
		for i, q := range batch {
			q.done <- errs[i]
		}
		c.mu.Lock()
	}
	c.leading = false
	c.mu.Unlock()
	return <-req.done
}
