// Package tmplesc makes a text/template escape everything it prints, as
// html/template does for HTML: it appends a named escaping function to the
// pipeline of every action that prints. The PromQL templates of
// monitor/prometheus and the URL templates of monitor.Probe use it, each
// with its own escaper, so that a release field cannot change the structure
// of the text it is put in.
package tmplesc

import (
	"text/template"
	"text/template/parse"
)

// Pipe appends the function fn, which the template must know (Funcs), to
// every printing action of t and of the templates it defines. Call it after
// Parse and before Execute.
func Pipe(t *template.Template, fn string) {
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			list(tt.Tree, tt.Tree.Root, fn)
		}
	}
}

func list(tree *parse.Tree, l *parse.ListNode, fn string) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.ActionNode:
			if len(n.Pipe.Decl) > 0 {
				continue // {{$x := …}} prints nothing
			}
			n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{
				NodeType: parse.NodeCommand, Pos: n.Pos,
				Args: []parse.Node{parse.NewIdentifier(fn).SetTree(tree).SetPos(n.Pos)},
			})
		case *parse.IfNode:
			list(tree, n.List, fn)
			list(tree, n.ElseList, fn)
		case *parse.RangeNode:
			list(tree, n.List, fn)
			list(tree, n.ElseList, fn)
		case *parse.WithNode:
			list(tree, n.List, fn)
			list(tree, n.ElseList, fn)
		case *parse.ListNode:
			list(tree, n, fn)
		}
	}
}
