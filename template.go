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
	"io"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
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

// ---- lexing ----

type tmplTokType int

const (
	tokError tmplTokType = iota
	tokEOF
	tokText
	tokLeft
	tokRight
	tokSpace
	tokIdent
	tokKeyword
	tokField
	tokVar
	tokDot
	tokString
	tokRawString
	tokCharConst
	tokNumber
	tokComplex
	tokBool
	tokNil
	tokPipe
	tokLParen
	tokRParen
	tokDeclare
	tokAssign
	tokChar
)

type tmplToken struct {
	typ tmplTokType
	pos int
	val string
}

func (t tmplToken) String() string {
	switch t.typ {
	case tokEOF:
		return "EOF"
	case tokKeyword:
		return "<" + t.val + ">"
	case tokText, tokSpace:
		return strconv.Quote(t.val)
	}
	return fmt.Sprintf("%q", t.val)
}

// tmplLexer cuts a template into tokens; the parser reads them afterwards.
type tmplLexer struct {
	in     string
	pos    int
	parens int
	toks   []tmplToken
}

// lexTemplate cuts text into tokens; it stops at the first error, which becomes a tokError.
func lexTemplate(text string) []tmplToken {
	l := &tmplLexer{in: text}
	for l.lexText() {
	}
	return l.toks
}

func (l *tmplLexer) emit(typ tmplTokType, start int) {
	l.toks = append(l.toks, tmplToken{typ, start, l.in[start:l.pos]})
}

func (l *tmplLexer) fail(start int, format string, args ...any) bool {
	l.toks = append(l.toks, tmplToken{tokError, start, fmt.Sprintf(format, args...)})
	return false
}

func isTmplSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }

func isTmplAlnum(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// atRightDelim reports a closing "}}" at the cursor, and whether it is " -}}".
func (l *tmplLexer) atRightDelim() (delim, trim bool) {
	rest := l.in[l.pos:]
	if len(rest) >= 4 && isTmplSpace(rune(rest[0])) && rest[1] == '-' && rest[2:4] == "}}" {
		return true, true
	}
	return strings.HasPrefix(rest, "}}"), false
}

// closeAction consumes a right delimiter and, for " -}}", the white space after it.
func (l *tmplLexer) closeAction(trim bool) {
	start := l.pos
	if trim {
		l.pos += 2
		start = l.pos
	}
	l.pos += 2
	l.emit(tokRight, start)
	if trim {
		l.pos = len(l.in) - len(strings.TrimLeft(l.in[l.pos:], " \t\r\n"))
	}
}

func (l *tmplLexer) lexText() bool {
	i := strings.Index(l.in[l.pos:], "{{")
	if i < 0 {
		if l.pos < len(l.in) {
			l.toks = append(l.toks, tmplToken{tokText, l.pos, l.in[l.pos:]})
		}
		l.toks = append(l.toks, tmplToken{tokEOF, len(l.in), ""})
		return false
	}
	start := l.pos + i
	after := start + 2
	text := l.in[l.pos:start]
	rest := l.in[after:]
	if len(rest) >= 2 && rest[0] == '-' && isTmplSpace(rune(rest[1])) {
		text = strings.TrimRight(text, " \t\r\n")
		after += 2
	}
	if text != "" {
		l.toks = append(l.toks, tmplToken{tokText, l.pos, text})
	}
	l.pos = after
	if strings.HasPrefix(l.in[after:], "/*") {
		return l.lexComment(start)
	}
	l.toks = append(l.toks, tmplToken{tokLeft, start, "{{"})
	return l.lexAction(start)
}

func (l *tmplLexer) lexComment(start int) bool {
	end := strings.Index(l.in[l.pos+2:], "*/")
	if end < 0 {
		return l.fail(start, "unclosed comment")
	}
	l.pos += 2 + end + 2
	delim, trim := l.atRightDelim()
	if !delim {
		return l.fail(start, "comment ends before closing delimiter")
	}
	if trim {
		l.pos += 2
	}
	l.pos += 2
	if trim {
		l.pos = len(l.in) - len(strings.TrimLeft(l.in[l.pos:], " \t\r\n"))
	}
	return true
}

// lexAction lexes one action; open is the offset of its "{{", where errors about the whole
// action point.
func (l *tmplLexer) lexAction(open int) bool {
	for {
		if delim, trim := l.atRightDelim(); delim {
			if l.parens > 0 {
				return l.fail(open, "unclosed left paren")
			}
			l.closeAction(trim)
			return true
		}
		start := l.pos
		if l.pos >= len(l.in) {
			return l.fail(open, "unclosed action")
		}
		r, size := utf8.DecodeRuneInString(l.in[l.pos:])
		l.pos += size
		ok := true
		switch {
		case isTmplSpace(r):
			l.pos = start
			for l.pos < len(l.in) && isTmplSpace(rune(l.in[l.pos])) {
				if d, _ := l.atRightDelim(); d && l.pos > start {
					break
				}
				l.pos++
			}
			if l.pos > start {
				l.emit(tokSpace, start)
			}
		case r == '=':
			l.emit(tokAssign, start)
		case r == ':':
			if !strings.HasPrefix(l.in[l.pos:], "=") {
				return l.fail(start, "expected :=")
			}
			l.pos++
			l.emit(tokDeclare, start)
		case r == '|':
			l.emit(tokPipe, start)
		case r == '"':
			ok = l.lexQuote(start, '"', tokString, "unterminated quoted string")
		case r == '\'':
			ok = l.lexQuote(start, '\'', tokCharConst, "unterminated character constant")
		case r == '`':
			end := strings.IndexByte(l.in[l.pos:], '`')
			if end < 0 {
				return l.fail(start, "unterminated raw quoted string")
			}
			l.pos += end + 1
			l.emit(tokRawString, start)
		case r == '$':
			ok = l.lexFieldOrVar(start, tokVar)
		case r == '.' && (l.pos >= len(l.in) || l.in[l.pos] < '0' || l.in[l.pos] > '9'):
			ok = l.lexFieldOrVar(start, tokField)
		case r == '.' || r == '+' || r == '-' || ('0' <= r && r <= '9'):
			ok = l.lexNumber(start)
		case isTmplAlnum(r):
			ok = l.lexIdent(start)
		case r == '(':
			l.parens++
			l.emit(tokLParen, start)
		case r == ')':
			l.parens--
			if l.parens < 0 {
				return l.fail(start, "unexpected right paren")
			}
			l.emit(tokRParen, start)
		case r <= unicode.MaxASCII && unicode.IsPrint(r):
			l.emit(tokChar, start)
		default:
			return l.fail(start, "unrecognized character in action: %#U", r)
		}
		if !ok {
			return false
		}
	}
}

func (l *tmplLexer) lexQuote(start int, quote byte, typ tmplTokType, unterminated string) bool {
	for {
		if l.pos >= len(l.in) || l.in[l.pos] == '\n' {
			return l.fail(start, "%s", unterminated)
		}
		c := l.in[l.pos]
		l.pos++
		if c == '\\' {
			if l.pos >= len(l.in) || l.in[l.pos] == '\n' {
				return l.fail(start, "%s", unterminated)
			}
			_, size := utf8.DecodeRuneInString(l.in[l.pos:])
			l.pos += size
		} else if c == quote {
			l.emit(typ, start)
			return true
		}
	}
}

// atTerminator reports whether the cursor may end a word.
func (l *tmplLexer) atTerminator() bool {
	if l.pos >= len(l.in) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(l.in[l.pos:])
	if isTmplSpace(r) || strings.ContainsRune(".,|:()", r) {
		return true
	}
	return strings.HasPrefix(l.in[l.pos:], "}}")
}

func (l *tmplLexer) scanAlphaNumeric() {
	for l.pos < len(l.in) {
		r, size := utf8.DecodeRuneInString(l.in[l.pos:])
		if !isTmplAlnum(r) {
			return
		}
		l.pos += size
	}
}

func (l *tmplLexer) badChar() bool {
	r, _ := utf8.DecodeRuneInString(l.in[l.pos:])
	return l.fail(l.pos, "bad character %#U", r)
}

func (l *tmplLexer) lexFieldOrVar(start int, typ tmplTokType) bool {
	if l.atTerminator() {
		if typ == tokField {
			typ = tokDot
		}
		l.emit(typ, start)
		return true
	}
	l.scanAlphaNumeric()
	if !l.atTerminator() {
		return l.badChar()
	}
	l.emit(typ, start)
	return true
}

func (l *tmplLexer) lexIdent(start int) bool {
	l.scanAlphaNumeric()
	if !l.atTerminator() {
		return l.badChar()
	}
	switch word := l.in[start:l.pos]; {
	case strings.Contains(" block break continue define else end if range template with ", " "+word+" "):
		l.emit(tokKeyword, start)
	case word == "true" || word == "false":
		l.emit(tokBool, start)
	case word == "nil":
		l.emit(tokNil, start)
	default:
		l.emit(tokIdent, start)
	}
	return true
}

func (l *tmplLexer) accept(valid string) bool {
	if l.pos < len(l.in) && strings.IndexByte(valid, l.in[l.pos]) >= 0 {
		l.pos++
		return true
	}
	return false
}

func (l *tmplLexer) acceptRun(valid string) {
	for l.accept(valid) {
	}
}

// scanNumber accepts Go number syntax; the cursor starts at the number's first byte.
func (l *tmplLexer) scanNumber() bool {
	l.accept("+-")
	digits := "0123456789_"
	if l.accept("0") {
		switch {
		case l.accept("xX"):
			digits = "0123456789abcdefABCDEF_"
		case l.accept("oO"):
			digits = "01234567_"
		case l.accept("bB"):
			digits = "01_"
		}
	}
	l.acceptRun(digits)
	if l.accept(".") {
		l.acceptRun(digits)
	}
	if len(digits) == 11 && l.accept("eE") {
		l.accept("+-")
		l.acceptRun("0123456789_")
	}
	if len(digits) == 23 && l.accept("pP") {
		l.accept("+-")
		l.acceptRun("0123456789_")
	}
	l.accept("i")
	if l.pos < len(l.in) {
		if r, size := utf8.DecodeRuneInString(l.in[l.pos:]); isTmplAlnum(r) {
			l.pos += size
			return false
		}
	}
	return true
}

func (l *tmplLexer) lexNumber(start int) bool {
	l.pos = start
	if !l.scanNumber() {
		return l.fail(start, "bad number syntax: %q", l.in[start:l.pos])
	}
	if l.pos < len(l.in) && (l.in[l.pos] == '+' || l.in[l.pos] == '-') {
		if !l.scanNumber() || l.in[l.pos-1] != 'i' {
			return l.fail(start, "bad number syntax: %q", l.in[start:l.pos])
		}
		l.emit(tokComplex, start)
		return true
	}
	l.emit(tokNumber, start)
	return true
}

// ---- parsing ----

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

// ---- execution ----

type tmplVariable struct {
	name  string
	value reflect.Value
}

// tmplState is one execution: the output, the variable stack and the error position.
type tmplState struct {
	t    *textTemplate
	w    io.Writer
	vars []tmplVariable
	at   int
	ctx  string
}

// tmplFlow says how a list ended: normally, or by {{break}} or {{continue}}.
type tmplFlow int

const (
	flowNormal tmplFlow = iota
	flowBreak
	flowContinue
)

// execute renders data (any value; structs, pointers, maps, slices, strings, numbers, bools).
func (t *textTemplate) execute(w io.Writer, data any) (err error) {
	dot := reflect.ValueOf(data)
	s := &tmplState{t: t, w: w, vars: []tmplVariable{{"$", dot}}}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(templateError)
			if !ok {
				panic(r)
			}
			err = e
		}
	}()
	s.walk(dot, t.root)
	return nil
}

func (s *tmplState) errorf(format string, args ...any) {
	panic(templateError{fmt.Sprintf("template: %s:%s: executing %q at <%s>: %s",
		s.t.name, tmplPosition(s.t.text, s.at), s.t.name, s.ctx, fmt.Sprintf(format, args...))})
}

func (s *tmplState) setAt(pos int, ctx string) { s.at, s.ctx = pos, ctx }

func (s *tmplState) walk(dot reflect.Value, list []tmplNode) tmplFlow {
	for i := range list {
		n := &list[i]
		switch n.kind {
		case nodeText:
			if _, err := io.WriteString(s.w, n.text); err != nil {
				s.errorf("write: %v", err)
			}
		case nodeAction:
			v := s.evalPipeline(dot, n.pipe)
			if len(n.pipe.decl) == 0 {
				s.printValue(v)
			}
		case nodeIf, nodeWith:
			if f := s.walkIfOrWith(dot, n); f != flowNormal {
				return f
			}
		case nodeRange:
			s.walkRange(dot, n)
		case nodeBreak:
			return flowBreak
		case nodeContinue:
			return flowContinue
		}
	}
	return flowNormal
}

func (s *tmplState) walkIfOrWith(dot reflect.Value, n *tmplNode) tmplFlow {
	defer s.pop(len(s.vars))
	v := s.evalPipeline(dot, n.pipe)
	truth, ok := tmplIsTrue(tmplIndirectInterface(v))
	if !ok {
		s.errorf("if/with can't use %v", v)
	}
	if truth {
		if n.kind == nodeWith {
			return s.walk(v, n.list)
		}
		return s.walk(dot, n.list)
	}
	return s.walk(dot, n.elseList)
}

func (s *tmplState) walkRange(dot reflect.Value, n *tmplNode) {
	defer s.pop(len(s.vars))
	val, _ := tmplIndirect(s.evalPipeline(dot, n.pipe))
	mark := len(s.vars)
	decl := n.pipe.decl
	// one runs the body once; it reports whether the range should go on.
	one := func(index, elem reflect.Value) bool {
		defer s.pop(mark)
		switch {
		case len(decl) == 1 && n.pipe.isAssign:
			s.setVar(decl[0], elem)
		case len(decl) == 1:
			s.vars[mark-1].value = elem
		case len(decl) == 2 && n.pipe.isAssign:
			s.setVar(decl[0], index)
			s.setVar(decl[1], elem)
		case len(decl) == 2:
			s.vars[mark-1].value = elem
			s.vars[mark-2].value = index
		}
		return s.walk(elem, n.list) != flowBreak
	}
	switch val.Kind() {
	case reflect.Array, reflect.Slice:
		if val.Len() > 0 {
			for i := 0; i < val.Len(); i++ {
				if !one(reflect.ValueOf(i), val.Index(i)) {
					break
				}
			}
			return
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if len(decl) > 1 {
			s.errorf("can't use %v to iterate over more than one variable", val)
		}
		var total uint64
		if !val.CanInt() {
			total = val.Uint()
		} else if val.Int() > 0 {
			total = uint64(val.Int())
		}
		if total > 0 {
			for i := uint64(0); i < total; i++ {
				if !one(reflect.Value{}, reflect.ValueOf(i).Convert(val.Type())) {
					break
				}
			}
			return
		}
	case reflect.Map:
		if val.Len() > 0 {
			for _, k := range sortedMapKeys(val) {
				if !one(k, val.MapIndex(k)) {
					break
				}
			}
			return
		}
	case reflect.Invalid:
		// A nil map or missing key ranges over nothing, as in text/template.
	default:
		s.errorf("range can't iterate over %v (only slices, arrays, maps and integers)", val)
	}
	s.walk(dot, n.elseList)
}

// sortedMapKeys orders map keys as text/template ranges over them: numbers and strings by
// value, NaN first, and anything else (false before true) by its printed form.
func sortedMapKeys(m reflect.Value) []reflect.Value {
	keys := m.MapKeys()
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if c, err := tmplOrder(a, b); err == nil && c != 2 {
			return c < 0
		}
		if tmplBasicKind(a) == basicFloat {
			return a.Float() != a.Float() && b.Float() == b.Float()
		}
		return fmt.Sprint(a.Interface()) < fmt.Sprint(b.Interface())
	})
	return keys
}

func (s *tmplState) pop(mark int) { s.vars = s.vars[:mark] }

func (s *tmplState) setVar(name string, v reflect.Value) {
	for i := len(s.vars) - 1; i >= 0; i-- {
		if s.vars[i].name == name {
			s.vars[i].value = v
			return
		}
	}
	s.errorf("undefined variable: %s", name)
}

func (s *tmplState) varValue(name string) reflect.Value {
	for i := len(s.vars) - 1; i >= 0; i-- {
		if s.vars[i].name == name {
			return s.vars[i].value
		}
	}
	s.errorf("undefined variable: %s", name)
	panic("unreachable")
}

func (s *tmplState) evalPipeline(dot reflect.Value, pipe *tmplPipeline) reflect.Value {
	var v reflect.Value
	for i := range pipe.cmds {
		v = s.evalCommand(dot, &pipe.cmds[i], v, i > 0)
		// Values of type any are unwrapped so later stages see what they hold.
		if v.Kind() == reflect.Interface && v.Type().NumMethod() == 0 {
			v = reflect.ValueOf(v.Interface())
		}
	}
	for _, name := range pipe.decl {
		if pipe.isAssign {
			s.setVar(name, v)
		} else {
			s.vars = append(s.vars, tmplVariable{name, v})
		}
	}
	return v
}

func (s *tmplState) notAFunction(args []tmplOperand, hasFinal bool) {
	if len(args) > 1 || hasFinal {
		s.errorf("can't give argument to non-function %s", args[0].text)
	}
}

func (s *tmplState) evalCommand(dot reflect.Value, cmd *tmplCommand, final reflect.Value, hasFinal bool) reflect.Value {
	first := &cmd.args[0]
	s.setAt(first.pos, first.text)
	switch first.kind {
	case opField:
		return s.evalFields(dot, dot, first.names, cmd.args, final, hasFinal)
	case opChain:
		return s.evalChain(dot, first, cmd.args, final, hasFinal)
	case opFunc:
		return s.evalCall(dot, first, cmd.args[1:], final, hasFinal)
	case opVar:
		return s.evalVariable(dot, first, cmd.args, final, hasFinal)
	}
	s.notAFunction(cmd.args, hasFinal)
	switch first.kind {
	case opPipe:
		return s.evalPipeline(dot, first.pipe)
	case opBool:
		return reflect.ValueOf(first.b)
	case opDot:
		return dot
	case opNil:
		s.errorf("nil is not a command")
	case opNumber:
		return s.idealConstant(first)
	}
	return reflect.ValueOf(first.str)
}

func (s *tmplState) idealConstant(op *tmplOperand) reflect.Value {
	s.setAt(op.pos, op.text)
	switch {
	case op.num.overflow:
		s.errorf("%s overflows int", op.text)
	case op.num.isFloat:
		return reflect.ValueOf(op.num.f)
	}
	return reflect.ValueOf(op.num.i)
}

func (s *tmplState) evalVariable(dot reflect.Value, op *tmplOperand, args []tmplOperand, final reflect.Value, hasFinal bool) reflect.Value {
	s.setAt(op.pos, op.text)
	v := s.varValue(op.names[0])
	if len(op.names) == 1 {
		s.notAFunction(args, hasFinal)
		return v
	}
	return s.evalFields(dot, v, op.names[1:], args, final, hasFinal)
}

func (s *tmplState) evalChain(dot reflect.Value, op *tmplOperand, args []tmplOperand, final reflect.Value, hasFinal bool) reflect.Value {
	if op.inner.kind == opNil {
		s.errorf("indirection through explicit nil in %s", op.text)
	}
	v := s.evalArg(dot, paramNone, op.inner)
	return s.evalFields(dot, v, op.names, args, final, hasFinal)
}

// evalFields walks a .A.B.C chain from receiver; only the last field may see arguments, and
// those are an error since fields are never called.
func (s *tmplState) evalFields(dot, receiver reflect.Value, names []string, args []tmplOperand, final reflect.Value, hasFinal bool) reflect.Value {
	for i, name := range names {
		hasArgs := i == len(names)-1 && (len(args) > 1 || hasFinal)
		receiver = s.evalField(name, receiver, hasArgs)
	}
	return receiver
}

func (s *tmplState) evalField(name string, receiver reflect.Value, hasArgs bool) reflect.Value {
	if !receiver.IsValid() {
		return reflect.Value{}
	}
	typ := receiver.Type()
	receiver, isNil := tmplIndirect(receiver)
	if receiver.Kind() == reflect.Interface && isNil {
		s.errorf("nil pointer evaluating %s.%s", typ, name)
	}
	switch receiver.Kind() {
	case reflect.Struct:
		if f, ok := receiver.Type().FieldByName(name); ok {
			if !f.IsExported() {
				s.errorf("%s is an unexported field of struct type %s", name, typ)
			}
			v, err := receiver.FieldByIndexErr(f.Index)
			if err != nil {
				s.errorf("%v", err)
			}
			if hasArgs {
				s.errorf("%s has arguments but cannot be invoked as function", name)
			}
			return v
		}
	case reflect.Map:
		key := reflect.ValueOf(name)
		if key.Type().AssignableTo(receiver.Type().Key()) {
			if hasArgs {
				s.errorf("%s is not a method but has arguments", name)
			}
			return receiver.MapIndex(key)
		}
	case reflect.Pointer:
		if et := receiver.Type().Elem(); et.Kind() == reflect.Struct {
			if _, ok := et.FieldByName(name); !ok {
				break
			}
		}
		if isNil {
			s.errorf("nil pointer evaluating %s.%s", typ, name)
		}
	}
	s.errorf("can't evaluate field %s in type %s (notification templates read fields and map keys, not methods)", name, typ)
	panic("unreachable")
}

func tmplIndirect(v reflect.Value) (reflect.Value, bool) {
	for ; v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface; v = v.Elem() {
		if v.IsNil() {
			return v, true
		}
	}
	return v, false
}

func tmplIndirectInterface(v reflect.Value) reflect.Value {
	if v.Kind() != reflect.Interface {
		return v
	}
	if v.IsNil() {
		return reflect.Value{}
	}
	return v.Elem()
}

// tmplIsTrue is text/template's truth: zero values and empty collections are false.
func tmplIsTrue(v reflect.Value) (truth, ok bool) {
	if !v.IsValid() {
		return false, true
	}
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() > 0, true
	case reflect.Bool:
		return v.Bool(), true
	case reflect.Complex64, reflect.Complex128:
		return v.Complex() != 0, true
	case reflect.Chan, reflect.Func, reflect.Pointer, reflect.UnsafePointer, reflect.Interface:
		return !v.IsNil(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() != 0, true
	case reflect.Float32, reflect.Float64:
		return v.Float() != 0, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() != 0, true
	case reflect.Struct:
		return true, true
	}
	return false, false
}

// tmplPrintable is what fmt should print for v: the value a pointer points to, <no value>
// for nothing, and the address of a value whose pointer has a String or Error method.
func tmplPrintable(v reflect.Value) (any, bool) {
	if v.Kind() == reflect.Pointer {
		v, _ = tmplIndirect(v)
	}
	if !v.IsValid() {
		return "<no value>", true
	}
	errorType, stringerType := reflect.TypeFor[error](), reflect.TypeFor[fmt.Stringer]()
	if !v.Type().Implements(errorType) && !v.Type().Implements(stringerType) {
		pt := reflect.PointerTo(v.Type())
		if v.CanAddr() && (pt.Implements(errorType) || pt.Implements(stringerType)) {
			v = v.Addr()
		} else if v.Kind() == reflect.Chan || v.Kind() == reflect.Func {
			return nil, false
		}
	}
	return v.Interface(), true
}

func (s *tmplState) printValue(v reflect.Value) {
	x, ok := tmplPrintable(v)
	if !ok {
		s.errorf("can't print %s of type %s", s.ctx, v.Type())
	}
	if _, err := fmt.Fprint(s.w, x); err != nil {
		s.errorf("write: %v", err)
	}
}

// ---- function calls ----

// tmplParam is how a function wants an argument: as the raw value, as any, or converted to a
// string or []string the way text/template converts arguments to a Go function's parameters.
type tmplParam int

const (
	paramNone tmplParam = iota // the receiver of a (pipeline).Field chain
	paramRaw
	paramAny
	paramString
	paramStrings
)

type tmplBuiltin struct {
	name     string
	params   []tmplParam // with variadic, the last one applies to all remaining arguments
	variadic bool
}

// tmplFuncs is the fixed function set: text/template's, less call, plus outpost's own. It is a
// table and one switch rather than a map of closures because that costs the binary less.
var tmplFuncs = [...]tmplBuiltin{
	{"and", []tmplParam{paramRaw, paramRaw}, true},
	{"or", []tmplParam{paramRaw, paramRaw}, true},
	{"not", []tmplParam{paramRaw}, false},
	{"len", []tmplParam{paramRaw}, false},
	{"index", []tmplParam{paramRaw, paramRaw}, true},
	{"slice", []tmplParam{paramRaw, paramRaw}, true},
	{"print", []tmplParam{paramAny}, true},
	{"println", []tmplParam{paramAny}, true},
	{"printf", []tmplParam{paramString, paramAny}, true},
	{"html", []tmplParam{paramAny}, true},
	{"js", []tmplParam{paramAny}, true},
	{"urlquery", []tmplParam{paramAny}, true},
	{"eq", []tmplParam{paramRaw, paramRaw}, true},
	{"ne", []tmplParam{paramRaw, paramRaw}, false},
	{"lt", []tmplParam{paramRaw, paramRaw}, false},
	{"le", []tmplParam{paramRaw, paramRaw}, false},
	{"gt", []tmplParam{paramRaw, paramRaw}, false},
	{"ge", []tmplParam{paramRaw, paramRaw}, false},
	{"upper", []tmplParam{paramString}, false},
	{"lower", []tmplParam{paramString}, false},
	{"short", []tmplParam{paramString}, false},
	{"join", []tmplParam{paramStrings, paramString}, false},
}

func lookupTmplFunc(name string) (*tmplBuiltin, bool) {
	for i := range tmplFuncs {
		if tmplFuncs[i].name == name {
			return &tmplFuncs[i], true
		}
	}
	return nil, false
}

// callTmplFunc runs a function on arguments already fitted to its parameters.
func callTmplFunc(name string, a []reflect.Value) (reflect.Value, error) {
	var out string
	switch name {
	case "not":
		return reflect.ValueOf(!tmplTruthy(a[0])), nil
	case "len":
		return tmplLen(a[0])
	case "index":
		return tmplIndex(a[0], a[1:])
	case "slice":
		return tmplSlice(a[0], a[1:])
	case "eq", "ne", "lt", "le", "gt", "ge":
		return tmplCompare(name, a)
	case "print":
		out = fmt.Sprint(tmplIfaces(a)...)
	case "println":
		out = fmt.Sprintln(tmplIfaces(a)...)
	case "printf":
		out = fmt.Sprintf(a[0].String(), tmplIfaces(a[1:])...)
	case "html":
		out = strings.NewReplacer("\000", "\uFFFD", `"`, "&#34;", "'", "&#39;", "&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(tmplEscapeArgs(a))
	case "js":
		out = tmplJSEscape(tmplEscapeArgs(a))
	case "urlquery":
		out = url.QueryEscape(tmplEscapeArgs(a))
	case "upper":
		out = strings.ToUpper(a[0].String())
	case "lower":
		out = strings.ToLower(a[0].String())
	case "short":
		// The 12-character form of an image ID or digest, as docker prints them.
		out = strings.TrimPrefix(a[0].String(), "sha256:")
		out = out[:min(len(out), 12)]
	case "join":
		list := make([]string, a[0].Len())
		for i := range list {
			list[i] = a[0].Index(i).String()
		}
		out = strings.Join(list, a[1].String())
	}
	return reflect.ValueOf(out), nil
}

// safeTmplCall turns a panic inside a function (== on values that hold slices, say) into an
// error, as text/template does, so a user's template cannot bring the daemon down.
func safeTmplCall(name string, argv []reflect.Value) (v reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return callTmplFunc(name, argv)
}

// tmplEscapeArgs prints the arguments of html, js and urlquery as text/template does.
func tmplEscapeArgs(a []reflect.Value) string {
	args := tmplIfaces(a)
	if len(args) == 1 {
		if str, ok := args[0].(string); ok {
			return str
		}
	}
	for i, arg := range args {
		if p, ok := tmplPrintable(reflect.ValueOf(arg)); ok {
			args[i] = p
		}
	}
	return fmt.Sprint(args...)
}

func (s *tmplState) evalCall(dot reflect.Value, fnOp *tmplOperand, args []tmplOperand, final reflect.Value, hasFinal bool) reflect.Value {
	name := fnOp.str
	fn, _ := lookupTmplFunc(name)
	numIn, numFixed := len(args), len(args)
	if hasFinal {
		numIn++
	}
	if fn.variadic {
		numFixed = len(fn.params) - 1
		if numIn < numFixed {
			s.errorf("wrong number of args for %s: want at least %d got %d", name, numFixed, len(args))
		}
	} else if numIn != len(fn.params) {
		s.errorf("wrong number of args for %s: want %d got %d", name, len(fn.params), numIn)
	}
	if name == "and" || name == "or" {
		// Short-circuit: later arguments are not evaluated once the answer is known.
		var v reflect.Value
		for i := range args {
			v = s.evalArg(dot, paramRaw, &args[i])
			if tmplTruthy(v) == (name == "or") {
				return v
			}
		}
		if hasFinal {
			v = final
		}
		return v
	}
	argv := make([]reflect.Value, numIn)
	i := 0
	for ; i < numFixed && i < len(args); i++ {
		argv[i] = s.evalArg(dot, fn.params[i], &args[i])
	}
	last := fn.params[len(fn.params)-1]
	for ; i < len(args); i++ {
		argv[i] = s.evalArg(dot, last, &args[i])
	}
	if hasFinal {
		kind := last
		if fn.variadic && numIn-1 < numFixed {
			kind = fn.params[numIn-1]
		}
		argv[i] = s.validateType(final, kind)
	}
	s.setAt(fnOp.pos, fnOp.text)
	v, err := safeTmplCall(name, argv)
	if err != nil {
		s.errorf("error calling %s: %v", name, err)
	}
	return v
}

func (s *tmplState) evalArg(dot reflect.Value, kind tmplParam, op *tmplOperand) reflect.Value {
	s.setAt(op.pos, op.text)
	switch op.kind {
	case opDot:
		return s.validateType(dot, kind)
	case opNil:
		switch kind {
		case paramAny:
			return reflect.Zero(reflect.TypeFor[any]())
		case paramStrings:
			return reflect.Zero(reflect.TypeFor[[]string]())
		case paramString:
			s.errorf("cannot assign nil to string")
		}
		return reflect.Value{}
	case opField:
		return s.validateType(s.evalFields(dot, dot, op.names, nil, reflect.Value{}, false), kind)
	case opVar:
		return s.validateType(s.evalVariable(dot, op, nil, reflect.Value{}, false), kind)
	case opPipe:
		return s.validateType(s.evalPipeline(dot, op.pipe), kind)
	case opFunc:
		return s.validateType(s.evalCall(dot, op, nil, reflect.Value{}, false), kind)
	case opChain:
		return s.validateType(s.evalChain(dot, op, nil, reflect.Value{}, false), kind)
	}
	switch kind {
	case paramString:
		if op.kind == opString {
			return reflect.ValueOf(op.str)
		}
		s.errorf("expected string; found %s", op.text)
	case paramStrings:
		s.errorf("can't handle %s for arg of type []string", op.text)
	}
	switch op.kind {
	case opBool:
		return reflect.ValueOf(op.b)
	case opNumber:
		return s.idealConstant(op)
	}
	return reflect.ValueOf(op.str)
}

// validateType makes v fit a parameter: nothing becomes a typed nil where one exists, and an
// interface or one pointer is looked through for a string or []string.
func (s *tmplState) validateType(v reflect.Value, kind tmplParam) reflect.Value {
	var typ reflect.Type
	switch kind {
	case paramNone, paramRaw:
		return v
	case paramAny:
		if !v.IsValid() {
			return reflect.Zero(reflect.TypeFor[any]())
		}
		return v
	case paramString:
		typ = reflect.TypeFor[string]()
	case paramStrings:
		typ = reflect.TypeFor[[]string]()
	}
	if !v.IsValid() {
		if kind == paramStrings {
			return reflect.Zero(typ)
		}
		s.errorf("invalid value; expected %s", typ)
	}
	if v.Type().AssignableTo(typ) {
		return v
	}
	if v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
		if v.Type().AssignableTo(typ) {
			return v
		}
	}
	if v.Kind() == reflect.Pointer && v.Type().Elem().AssignableTo(typ) {
		if v.IsNil() {
			s.errorf("dereference of nil pointer of type %s", typ)
		}
		return v.Elem()
	}
	s.errorf("wrong type for value; expected %s; got %s", typ, v.Type())
	panic("unreachable")
}

func tmplTruthy(v reflect.Value) bool {
	t, _ := tmplIsTrue(tmplIndirectInterface(v))
	return t
}

func tmplIfaces(args []reflect.Value) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if a.IsValid() {
			out[i] = a.Interface()
		}
	}
	return out
}

func tmplJSEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\' || r == '\'' || r == '"':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '<' || r == '>' || r == '&' || r == '=':
			fmt.Fprintf(&b, `\u%04X`, r)
		case r < ' ':
			fmt.Fprintf(&b, `\u%04X`, r)
		case r >= utf8.RuneSelf && !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func tmplLen(item reflect.Value) (reflect.Value, error) {
	item, isNil := tmplIndirect(item)
	if isNil {
		return reflect.Value{}, fmt.Errorf("len of nil pointer")
	}
	switch item.Kind() {
	case reflect.Array, reflect.Chan, reflect.Map, reflect.Slice, reflect.String:
		return reflect.ValueOf(item.Len()), nil
	case reflect.Invalid:
		return reflect.Value{}, fmt.Errorf("len of nil")
	}
	return reflect.Value{}, fmt.Errorf("len of type %s", item.Type())
}

// tmplIndexArg checks an index or slice bound against limit.
func tmplIndexArg(ix reflect.Value, limit int) (int, error) {
	var x int64
	switch tmplBasicKind(ix) {
	case basicInt:
		x = ix.Int()
	case basicUint:
		x = int64(ix.Uint())
	default:
		if !ix.IsValid() {
			return 0, fmt.Errorf("cannot index slice/array with nil")
		}
		return 0, fmt.Errorf("cannot index slice/array with type %s", ix.Type())
	}
	if x < 0 || int(x) < 0 || int(x) > limit {
		return 0, fmt.Errorf("index out of range: %d", x)
	}
	return int(x), nil
}

func tmplIndex(item reflect.Value, indexes []reflect.Value) (reflect.Value, error) {
	item = tmplIndirectInterface(item)
	if !item.IsValid() {
		return reflect.Value{}, fmt.Errorf("index of untyped nil")
	}
	for _, ix := range indexes {
		ix = tmplIndirectInterface(ix)
		var isNil bool
		if item, isNil = tmplIndirect(item); isNil {
			return reflect.Value{}, fmt.Errorf("index of nil pointer")
		}
		switch item.Kind() {
		case reflect.Array, reflect.Slice, reflect.String:
			x, err := tmplIndexArg(ix, item.Len()-1)
			if err != nil {
				return reflect.Value{}, err
			}
			item = item.Index(x)
		case reflect.Map:
			key, err := tmplMapKey(ix, item.Type().Key())
			if err != nil {
				return reflect.Value{}, err
			}
			if v := item.MapIndex(key); v.IsValid() {
				item = v
			} else {
				item = reflect.Zero(item.Type().Elem())
			}
		default:
			return reflect.Value{}, fmt.Errorf("can't index item of type %s", item.Type())
		}
	}
	return item, nil
}

// tmplMapKey converts an index to a map's key type where Go would allow it.
func tmplMapKey(v reflect.Value, key reflect.Type) (reflect.Value, error) {
	if !v.IsValid() {
		switch key.Kind() {
		case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice:
			return reflect.Zero(key), nil
		}
		return reflect.Value{}, fmt.Errorf("value is nil; should be of type %s", key)
	}
	if v.Type().AssignableTo(key) {
		return v, nil
	}
	isInt := func(k tmplBasic) bool { return k == basicInt || k == basicUint }
	if isInt(tmplBasicKind(v)) && isInt(tmplBasicKind(reflect.Zero(key))) && v.Type().ConvertibleTo(key) {
		return v.Convert(key), nil
	}
	return reflect.Value{}, fmt.Errorf("value has type %s; should be %s", v.Type(), key)
}

func tmplSlice(item reflect.Value, indexes []reflect.Value) (reflect.Value, error) {
	item = tmplIndirectInterface(item)
	if !item.IsValid() {
		return reflect.Value{}, fmt.Errorf("slice of untyped nil")
	}
	item, isNil := tmplIndirect(item)
	if isNil {
		return reflect.Value{}, fmt.Errorf("slice of nil pointer")
	}
	if len(indexes) > 3 {
		return reflect.Value{}, fmt.Errorf("too many slice indexes: %d", len(indexes))
	}
	limit := item.Len()
	switch item.Kind() {
	case reflect.String:
		if len(indexes) == 3 {
			return reflect.Value{}, fmt.Errorf("cannot 3-index slice a string")
		}
	case reflect.Array, reflect.Slice:
		if item.Kind() == reflect.Array && !item.CanAddr() {
			return reflect.Value{}, fmt.Errorf("can't slice unaddressable array of type %s", item.Type())
		}
		limit = item.Cap()
	default:
		return reflect.Value{}, fmt.Errorf("can't slice item of type %s", item.Type())
	}
	idx := [3]int{0, item.Len()}
	for i, ix := range indexes {
		x, err := tmplIndexArg(ix, limit)
		if err != nil {
			return reflect.Value{}, err
		}
		idx[i] = x
	}
	for i := 1; i < len(indexes); i++ {
		if idx[i-1] > idx[i] {
			return reflect.Value{}, fmt.Errorf("invalid slice index: %d > %d", idx[i-1], idx[i])
		}
	}
	if idx[0] > idx[1] {
		return reflect.Value{}, fmt.Errorf("invalid slice index: %d > %d", idx[0], idx[1])
	}
	if len(indexes) < 3 {
		return item.Slice(idx[0], idx[1]), nil
	}
	return item.Slice3(idx[0], idx[1], idx[2]), nil
}

// tmplCompare runs eq (against each later argument) and the other comparisons.
func tmplCompare(op string, a []reflect.Value) (reflect.Value, error) {
	if len(a) == 1 {
		return reflect.Value{}, fmt.Errorf("missing argument for comparison")
	}
	x := tmplIndirectInterface(a[0])
	for _, y := range a[1:] {
		y = tmplIndirectInterface(y)
		var t bool
		var err error
		switch op {
		case "eq", "ne":
			t, err = tmplEq(x, y)
			t = t != (op == "ne")
		case "lt", "ge":
			t, err = tmplLt(x, y)
			t = t != (op == "ge")
		case "le", "gt":
			if t, err = tmplLt(x, y); !t && err == nil {
				t, err = tmplEq(x, y)
			}
			t = t != (op == "gt")
		}
		if err != nil {
			return reflect.Value{}, err
		}
		if t {
			return reflect.ValueOf(true), nil
		}
	}
	return reflect.ValueOf(false), nil
}

type tmplBasic int

const (
	basicInvalid tmplBasic = iota
	basicBool
	basicComplex
	basicInt
	basicFloat
	basicString
	basicUint
)

func tmplBasicKind(v reflect.Value) tmplBasic {
	switch v.Kind() {
	case reflect.Bool:
		return basicBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return basicInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return basicUint
	case reflect.Float32, reflect.Float64:
		return basicFloat
	case reflect.Complex64, reflect.Complex128:
		return basicComplex
	case reflect.String:
		return basicString
	}
	return basicInvalid
}

// tmplOrder compares two basic values: -1, 0 or 1, or 2 when they differ without an order
// (false and true, complex numbers, NaN). Signed and unsigned integers compare by value.
func tmplOrder(a, b reflect.Value) (int, error) {
	ka, kb := tmplBasicKind(a), tmplBasicKind(b)
	switch {
	case ka == basicInt && kb == basicUint:
		if a.Int() < 0 {
			return -1, nil
		}
		return tmplCmp(uint64(a.Int()), b.Uint()), nil
	case ka == basicUint && kb == basicInt:
		if b.Int() < 0 {
			return 1, nil
		}
		return tmplCmp(a.Uint(), uint64(b.Int())), nil
	case ka != kb:
		return 0, fmt.Errorf("incompatible types for comparison: %v and %v", a.Type(), b.Type())
	}
	switch ka {
	case basicInt:
		return tmplCmp(a.Int(), b.Int()), nil
	case basicUint:
		return tmplCmp(a.Uint(), b.Uint()), nil
	case basicFloat:
		return tmplCmp(a.Float(), b.Float()), nil
	case basicString:
		return tmplCmp(a.String(), b.String()), nil
	case basicBool:
		if a.Bool() == b.Bool() {
			return 0, nil
		}
	case basicComplex:
		if a.Complex() == b.Complex() {
			return 0, nil
		}
	}
	return 2, nil
}

func tmplCmp[T int64 | uint64 | float64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	case a == b:
		return 0
	}
	return 2
}

func isTmplNil(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Invalid:
		return true
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice:
		return v.IsNil()
	}
	return false
}

// tmplEq compares like text/template: basic kinds by value, other comparable values with ==,
// and anything against nil.
func tmplEq(a, b reflect.Value) (bool, error) {
	ka, kb := tmplBasicKind(a), tmplBasicKind(b)
	switch {
	case ka != basicInvalid && kb != basicInvalid:
		c, err := tmplOrder(a, b)
		return c == 0, err
	case ka != kb || a.Kind() != b.Kind():
		if a.IsValid() && b.IsValid() {
			return false, fmt.Errorf("incompatible types for comparison: %v and %v", a.Type(), b.Type())
		}
	}
	if isTmplNil(a) || isTmplNil(b) {
		return isTmplNil(a) == isTmplNil(b), nil
	}
	if !b.Type().Comparable() {
		return false, fmt.Errorf("non-comparable type %s: %v", b, b.Type())
	}
	return a.Interface() == b.Interface(), nil
}

func tmplLt(a, b reflect.Value) (bool, error) {
	if tmplBasicKind(a) == basicInvalid || tmplBasicKind(b) == basicInvalid {
		return false, fmt.Errorf("invalid type for comparison")
	}
	c, err := tmplOrder(a, b)
	if err == nil && (tmplBasicKind(a) == basicBool || tmplBasicKind(a) == basicComplex) {
		err = fmt.Errorf("invalid type for comparison")
	}
	return c == -1, err
}
