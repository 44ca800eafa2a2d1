package state

import (
	"fmt"
	"sync"
)

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

// do creates r, alone or in a batch. The caller that finds no leader
// leads: it creates the batch its own record is in, and hands what queued
// meanwhile to a goroutine of the store that leads on until the queue is
// empty, so that no caller waits for others' batches.
func (c *creator) do(f *File, r *Record) error {
	req := &createReq{r: r, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, req)
	if c.leading {
		c.mu.Unlock()
		return <-req.done
	}
	c.leading = true
	c.mu.Unlock()
	c.lead(f, 1)
	return <-req.done
}

// lead creates up to batches batches (0: until the queue is empty), then
// hands the rest on to a goroutine that leads on.
func (c *creator) lead(f *File, batches int) {
	for n := 0; ; n++ {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.leading = false
			c.mu.Unlock()
			return
		}
		if batches > 0 && n == batches {
			c.mu.Unlock()
			go c.lead(f, 0)
			return
		}
		batch := c.queue
		c.queue = nil
		c.mu.Unlock()
		c.createBatch(f, batch)
	}
}

// createBatch creates one batch under the directory lock and answers each
// request; a panic in it fails the batch instead of stranding the queue.
func (c *creator) createBatch(f *File, batch []*createReq) {
	errs := make([]error, len(batch))
	defer func() {
		if v := recover(); v != nil {
			for i := range errs {
				if errs[i] == nil {
					errs[i] = fmt.Errorf("state: Create panicked: %v", v)
				}
			}
		}
		for i, q := range batch {
			q.done <- errs[i]
		}
	}()
	recs := make([]*Record, len(batch))
	for i, q := range batch {
		recs[i] = q.r
	}
	unlock, err := f.lockDir()
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return
	}
	defer unlock()
	copy(errs, f.create(recs))
}
