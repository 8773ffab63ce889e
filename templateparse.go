// templateparse.go owns the parser of template.go's text/template subset: the node tree of text,
// actions, if/range/with blocks, pipelines, commands and operands.
package main

import (
	"fmt"
	"strconv"
	"strings"
)

type tmplNodeKind int

const (
	nodeText tmplNodeKind = iota
	nodeAction
	nodeIf
	nodeWith
	nodeRange
	nodeBreak
	nodeContinue
	nodeElse // transient: ends a list
	nodeEnd  // transient: ends a list
)

// tmplNode is one element of a list: text, an action or a control structure.
type tmplNode struct {
	kind     tmplNodeKind
	pos      int
	text     string
	pipe     *tmplPipeline
	list     []tmplNode
	elseList []tmplNode
	elseOf   string // for nodeElse: "if" or "with" when it reads {{else if}} or {{else with}}
}

// tmplPipeline is a declaration or assignment plus commands joined by '|'.
type tmplPipeline struct {
	pos      int
	decl     []string
	isAssign bool
	cmds     []tmplCommand
}

type tmplCommand struct {
	pos  int
	args []tmplOperand
}

type tmplOpKind int

const (
	opDot tmplOpKind = iota
	opNil
	opBool
	opNumber
	opString
	opField
	opVar
	opFunc
	opPipe
	opChain
)

// tmplOperand is one word of a command.
type tmplOperand struct {
	kind  tmplOpKind
	pos   int
	text  string      // source form, for messages
	str   string      // opString: the value; opFunc: the name
	b     bool        // opBool
	num   *tmplNumber // opNumber
	names []string    // opField: the fields; opVar: the variable then its fields; opChain: the fields
	pipe  *tmplPipeline
	inner *tmplOperand // opChain: the term whose fields are taken
}

// tmplNumber is a numeric or character literal, typed as text/template types untyped constants.
type tmplNumber struct {
	isFloat  bool
	overflow bool // fits only in uint64
	i        int
	f        float64
}

type tmplParser struct {
	name       string
	text       string
	toks       []tmplToken
	p          int
	vars       []string
	rangeDepth int
}

func (p *tmplParser) errorf(pos int, format string, args ...any) {
	panic(templateError{fmt.Sprintf("template: %s:%s: %s", p.name, tmplPosition(p.text, pos), fmt.Sprintf(format, args...))})
}

func (p *tmplParser) next() tmplToken {
	t := p.toks[p.p]
	if t.typ == tokError {
		p.errorf(t.pos, "%s", t.val)
	}
	if t.typ != tokEOF {
		p.p++
	}
	return t
}

func (p *tmplParser) peek() tmplToken {
	t := p.next()
	p.backup(t)
	return t
}

func (p *tmplParser) backup(t tmplToken) {
	if t.typ != tokEOF {
		p.p--
	}
}

func (p *tmplParser) nextNonSpace() tmplToken {
	for {
		if t := p.next(); t.typ != tokSpace {
			return t
		}
	}
}

func (p *tmplParser) peekNonSpace() tmplToken {
	t := p.nextNonSpace()
	p.backup(t)
	return t
}

func (p *tmplParser) unexpected(t tmplToken, context string) {
	p.errorf(t.pos, "unexpected %s in %s", t, context)
}

func (p *tmplParser) expect(typ tmplTokType, context string) tmplToken {
	t := p.nextNonSpace()
	if t.typ != typ {
		p.unexpected(t, context)
	}
	return t
}

func (p *tmplParser) parse() []tmplNode {
	var list []tmplNode
	for p.peek().typ != tokEOF {
		n := p.textOrAction()
		switch n.kind {
		case nodeEnd:
			p.errorf(n.pos, "unexpected {{end}}")
		case nodeElse:
			p.errorf(n.pos, "unexpected {{else}}")
		}
		list = append(list, n)
	}
	return list
}

// itemList parses until {{end}} or {{else}}, which it returns.
func (p *tmplParser) itemList() ([]tmplNode, tmplNode) {
	var list []tmplNode
	for p.peekNonSpace().typ != tokEOF {
		n := p.textOrAction()
		if n.kind == nodeEnd || n.kind == nodeElse {
			return list, n
		}
		list = append(list, n)
	}
	p.errorf(len(p.text), "unexpected EOF")
	panic("unreachable")
}

func (p *tmplParser) textOrAction() tmplNode {
	switch t := p.nextNonSpace(); t.typ {
	case tokText:
		return tmplNode{kind: nodeText, pos: t.pos, text: t.val}
	case tokLeft:
		return p.action()
	default:
		p.unexpected(t, "input")
	}
	panic("unreachable")
}

func (p *tmplParser) action() tmplNode {
	t := p.nextNonSpace()
	if t.typ == tokKeyword {
		switch t.val {
		case "define", "template", "block":
			p.errorf(t.pos, "{{%s}} is not supported in notification templates", t.val)
		case "break", "continue":
			if p.rangeDepth == 0 {
				p.errorf(t.pos, "{{%s}} outside {{range}}", t.val)
			}
			if n := p.nextNonSpace(); n.typ != tokRight {
				p.errorf(n.pos, "unexpected %s in {{%s}}", n, t.val)
			}
			if t.val == "break" {
				return tmplNode{kind: nodeBreak, pos: t.pos}
			}
			return tmplNode{kind: nodeContinue, pos: t.pos}
		case "else":
			if n := p.peekNonSpace(); n.typ == tokKeyword && (n.val == "if" || n.val == "with") {
				return tmplNode{kind: nodeElse, pos: n.pos, elseOf: n.val}
			}
			p.expect(tokRight, "else")
			return tmplNode{kind: nodeElse, pos: t.pos}
		case "end":
			p.expect(tokRight, "end")
			return tmplNode{kind: nodeEnd, pos: t.pos}
		case "if":
			return p.control(nodeIf, "if")
		case "with":
			return p.control(nodeWith, "with")
		case "range":
			return p.control(nodeRange, "range")
		}
	}
	p.backup(t)
	pipe := p.pipeline("command", tokRight)
	return tmplNode{kind: nodeAction, pos: pipe.pos, pipe: pipe}
}

// control parses if, with and range; variables it declares live until its {{end}}.
func (p *tmplParser) control(kind tmplNodeKind, context string) tmplNode {
	defer func(n int) { p.vars = p.vars[:n] }(len(p.vars))
	n := tmplNode{kind: kind, pos: p.peekNonSpace().pos}
	n.pipe = p.pipeline(context, tokRight)
	if kind == nodeRange {
		p.rangeDepth++
	}
	var next tmplNode
	n.list, next = p.itemList()
	if kind == nodeRange {
		p.rangeDepth--
	}
	if next.kind == nodeElse {
		if next.elseOf != "" && next.elseOf == context {
			p.next()
			n.elseList = []tmplNode{p.control(kind, context)}
		} else {
			if next.elseOf != "" {
				p.unexpected(p.nextNonSpace(), "input")
			}
			n.elseList, next = p.itemList()
			if next.kind != nodeEnd {
				p.errorf(next.pos, "expected end; found {{else}}")
			}
		}
	}
	return n
}

func (p *tmplParser) pipeline(context string, end tmplTokType) *tmplPipeline {
	pipe := &tmplPipeline{pos: p.peekNonSpace().pos}
decls:
	if v := p.peekNonSpace(); v.typ == tokVar {
		mark := p.p
		p.next()
		next := p.peekNonSpace()
		switch {
		case next.typ == tokAssign || next.typ == tokDeclare:
			pipe.isAssign = next.typ == tokAssign
			p.nextNonSpace()
			pipe.decl = append(pipe.decl, v.val)
			p.vars = append(p.vars, v.val)
		case next.typ == tokChar && next.val == ",":
			p.nextNonSpace()
			pipe.decl = append(pipe.decl, v.val)
			p.vars = append(p.vars, v.val)
			if context == "range" && len(pipe.decl) < 2 {
				switch p.peekNonSpace().typ {
				case tokVar, tokRight, tokRParen:
					goto decls
				default:
					p.errorf(next.pos, "range can only initialize variables")
				}
			}
			p.errorf(next.pos, "too many declarations in %s", context)
		default:
			p.p = mark
		}
	}
	for {
		switch t := p.nextNonSpace(); t.typ {
		case end:
			p.checkPipeline(pipe, context, t.pos)
			return pipe
		case tokBool, tokCharConst, tokComplex, tokDot, tokField, tokIdent, tokNumber, tokNil,
			tokRawString, tokString, tokVar, tokLParen:
			p.backup(t)
			pipe.cmds = append(pipe.cmds, p.command())
		default:
			p.unexpected(t, context)
		}
	}
}

func (p *tmplParser) checkPipeline(pipe *tmplPipeline, context string, pos int) {
	if len(pipe.cmds) == 0 {
		p.errorf(pos, "missing value for %s", context)
	}
	for i, c := range pipe.cmds[1:] {
		switch c.args[0].kind {
		case opBool, opDot, opNil, opNumber, opString:
			p.errorf(c.pos, "non executable command in pipeline stage %d", i+2)
		}
	}
}

func (p *tmplParser) command() tmplCommand {
	cmd := tmplCommand{pos: p.peekNonSpace().pos}
	for {
		p.peekNonSpace()
		if op := p.operand(); op != nil {
			cmd.args = append(cmd.args, *op)
		}
		t := p.next()
		if t.typ == tokSpace {
			continue
		}
		switch t.typ {
		case tokRight, tokRParen:
			p.backup(t)
		case tokPipe:
		default:
			p.unexpected(t, "operand")
		}
		break
	}
	if len(cmd.args) == 0 {
		p.errorf(cmd.pos, "empty command")
	}
	return cmd
}

// operand parses a term and the .Field chain glued to it.
func (p *tmplParser) operand() *tmplOperand {
	op := p.term()
	if op == nil || p.peek().typ != tokField {
		return op
	}
	var fields []string
	for p.peek().typ == tokField {
		fields = append(fields, p.next().val[1:])
	}
	switch op.kind {
	case opField, opVar:
		op.names = append(op.names, fields...)
		op.text += "." + strings.Join(fields, ".")
		return op
	case opBool, opString, opNumber, opNil, opDot:
		p.errorf(op.pos, "unexpected . after term %q", op.text)
	}
	return &tmplOperand{kind: opChain, pos: op.pos, text: op.text + "." + strings.Join(fields, "."), names: fields, inner: op}
}

func (p *tmplParser) term() *tmplOperand {
	t := p.nextNonSpace()
	op := &tmplOperand{pos: t.pos, text: t.val}
	switch t.typ {
	case tokIdent:
		if _, ok := lookupTmplFunc(t.val); !ok {
			p.errorf(t.pos, "function %q not defined", t.val)
		}
		op.kind, op.str = opFunc, t.val
	case tokDot:
		op.kind = opDot
	case tokNil:
		op.kind = opNil
	case tokVar:
		if !p.declared(t.val) {
			p.errorf(t.pos, "undefined variable %q", t.val)
		}
		op.kind, op.names = opVar, []string{t.val}
	case tokField:
		op.kind, op.names = opField, []string{t.val[1:]}
	case tokBool:
		op.kind, op.b = opBool, t.val == "true"
	case tokCharConst, tokNumber:
		if t.typ == tokNumber && strings.HasSuffix(t.val, "i") {
			p.errorf(t.pos, "complex number %s is not supported in notification templates", t.val)
		}
		n, err := parseTmplNumber(t.val, t.typ == tokCharConst)
		if err != nil {
			p.errorf(t.pos, "%v", err)
		}
		op.kind, op.num = opNumber, n
	case tokComplex:
		p.errorf(t.pos, "complex number %s is not supported in notification templates", t.val)
	case tokLParen:
		op.kind, op.pipe = opPipe, p.pipeline("parenthesized pipeline", tokRParen)
		op.text = "(" + p.text[t.pos+1:p.toks[p.p-1].pos] + ")"
	case tokString, tokRawString:
		s, err := strconv.Unquote(t.val)
		if err != nil {
			p.errorf(t.pos, "%v", err)
		}
		op.kind, op.str = opString, s
	default:
		p.backup(t)
		return nil
	}
	return op
}

func (p *tmplParser) declared(name string) bool {
	for _, v := range p.vars {
		if v == name {
			return true
		}
	}
	return false
}

// parseTmplNumber types a literal as text/template does: an int when it is integral and not
// written as a float, else a float64.
func parseTmplNumber(text string, isChar bool) (*tmplNumber, error) {
	if isChar {
		r, _, tail, err := strconv.UnquoteChar(text[1:], text[0])
		if err != nil {
			return nil, err
		}
		if tail != "'" {
			return nil, fmt.Errorf("malformed character constant: %s", text)
		}
		return &tmplNumber{i: int(r)}, nil
	}
	isHexInt := len(text) > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X') && !strings.ContainsAny(text, "pP")
	if i, err := strconv.ParseInt(text, 0, 64); err == nil {
		return &tmplNumber{i: int(i)}, nil
	}
	if _, err := strconv.ParseUint(text, 0, 64); err == nil {
		return &tmplNumber{overflow: true}, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return nil, fmt.Errorf("illegal number syntax: %q", text)
	}
	if !strings.ContainsAny(text, ".eEpP") || isHexInt {
		return nil, fmt.Errorf("integer overflow: %q", text)
	}
	return &tmplNumber{isFloat: true, f: f}, nil
}
