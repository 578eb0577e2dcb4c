package stack

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// evaluator resolves the intrinsic functions of template values as
// CloudFormation would for one set of parameters, so that a test can
// compare what the stack deploys with what the code does. A Ref to a
// resource becomes "<Name>", and a Fn::GetAtt "<Name.Attr>": stand-ins
// that compare equal where the values would.
type evaluator struct {
	params     map[string]string
	conditions map[string]any
	resources  map[string]bool
}

// Pseudo parameters the evaluator gives.
var pseudo = map[string]string{
	"AWS::StackName": "broadsheet-prod",
	"AWS::Region":    "eu-west-1",
	"AWS::AccountId": "123456789012",
	"AWS::Partition": "aws",
	"AWS::URLSuffix": "amazonaws.com",
}

// deployParams are values for the parameters that have no default, as an
// operator would give them to `sam deploy`.
var deployParams = map[string]string{
	"FromAddress":   "news@news.example.com",
	"PostalAddress": "1 Marina Road, Lagos",
}

// newEvaluator returns an evaluator of template.yaml with its parameters'
// defaults and deployParams, overridden by params.
func newEvaluator(t *testing.T, params map[string]string) *evaluator {
	t.Helper()
	var tpl struct {
		Parameters map[string]struct {
			Default        any
			AllowedPattern string
		}
		Conditions map[string]any
		Resources  map[string]json.RawMessage
	}
	if err := json.Unmarshal(templateJSON(t), &tpl); err != nil {
		t.Fatal(err)
	}
	e := &evaluator{params: map[string]string{}, conditions: tpl.Conditions, resources: map[string]bool{}}
	for name, p := range tpl.Parameters {
		if p.Default != nil {
			e.params[name] = fmt.Sprint(p.Default)
		}
	}
	for k, v := range deployParams {
		if _, ok := tpl.Parameters[k]; ok {
			e.params[k] = v
		}
	}
	for k, v := range params {
		if _, ok := tpl.Parameters[k]; !ok {
			t.Fatalf("template.yaml has no parameter %s", k)
		}
		e.params[k] = v
	}
	for name := range tpl.Resources {
		e.resources[name] = true
	}
	for name, p := range tpl.Parameters {
		if p.AllowedPattern == "" {
			continue
		}
		// CloudFormation matches the whole value (Java's String.matches).
		re, err := regexp.Compile(`^(?:` + p.AllowedPattern + `)$`)
		if err != nil {
			t.Fatalf("parameter %s: AllowedPattern: %v", name, err)
		}
		if v, ok := e.params[name]; ok && !re.MatchString(v) {
			t.Fatalf("parameter %s: CloudFormation would refuse %q (AllowedPattern %s)", name, v, p.AllowedPattern)
		}
	}
	return e
}

// allowed reports whether CloudFormation would take value for the
// parameter, by its AllowedPattern.
func allowed(t *testing.T, param, value string) bool {
	t.Helper()
	var tpl struct {
		Parameters map[string]struct{ AllowedPattern string }
	}
	if err := json.Unmarshal(templateJSON(t), &tpl); err != nil {
		t.Fatal(err)
	}
	p, ok := tpl.Parameters[param]
	if !ok {
		t.Fatalf("no parameter %s", param)
	}
	return p.AllowedPattern == "" || regexp.MustCompile(`^(?:`+p.AllowedPattern+`)$`).MatchString(value)
}

// value resolves v.
func (e *evaluator) value(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for fn, arg := range x {
				if fn == "Ref" || fn == "Condition" || strings.HasPrefix(fn, "Fn::") {
					return e.call(fn, arg)
				}
			}
		}
		out := map[string]any{}
		for k, val := range x {
			r, err := e.value(val)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			r, err := e.value(val)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// str resolves v to a string.
func (e *evaluator) str(v any) (string, error) {
	r, err := e.value(v)
	if err != nil {
		return "", err
	}
	switch s := r.(type) {
	case string:
		return s, nil
	case float64, bool:
		return fmt.Sprint(s), nil
	}
	return "", fmt.Errorf("%v is not a string", r)
}

func (e *evaluator) ref(name string) (string, error) {
	if v, ok := pseudo[name]; ok {
		return v, nil
	}
	if v, ok := e.params[name]; ok {
		return v, nil
	}
	if e.resources[name] {
		return "<" + name + ">", nil
	}
	return "", fmt.Errorf("Ref %s: no such parameter or resource", name)
}

func (e *evaluator) condition(name string) (bool, error) {
	c, ok := e.conditions[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	r, err := e.value(c)
	if err != nil {
		return false, err
	}
	b, ok := r.(bool)
	if !ok {
		return false, fmt.Errorf("condition %s is %v", name, r)
	}
	return b, nil
}

func (e *evaluator) call(fn string, arg any) (any, error) {
	args, _ := arg.([]any)
	switch fn {
	case "Ref":
		return e.ref(arg.(string))
	case "Condition":
		return e.condition(arg.(string))
	case "Fn::GetAtt":
		name := getAttResource(arg)
		attr := ""
		if s, ok := arg.(string); ok {
			_, attr, _ = strings.Cut(s, ".")
		} else if len(args) == 2 {
			attr, _ = args[1].(string)
		}
		return "<" + name + "." + attr + ">", nil
	case "Fn::If":
		if len(args) != 3 {
			return nil, fmt.Errorf("Fn::If %v", arg)
		}
		ok, err := e.condition(args[0].(string))
		if err != nil {
			return nil, err
		}
		if ok {
			return e.value(args[1])
		}
		return e.value(args[2])
	case "Fn::Equals":
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::Equals %v", arg)
		}
		a, err := e.str(args[0])
		if err != nil {
			return nil, err
		}
		b, err := e.str(args[1])
		if err != nil {
			return nil, err
		}
		return a == b, nil
	case "Fn::Not", "Fn::And", "Fn::Or":
		var bs []bool
		for _, a := range args {
			r, err := e.value(a)
			if err != nil {
				return nil, err
			}
			b, ok := r.(bool)
			if !ok {
				return nil, fmt.Errorf("%s of %v", fn, r)
			}
			bs = append(bs, b)
		}
		switch fn {
		case "Fn::Not":
			return len(bs) == 1 && !bs[0], nil
		case "Fn::And":
			for _, b := range bs {
				if !b {
					return false, nil
				}
			}
			return true, nil
		}
		for _, b := range bs {
			if b {
				return true, nil
			}
		}
		return false, nil
	case "Fn::Sub":
		s, _ := arg.(string)
		vars := map[string]string{}
		if len(args) == 2 {
			s, _ = args[0].(string)
			m, _ := args[1].(map[string]any)
			for k, v := range m {
				r, err := e.str(v)
				if err != nil {
					return nil, err
				}
				vars[k] = r
			}
		}
		var err error
		out := subVar.ReplaceAllStringFunc(s, func(m string) string {
			name := strings.TrimSpace(m[2 : len(m)-1])
			if v, ok := vars[name]; ok {
				return v
			}
			if strings.Contains(name, ".") && !strings.HasPrefix(name, "AWS::") {
				return "<" + name + ">"
			}
			v, rerr := e.ref(name)
			if rerr != nil {
				err = rerr
			}
			return v
		})
		return strings.ReplaceAll(out, "${!", "${"), err
	case "Fn::Join":
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::Join %v", arg)
		}
		sep, _ := args[0].(string)
		list, err := e.value(args[1])
		if err != nil {
			return nil, err
		}
		items, _ := list.([]any)
		parts := make([]string, len(items))
		for i, it := range items {
			parts[i] = fmt.Sprint(it)
		}
		return strings.Join(parts, sep), nil
	}
	return nil, fmt.Errorf("%s is not modelled", fn)
}

// resourceProperties returns the evaluated properties of a resource of
// template.yaml.
func (e *evaluator) resourceProperties(t *testing.T, name string) map[string]any {
	t.Helper()
	var tpl struct {
		Resources map[string]struct{ Properties map[string]any }
	}
	if err := json.Unmarshal(templateJSON(t), &tpl); err != nil {
		t.Fatal(err)
	}
	r, ok := tpl.Resources[name]
	if !ok {
		t.Fatalf("template.yaml has no resource %s", name)
	}
	v, err := e.value(r.Properties)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v.(map[string]any)
}

// path returns the value at a dotted path of nested maps, or nil.
func path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// statements returns the inline policy statements of evaluated function
// properties.
func statements(props map[string]any) []map[string]any {
	var out []map[string]any
	policies, _ := props["Policies"].([]any)
	for _, p := range policies {
		list, _ := path(p, "Statement").([]any)
		for _, s := range list {
			if st, ok := s.(map[string]any); ok {
				out = append(out, st)
			}
		}
	}
	return out
}

// TestAPINamesDigestFunction: the name the api function invokes (its
// BROADSHEET_DIGEST_FUNCTION) is the digest function's, and its policy
// allows invoking exactly that function.
func TestAPINamesDigestFunction(t *testing.T) {
	e := newEvaluator(t, nil)
	digest := e.resourceProperties(t, "DigestFunction")
	api := e.resourceProperties(t, "ApiFunction")
	name, _ := digest["FunctionName"].(string)
	if name == "" {
		t.Fatal("DigestFunction has no FunctionName: the api function would need a Ref to it")
	}
	if got := path(api, "Environment", "Variables", "BROADSHEET_DIGEST_FUNCTION"); got != name {
		t.Errorf("ApiFunction's BROADSHEET_DIGEST_FUNCTION is %v, the digest function is %s", got, name)
	}
	want := fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", pseudo["AWS::Partition"], pseudo["AWS::Region"], pseudo["AWS::AccountId"], name)
	allowed := false
	for _, st := range statements(api) {
		if fmt.Sprint(st["Action"]) == "[lambda:InvokeFunction]" && st["Resource"] == want {
			allowed = true
		}
	}
	if !allowed {
		t.Errorf("ApiFunction's policies do not allow lambda:InvokeFunction on %s", want)
	}
	if len(name) > 64 {
		t.Errorf("digest function name %q is over Lambda's 64 characters", name)
	}
}
