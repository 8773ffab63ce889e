// template.go owns --notification-template: a parser and executor for a subset of Go's
// text/template syntax. It exists because importing text/template makes the linker keep every
// exported method of every type (it calls methods by name through reflect), which pushes the
// static binary past its size budget. This engine reads struct fields and map keys only (never
// reflect's Method or MethodByName, which would bring the bloat back) and knows a fixed set of
// functions. Semantics, messages and positions follow text/template so users' templates and
// habits carry over; {{define}}, {{template}}, {{block}}, method calls, complex numbers and
// ranging over channels or functions are not supported.
package main

import (
	"fmt"
	"strings"
)

// textTemplate is a parsed template in a subset of Go's text/template syntax.
type textTemplate struct {
	name string
	text string
	root []tmplNode
}

// parseTemplate parses text; errors say where (line:col) and what, like text/template's.
func parseTemplate(name, text string) (t *textTemplate, err error) {
	p := &tmplParser{name: name, text: text, toks: lexTemplate(text), vars: []string{"$"}}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(templateError)
			if !ok {
				panic(r)
			}
			t, err = nil, e
		}
	}()
	return &textTemplate{name: name, text: text, root: p.parse()}, nil
}

// templateError is a parse or execution error, already carrying its position.
type templateError struct{ msg string }

func (e templateError) Error() string { return e.msg }

// tmplPosition renders a byte offset as line:col the way text/template's ErrorContext does: the
// line counts from 1, the column is the byte offset within the line.
func tmplPosition(text string, pos int) string {
	before := text[:pos]
	line := 1 + strings.Count(before, "\n")
	col := pos - (strings.LastIndex(before, "\n") + 1)
	return fmt.Sprintf("%d:%d", line, col)
}
