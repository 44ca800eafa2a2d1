package gate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/deploykit/deploy"
)

// Func adapts a function to a gate; it is [deploy.GateFunc].
type Func = deploy.GateFunc

// Named returns g under name, ticking items of the deployment checklist when
// it passes, in addition to those g ticks itself. It gives a function a place
// in the report:
//
//	gate.Named("migrations-tested", gate.Func(checkMigrations), deploy.ItemMigrationsTested)
//
// The gate returned declares itself a deploy window when g does. An empty
// name or a nil g makes its Check block with an error naming the fault.
func Named(name string, g deploy.Gate, items ...deploy.Item) deploy.Gate {
	return &named{name: name, gate: g, items: slices.Clone(items)}
}

type named struct {
	name  string
	gate  deploy.Gate
	items []deploy.Item
}

var (
	_ deploy.Gate        = (*named)(nil)
	_ deploy.Checklister = (*named)(nil)
)

func (n *named) Name() string { return n.name }

// Validate reports an empty name, a nil gate and empty items.
func (n *named) Validate() error {
	var p problems
	if strings.TrimSpace(n.name) == "" {
		p.add("name %q is empty", n.name)
	}
	if n.gate == nil {
		p.add("gate %q is nil", n.name)
	}
	for i, it := range n.items {
		if it == "" {
			p.add("items[%d] is empty", i)
		}
	}
	return p.err("Named")
}

func (n *named) Check(ctx context.Context, d *deploy.Deployment) error {
	if err := n.Validate(); err != nil {
		return err
	}
	return n.gate.Check(ctx, d)
}

func (n *named) ChecklistItems() []deploy.Item {
	var out []deploy.Item
	if c, ok := n.gate.(deploy.Checklister); ok {
		out = append(out, c.ChecklistItems()...)
	}
	for _, it := range n.items {
		if !slices.Contains(out, it) {
			out = append(out, it)
		}
	}
	return out
}

func (n *named) DeployWindow() bool {
	w, ok := n.gate.(interface{ DeployWindow() bool })
	return ok && w.DeployWindow()
}

// problems collects what Validate finds wrong.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// err returns nil, or an error wrapping deploy.ErrInvalid that names the
// type and lists the problems.
func (p problems) err(typ string) error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w: gate.%s: %s", deploy.ErrInvalid, typ, strings.Join(p, "; "))
}
