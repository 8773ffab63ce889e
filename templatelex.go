// templatelex.go owns the lexer of template.go's text/template subset: text, actions, comments,
// trim markers, strings, numbers, fields and variables as tokens with positions.
package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

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
