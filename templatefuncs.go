// templatefuncs.go owns the fixed functions templates may call (len, index, printf, eq, and,
// join, short…) and the checking of their arguments.
package main

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

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
		out = shortID(a[0].String())
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
