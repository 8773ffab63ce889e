// template_test.go checks the notification template engine against Go's own text/template:
// the same template and data must print the same text. Only the test imports text/template,
// so the comparison costs the binary nothing.
package main

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"
	"time"
)

// goFuncs gives text/template outpost's own functions, so both engines see the same names.
var tmplGoFuncs = template.FuncMap{"upper": strings.ToUpper, "lower": strings.ToLower, "join": strings.Join, "short": func(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(len(id), 12)]
}}

func runTextTemplate(text string, data any) (string, error) {
	t, err := template.New("t").Funcs(tmplGoFuncs).Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	err = t.Execute(&b, data)
	return b.String(), err
}

func runTmpl(text string, data any) (string, error) {
	t, err := parseTemplate("t", text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	err = t.execute(&b, data)
	return b.String(), err
}

var tmplReport = sessionReport{
	Host:     "nas",
	Started:  time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC),
	Duration: 1500 * time.Millisecond,
	Scanned:  3, Fresh: 1, Updated: 1, Failed: 1,
	Containers: []containerReport{
		{Name: "web", Image: "nginx:1.27", State: "updated", Current: "sha256:0123456789abcdef0123", OldImage: "sha256:aaaabbbbccccdddd", NewImage: "sha256:eeeeffff00001111"},
		{Name: "db", Image: "postgres:17", State: "failed", Reason: "pull: manifest unknown"},
		{Name: "cache", Image: "redis:7", State: "fresh"},
	},
}

type tmplInner struct {
	Name string
	Tags []string
	N    int
}

// tmplSample has every kind of value a template meets and no methods, so anything
// text/template runs on it (the fuzz test's condition) must run here too.
type tmplSample struct {
	Str    string
	Empty  string
	Int    int
	Neg    int
	Uint   uint
	Float  float64
	True   bool
	False  bool
	Slice  []int
	None   []string
	Strs   []string
	Arr    [3]string
	Map    map[string]int
	IntMap map[int]string
	Any    any
	AnyMap map[string]any
	Ptr    *tmplInner
	NilPtr *tmplInner
	Nested tmplInner
	List   []tmplInner
	HTML   string
	Named  tmplRunState
	hidden int
}

// runState is a named string type: text/template refuses it where a plain string is wanted.
type tmplRunState string

func newTmplSample() tmplSample {
	return tmplSample{
		Str: "hello", Int: 42, Neg: -7, Uint: 7, Float: 2.5, True: true,
		Slice:  []int{3, 1, 2},
		Strs:   []string{"a", "b", "c"},
		Arr:    [3]string{"x", "y", "z"},
		Map:    map[string]int{"b": 2, "a": 1, "c": 3},
		IntMap: map[int]string{10: "ten", 2: "two", -1: "minus"},
		Any:    "boxed",
		AnyMap: map[string]any{"k": 1, "s": "str", "list": []any{1, "two", 3.5}, "m": map[string]any{"deep": true}, "nil": nil},
		Ptr:    &tmplInner{Name: "pointed", Tags: []string{"t1", "t2"}, N: 2},
		Nested: tmplInner{Name: "nested", N: 1},
		List:   []tmplInner{{Name: "one", N: 1}, {Name: "two", N: 2, Tags: []string{"x"}}, {Name: "three", N: 3}},
		HTML:   `<a href="x?a=1&b='2'">`,
		Named:  "running",
		hidden: 1,
	}
}

// sameAsGo is every supported construct; each must print exactly what text/template prints.
var tmplSameAsGo = []struct {
	name, text string
	data       any
}{
	{"watchtower containers", "{{- with .Containers}}{{range .}}{{.Name}} ({{.Image}}): {{.State}}{{if .Reason}} — {{.Reason}}{{end}}{{println}}{{end}}{{else}}no containers{{end -}}", tmplReport},
	{"watchtower no containers", "{{- with .Containers}}{{range .}}{{.Name}}{{end}}{{else}}no containers{{end -}}", sessionReport{Host: "h"}},
	{"watchtower counts", "{{.Updated}} updated, {{.Failed}} failed on {{.Host}}", tmplReport},
	{"watchtower report", `{{- if .Updated -}}{{range .Containers}}{{if eq .State "updated"}}- {{.Name}} {{short .OldImage}} → {{short .NewImage}}
{{end}}{{end}}{{- end -}}`, tmplReport},
	{"duration and time", "{{.Duration}} {{.Started}}", tmplReport},
	{"plain text", "just text, no actions", nil},
	{"empty", "", nil},
	{"dot", "{{.}}", "string data"},
	{"nil data", "{{.}}|{{.X}}", nil},
	{"fields", "{{.Str}} {{.Int}} {{.Neg}} {{.Uint}} {{.Float}} {{.True}} {{.False}} {{.Empty}}|", newTmplSample()},
	{"chain through pointer", "{{.Ptr.Name}} {{.Ptr.Tags}} {{.Nested.Name}}", newTmplSample()},
	{"through pointer data", "{{.Name}}", &tmplInner{Name: "p"}},
	{"collections print", "{{.Slice}} {{.Map}} {{.Arr}} {{.None}} {{.IntMap}} {{.Ptr}} {{.NilPtr}}", newTmplSample()},
	{"map keys", "{{.a}} {{.b}} {{.missing}}", map[string]int{"a": 1, "b": 2}},
	{"any map", "{{.AnyMap.k}} {{.AnyMap.s}} {{.AnyMap.m.deep}} {{.AnyMap.nope}} {{.AnyMap.nil}} {{.Any}}", newTmplSample()},
	{"missing key chain", "{{.AnyMap.nope.deeper}}", newTmplSample()},
	{"trim markers", "a  {{- .Str -}}  b\n{{- \"x\" }} \n {{ 3 -}}\n\t y", newTmplSample()},
	{"trim around comment", "a \n{{- /* gone */ -}}\n b{{/* also gone */}}c", nil},
	{"negative number not trim", "{{-3}} {{- -3 -}} {{+4}}", nil},
	{"literals", "{{\"q\\t\\u00e9\\\"\"}} {{`raw\\n`}} {{1}} {{1.5}} {{1e3}} {{0x1F}} {{0o17}} {{0b101}} {{1_000}} {{'a'}} {{'\\n'}} {{true}} {{false}} {{.5}} {{0x1p3}}", nil},
	{"variables", "{{$x := .Int}}{{$x}} {{$x = 7}}{{$x}} {{$}} {{$.Str}}", newTmplSample()},
	{"variable scope", "{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}{{if true}}{{$x = 3}}{{end}}{{$x}}", nil},
	{"if else", "{{if .True}}T{{else}}F{{end}}{{if .False}}T{{else if .Int}}I{{else}}F{{end}}{{if .Empty}}x{{else if .None}}y{{else}}z{{end}}", newTmplSample()},
	{"if declares", "{{if $v := .Int}}{{$v}}{{end}} {{with $w := .Str}}{{$w}}{{.}}{{end}}", newTmplSample()},
	{"truthiness", "{{if .None}}1{{end}}{{if .Slice}}2{{end}}{{if .Map}}3{{end}}{{if .NilPtr}}4{{end}}{{if .Ptr}}5{{end}}{{if .Nested}}6{{end}}{{if 0}}7{{end}}{{if 0.0}}8{{end}}{{if \"\"}}9{{end}}{{if .Any}}11{{end}}{{if .AnyMap.nil}}12{{end}}", newTmplSample()},
	{"with else", "{{with .Empty}}x{{else}}empty{{end}} {{with .Ptr}}{{.Name}}{{end}} {{with .NilPtr}}x{{else with .Str}}{{.}}{{end}}", newTmplSample()},
	{"range slice", "{{range .Slice}}[{{.}}]{{end}}{{range $i, $e := .Strs}}{{$i}}={{$e}} {{end}}{{range $e := .Strs}}{{$e}}{{end}}", newTmplSample()},
	{"range else", "{{range .None}}x{{else}}none{{end}} {{range .AnyMap.nope}}x{{else}}nil{{end}}", newTmplSample()},
	{"range map sorted", "{{range $k, $v := .Map}}{{$k}}:{{$v}} {{end}}{{range .IntMap}}{{.}} {{end}}{{range $k, $v := .IntMap}}{{$k}} {{end}}", newTmplSample()},
	{"range array", "{{range $i, $e := .Arr}}{{$i}}{{$e}}{{end}}", newTmplSample()},
	{"range int", "{{range 3}}{{.}}{{end}} {{range $i := .Uint}}{{$i}}{{end}} {{range .Neg}}x{{else}}neg{{end}}", newTmplSample()},
	{"range any list", "{{range .AnyMap.list}}<{{.}}>{{end}}", newTmplSample()},
	{"nested range with variables", "{{range $i, $c := .List}}{{$i}}:{{$c.Name}}{{range $j, $t := $c.Tags}}({{$i}}.{{$j}} {{$t}} of {{$c.Name}} in {{$.Str}}){{end}};{{end}}", newTmplSample()},
	{"range assign", "{{$i := 0}}{{$e := 0}}{{range $i, $e = .Slice}}{{end}}{{$i}} {{$e}}", newTmplSample()},
	{"break continue", "{{range .Slice}}{{if eq . 1}}{{continue}}{{end}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}}|{{range $i, $e := .List}}{{if $i}}, {{end}}{{with $e}}{{if eq .N 3}}{{break}}{{end}}{{.Name}}{{end}}{{end}}", newTmplSample()},
	{"pipelines", "{{.Str | printf \"%q\"}} {{.Int | printf \"%d-%s\" \"x\" | len}} {{\"a\" | print \"b\" | upper}}", newTmplSample()},
	{"parens", "{{print (len .Slice) (index .Strs 1) (.Ptr.Name)}} {{(.Ptr).Name}} {{(index .List 1).Tags}}", newTmplSample()},
	{"printf", "{{printf \"%s=%d %5.2f %v %t %x\" .Str .Int .Float .Slice .True \"hi\"}} {{printf \"%v %v\" .NilPtr .AnyMap.nope}}", newTmplSample()},
	{"print println", "{{print 1 2 \"a\" \"b\" 3}}|{{println .Str .Int}}|{{print}}|{{print nil}}|{{print .AnyMap.nope}}", newTmplSample()},
	{"len index slice", "{{len .Slice}} {{len .Map}} {{len .Str}} {{index .Slice 0}} {{index .Map \"b\"}} {{index .Map \"zz\"}} {{index .IntMap 10}} {{index .AnyMap \"list\" 1}} {{slice .Strs 1}} {{slice .Str 1 3}} {{slice .Slice 0 1 2}} {{index .Str 1}}", newTmplSample()},
	{"comparisons", "{{eq .Int 42}} {{eq .Str \"a\" \"hello\"}} {{ne .Int 1}} {{lt .Neg 0}} {{le 2 2}} {{gt .Float 2.0}} {{ge \"b\" \"a\"}} {{eq .Uint 7}} {{lt .Neg .Uint}} {{eq .NilPtr nil}} {{eq .Any \"boxed\"}} {{eq .AnyMap.k 1}}", newTmplSample()},
	{"logic", "{{and 1 0 2}} {{and 1 2}} {{or 0 \"\" .Str}} {{or 0 \"\"}} {{not .True}} {{not .None}} {{and .False (index .Slice 99)}} {{.Str | and 1}} {{0 | or 0}}", newTmplSample()},
	{"escapers", "{{html .HTML}} {{js .HTML}} {{urlquery .HTML \"a b\"}} {{html .NilPtr}} {{js \"\\u2028\\x01é\"}} {{.HTML | html}}", newTmplSample()},
	{"outpost functions", "{{upper .Str}} {{lower \"ABC\"}} {{join .Strs \", \"}} {{short \"sha256:0123456789abcdef\"}} {{short \"abc\"}} {{.Str | upper}} {{join .None \"-\"}}|", newTmplSample()},
	{"multi-line action", "{{if\n.True}}{{print\n.Str\n1}}{{end}}", newTmplSample()},
	{"variable field chain", "{{$p := .Ptr}}{{$p.Name}} {{$p.Tags}} {{with $l := .List}}{{(index $l 0).Name}}{{end}}", newTmplSample()},
	{"decl in parens", "{{print ($x := 5) $x}}", nil},
	{"unicode text", "héllo {{.}} wörld ✓", "ü"},
}

func TestTemplateMatchesTextTemplate(t *testing.T) {
	for _, tc := range tmplSameAsGo {
		t.Run(tc.name, func(t *testing.T) {
			want, err := runTextTemplate(tc.text, tc.data)
			if err != nil {
				t.Fatalf("text/template rejects the case itself: %v", err)
			}
			got, err := runTmpl(tc.text, tc.data)
			if err != nil {
				t.Fatalf("error %v; text/template printed %q", err, want)
			}
			if got != want {
				t.Errorf("printed\n%q\ntext/template printed\n%q", got, want)
			}
		})
	}
}

// TestTemplateErrors checks that mistakes are reported with where and what, and that
// text/template rejects the same templates.
func TestTemplateErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		data       any
		want       string
		goAccepts  bool // the construct is one this engine leaves out on purpose
	}{
		{"unclosed action", "line one\nHello {{.Name", nil, "t:2:6: unclosed action", false},
		{"unclosed action at end", "{{", nil, "t:1:0: unclosed action", false},
		{"unknown function", "{{.X}}\n  {{frobnicate .}}", nil, `t:2:4: function "frobnicate" not defined`, false},
		{"missing field", "x{{.Host}} {{.Nope}}", tmplReport, `t:1:13: executing "t" at <.Nope>: can't evaluate field Nope in type main.sessionReport`, false},
		{"method name", "{{.Changed}}", tmplReport, "can't evaluate field Changed in type main.sessionReport", true},
		{"time method", "{{.Started.Unix}}", tmplReport, "can't evaluate field Unix in type time.Time", true},
		{"missing end", "{{if .X}}\nyes", nil, "t:2:3: unexpected EOF", false},
		{"extra end", "a{{end}}", nil, "t:1:3: unexpected {{end}}", false},
		{"double else", "{{if 1}}{{else}}{{else}}{{end}}", nil, "expected end; found {{else}}", false},
		{"define", "{{define \"x\"}}y{{end}}", nil, "t:1:2: {{define}} is not supported", true},
		{"template", "{{template \"x\"}}", nil, "{{template}} is not supported", false},
		{"block", "{{block \"x\" .}}y{{end}}", nil, "{{block}} is not supported", true},
		{"undefined variable", "{{$x}}", nil, `t:1:2: undefined variable "$x"`, false},
		{"break outside range", "{{break}}", nil, "{{break}} outside {{range}}", false},
		{"unterminated string", "{{\"abc}}", nil, "unterminated quoted string", false},
		{"unclosed paren", "{{(print 1}}", nil, "unclosed left paren", false},
		{"unclosed comment", "{{/* x", nil, "unclosed comment", false},
		{"bad number", "{{3k}}", nil, "bad number syntax", false},
		{"empty pipeline", "{{}}", nil, "missing value for command", false},
		{"non executable", "{{1 | 2}}", nil, "non executable command in pipeline stage 2", false},
		{"field with args", "{{.Name 1}}", tmplInner{}, "Name has arguments but cannot be invoked as function", false},
		{"unexported field", "{{.hidden}}", newTmplSample(), "hidden is an unexported field of struct type main.tmplSample", false},
		{"nil pointer", "{{.NilPtr.Name}}", newTmplSample(), "nil pointer evaluating *main.tmplInner.Name", false},
		{"wrong arg count", "{{len 1 2}}", nil, "wrong number of args for len: want 1 got 2", false},
		{"wrong arg type", "{{upper .Int}}", newTmplSample(), "wrong type for value; expected string; got int", false},
		{"named string type", "{{upper .Named}}", newTmplSample(), "wrong type for value; expected string; got main.tmplRunState", false},
		{"incomparable", "{{eq .Int \"x\"}}", newTmplSample(), "error calling eq: incompatible types for comparison", false},
		{"index out of range", "{{index .Slice 5}}", newTmplSample(), "error calling index: index out of range: 5", false},
		{"slice bound of type any", "{{slice .Str .AnyMap.k}}", newTmplSample(), "error calling slice: cannot index slice/array with type interface {}", false},
		{"range over bool", "{{range true}}{{end}}", nil, "range can't iterate over true", false},
		{"two vars over int", "{{range $i, $e := 3}}{{end}}", nil, "can't use 3 to iterate over more than one variable", false},
		{"complex", "{{1i}}", nil, "complex number 1i is not supported", true},
		{"else if in range", "{{range .}}{{else if 1}}{{end}}", nil, "unexpected <if> in input", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runTmpl(tc.text, tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "template: t:") {
				t.Errorf("error %q does not name the template", err)
			}
			if _, goErr := runTextTemplate(tc.text, tc.data); (goErr == nil) != tc.goAccepts {
				t.Errorf("text/template's error is %v; goAccepts is %v", goErr, tc.goAccepts)
			}
		})
	}
}

// TestTemplateKeepsBinarySmall guards the reason the engine exists: neither Go template package
// nor reflect's method lookup may appear in it, or the linker keeps every exported method again.
// TestTemplateKeepsBinarySmall guards the reason template.go exists: no file of the binary may
// import a template package or call reflect's Method lookups.
func TestTemplateKeepsBinarySmall(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if path := imp.Path.Value; strings.Contains(path, "template") {
				t.Errorf("%s imports %s", name, path)
			}
		}
		usesReflect := false
		for _, imp := range f.Imports {
			usesReflect = usesReflect || imp.Path.Value == `"reflect"`
		}
		if !usesReflect {
			continue // a .Method there is a field such as http.Request.Method
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Method" || sel.Sel.Name == "MethodByName") {
				t.Errorf("%s uses %s", name, sel.Sel.Name)
			}
			return true
		})
	}
}

// tmplGen writes random well-formed templates over tmplSample's fields, so that the engines can
// be compared on far more combinations than a table holds.
type tmplGen struct{ *rand.Rand }

var (
	tmplGenOperands = []string{".Str", ".Int", ".Neg", ".Uint", ".Float", ".True", ".False", ".Slice", ".None",
		".Strs", ".Arr", ".Map", ".Map.a", ".Map.zz", ".IntMap", ".Any", ".AnyMap", ".AnyMap.k", ".AnyMap.list",
		".AnyMap.nope", ".AnyMap.nil", ".Ptr", ".Ptr.Name", ".NilPtr", ".Nested", ".List", ".HTML", ".Named",
		".", "$", "$.Int", "$v", "$v.Name", "$i", "$e", "$e.Name", "(.Ptr).Name", "(index .List 1).Tags",
		"1", "-1", "0", "3", "99", "2.5", "1e2", "0x10", "1_000", "'x'", `"a"`, `""`, "`raw`", `"q\n\""`,
		"true", "false", "nil", "18446744073709551615"}
	tmplGenFuncs = []string{"len", "index", "slice", "print", "printf", "println", "eq", "ne", "lt", "le", "gt",
		"ge", "and", "or", "not", "html", "js", "urlquery", "upper", "lower", "join", "short"}
)

func (g tmplGen) pick(list ...string) string { return list[g.Intn(len(list))] }

func (g tmplGen) operand(depth int) string {
	if depth < 3 && g.Intn(6) == 0 {
		return "(" + g.pipeline(depth+1) + ")"
	}
	return g.pick(tmplGenOperands...)
}

func (g tmplGen) pipeline(depth int) string {
	cmd := []string{g.operand(depth)}
	if g.Intn(3) > 0 {
		cmd = []string{g.pick(tmplGenFuncs...)}
		if cmd[0] == "printf" {
			cmd = append(cmd, g.pick(`"%v"`, `"%d %s"`, `"%q"`))
		}
		for i := g.Intn(4); i > 0; i-- {
			cmd = append(cmd, g.operand(depth))
		}
	}
	s := strings.Join(cmd, " ")
	for g.Intn(3) == 0 {
		s += " | " + g.pick(tmplGenFuncs...)
		if g.Intn(2) == 0 {
			s += " " + g.operand(depth)
		}
	}
	return s
}

func (g tmplGen) list(depth int, inRange bool) string {
	var b strings.Builder
	for i := g.Intn(3) + 1; i > 0; i-- {
		switch k := g.Intn(10); {
		case k < 3:
			b.WriteString(g.pick("x", " ", "\n", "{{- ", " -}}", "{{/* c */}}", " {{- /* c */ -}} ", "{{ ", " }}"))
		case k < 6 || depth > 2:
			b.WriteString("{{" + g.pipeline(0) + "}}")
		case k == 6:
			b.WriteString("{{if " + g.pipeline(0) + "}}" + g.list(depth+1, inRange))
			if g.Intn(2) == 0 {
				b.WriteString("{{else if " + g.pipeline(0) + "}}" + g.list(depth+1, inRange))
			}
			if g.Intn(2) == 0 {
				b.WriteString("{{else}}" + g.list(depth+1, inRange))
			}
			b.WriteString("{{end}}")
		case k == 7:
			b.WriteString("{{with " + g.pipeline(0) + "}}" + g.list(depth+1, inRange))
			if g.Intn(3) == 0 {
				b.WriteString("{{else with " + g.pipeline(0) + "}}" + g.list(depth+1, inRange))
			}
			if g.Intn(2) == 0 {
				b.WriteString("{{else}}" + g.list(depth+1, inRange))
			}
			b.WriteString("{{end}}")
		case k == 8:
			b.WriteString("{{range " + g.pick("", "$i, $e := ", "$e := ", "$i, $v = ") + g.pipeline(0) + "}}" + g.list(depth+1, true))
			if g.Intn(2) == 0 {
				b.WriteString("{{else}}" + g.list(depth+1, inRange))
			}
			b.WriteString("{{end}}")
		case inRange && g.Intn(2) == 0:
			b.WriteString(g.pick("{{break}}", "{{continue}}"))
		default:
			b.WriteString(g.pick("{{$v := ", "{{$v = ", "{{- $i := ") + g.pipeline(0) + g.pick("}}", " -}}"))
		}
	}
	return b.String()
}

func (g tmplGen) template() string {
	return "{{$v := .Ptr}}{{$i := 0}}{{$e := .Nested}}" + g.list(0, false)
}

// TestTemplateRandomAgainstTextTemplate runs random templates through both engines: where
// text/template prints, the engine must print the same; where it fails, the engine must fail.
func TestTemplateRandomAgainstTextTemplate(t *testing.T) {
	g := tmplGen{rand.New(rand.NewSource(1))}
	data := newTmplSample()
	printed := 0
	for range 5000 {
		text := g.template()
		if strings.Count(text, "range") > 2 {
			continue
		}
		want, goErr := runTextTemplate(text, data)
		got, err := runTmpl(text, data)
		switch {
		case goErr != nil && err == nil:
			t.Errorf("%q printed %q; text/template fails: %v", text, got, goErr)
		case goErr == nil && err != nil:
			t.Errorf("%q: %v; text/template printed %q", text, err, want)
		case got != want:
			t.Errorf("%q printed\n%q\ntext/template printed\n%q", text, got, want)
		case goErr == nil:
			printed++
		}
	}
	if printed < 500 {
		t.Errorf("only %d of the random templates ran; the generator has drifted from the data", printed)
	}
}

type tmplFailingWriter struct{}

func (tmplFailingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestTemplateWriteError(t *testing.T) {
	tmpl, err := parseTemplate("t", "text {{.}}")
	if err != nil {
		t.Fatal(err)
	}
	if err := tmpl.execute(tmplFailingWriter{}, 1); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("error %v, want the writer's", err)
	}
}

// tmplCapWriter stops runaway output so that both engines fail the same way on huge loops.
type tmplCapWriter struct{ strings.Builder }

func (w *tmplCapWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > 1<<16 {
		return 0, errors.New("output too long")
	}
	return w.Builder.Write(p)
}

// tmplBigLoop spots templates that could spin for long without writing: a range over a literal
// that may be a large number.
var tmplBigLoop = regexp.MustCompile(`[0-9]{3}|0[xXoObB]|[0-9][eEpP_]`)

func FuzzTemplate(f *testing.F) {
	for _, tc := range tmplSameAsGo {
		f.Add(tc.text)
	}
	for _, seed := range []string{
		"{{.Str}} {{.Int}} {{.Ptr.Name}} {{.AnyMap.m.deep}}", "{{range $i, $e := .List}}{{$i}}{{$e.Name}}{{end}}",
		"{{with .NilPtr}}x{{else}}y{{end}}", "{{if and .True (gt .Int 2)}}ok{{end}}", "{{index .AnyMap \"list\" 1}}",
		"{{- .Str -}}", "{{/* c */}}", "{{printf \"%v\" .}}", "{{range .IntMap}}{{.}}{{end}}", "{{slice .Strs 0 1}}",
		"{{$x := .Int}}{{range .Slice}}{{$x = .}}{{end}}{{$x}}", "{{eq .Uint 7}}", "{{len .Any}}{{index .Any 2}}",
	} {
		f.Add(seed)
	}
	g := tmplGen{rand.New(rand.NewSource(2))}
	for range 50 {
		f.Add(g.template())
	}
	data := newTmplSample()
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(text, "range") && tmplBigLoop.MatchString(text) || strings.Count(text, "range") > 2 {
			return
		}
		var ours tmplCapWriter
		tmpl, parseErr := parseTemplate("t", text)
		execErr := parseErr
		if parseErr == nil {
			execErr = tmpl.execute(&ours, data)
		}
		goTmpl, err := template.New("t").Funcs(tmplGoFuncs).Parse(text)
		if err != nil {
			if execErr == nil {
				t.Fatalf("%q: printed %q; text/template rejects it: %v", text, ours.String(), err)
			}
			return
		}
		var theirs tmplCapWriter
		if err := goTmpl.Execute(&theirs, data); err != nil {
			return
		}
		if execErr != nil {
			if strings.Contains(execErr.Error(), "not supported") || strings.Contains(text, "call") {
				return
			}
			t.Fatalf("%q: error %v; text/template printed %q", text, execErr, theirs.String())
		}
		if ours.String() != theirs.String() {
			t.Fatalf("%q printed\n%q\ntext/template printed\n%q", text, ours.String(), theirs.String())
		}
	})
}
