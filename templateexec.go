// templateexec.go owns executing a parsed template: walking the tree over data through reflect —
// struct fields and map keys only, never methods, so that the linker keeps its dead-code removal.
package main

import (
	"fmt"
	"io"
	"reflect"
	"sort"
)

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
