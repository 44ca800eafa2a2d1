package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

var _ Lister = (*File)(nil)

// headSummary is the part of a head a listing shows: decoding only it
// leaves the rest of the head (outbox, pending entries) undecoded.
type headSummary struct {
	ID      string `json:"id"`
	Release struct {
		Service     string `json:"service"`
		Environment string `json:"environment"`
		Version     string `json:"version"`
	} `json:"release"`
	Status     Status    `json:"status"`
	Phase      Phase     `json:"phase"`
	Next       time.Time `json:"next"`
	Holder     string    `json:"holder"`
	LeaseUntil time.Time `json:"leaseUntil"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
	Waiting    *Wait     `json:"waiting"`
}

// List implements [Lister]. It reads the heads of the releases in the
// order of their ids and stops once the page is full, so a page costs up
// to its Limit heads plus those that do not match. ActiveOnly reads the
// heads the index of active releases names (it never misses an active one;
// see File), not every head. Load takes no lock and neither does List: a
// reader takes only a whole head whose checksum matches (see File).
func (f *File) List(ctx context.Context, q Query) (Page, error) {
	q, err := q.Check()
	if err != nil {
		return Page{}, err
	}
	ids, err := f.listIDs(q)
	if err != nil {
		return Page{}, err
	}
	var page Page
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return Page{}, err
		}
		s, err := f.readSummary(id)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrQuarantined) {
			continue // gone since the directory was read
		}
		if err != nil {
			s = Summary{ID: id, Problem: err.Error()}
			if r, ok := f.salvageKey(id); ok {
				s.Service, s.Environment, s.Status = r.Release.Service, r.Release.Environment, r.Status
			}
		}
		if !q.Match(s) {
			continue
		}
		if len(page.Releases) == q.Limit {
			page.Next = page.Releases[len(page.Releases)-1].ID
			break
		}
		page.Releases = append(page.Releases, s)
	}
	return page, nil
}

// listIDs returns the ids after q.After that may match q, sorted.
func (f *File) listIDs(q Query) ([]string, error) {
	var ids []string
	idx, err := f.readIndex()
	if q.ActiveOnly && err == nil {
		for _, id := range idx {
			ids = append(ids, id)
		}
	} else {
		ents, err := os.ReadDir(f.dir)
		if err != nil {
			return nil, fmt.Errorf("state: listing %s: %w", f.dir, err)
		}
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() && !strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".json") {
				ids = append(ids, strings.TrimSuffix(n, ".json"))
			}
		}
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return q.After != "" && id <= q.After })
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// readSummary reads the summary of release id from its head.
func (f *File) readSummary(id string) (Summary, error) {
	hf, err := f.readHeadFile(id)
	if err != nil {
		return Summary{}, err
	}
	p := f.headPath(id)
	var h headSummary
	if err := json.Unmarshal(hf.head, &h); err != nil {
		return Summary{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
	}
	if h.ID != id {
		return Summary{}, fmt.Errorf("%w: %s holds id %q", ErrCorrupt, p, h.ID)
	}
	return Summary{
		ID: id, Service: h.Release.Service, Environment: h.Release.Environment, Version: h.Release.Version,
		Status: h.Status, Phase: h.Phase, Next: h.Next, Holder: h.Holder, LeaseUntil: h.LeaseUntil,
		Created: h.Created, Updated: h.Updated, Waiting: h.Waiting,
	}, nil
}
