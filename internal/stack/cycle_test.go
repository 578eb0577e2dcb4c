package stack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7/intrinsics"
)

// The SAM transform turns each AWS::Serverless::* resource into
// CloudFormation resources that name one another. CloudFormation refuses
// a template whose resources depend on one another in a cycle, so the
// check below expands the references SAM creates, as its translator
// (aws/serverless-application-model, samtranslator/model) does:
//
//   - a function F becomes AWS::Lambda::Function F, whose Role is
//     FRole's ARN (role_utils/role_constructor.py: logical ID + "Role");
//     F's properties, with Globals.Function merged, name what they name,
//     and FRole's inline policies name what Policies name;
//   - an HttpApi event on API A adds an integration whose URI is
//     ${F.Arn} to A's OpenAPI body (eventsources/push.py,
//     _build_apigw_integration_uri), so A depends on F, and adds
//     F<Event>Permission naming F and A;
//   - an SQS event becomes the event source mapping F<Event> naming F and
//     the queue;
//   - an SNS event becomes the subscription F<Event> and the permission
//     F<Event>Permission, naming F and the topic;
//   - a ScheduleV2 event becomes AWS::Scheduler::Schedule F<Event>,
//     naming F's ARN and its role F<Event>Role, which names F's ARN
//     (eventsources/scheduler.py);
//   - an HttpApi A becomes AWS::ApiGatewayV2::Api A and its stage
//     AApiGatewayDefaultStage, which names A.
//
// Every value of the template is walked, both branches of every Fn::If
// included: which branch is taken depends on the parameters, and a
// template must deploy with any of them.

// deps maps each resource of the expanded stack to the resources it names.
type deps map[string]map[string]bool

func (d deps) add(from string, to ...string) {
	if d[from] == nil {
		d[from] = map[string]bool{}
	}
	for _, t := range to {
		if t != "" {
			d[from][t] = true
		}
	}
}

// samTemplate is what the expansion reads of a template.
type samTemplate struct {
	Parameters map[string]json.RawMessage
	Globals    struct {
		Function map[string]any
	}
	Resources map[string]struct {
		Type       string
		DependsOn  any
		Properties map[string]any
	}
}

// expand returns the dependency graph of the stack SAM's transform makes
// of the template (JSON, with its intrinsic functions unprocessed).
func expand(js []byte) (deps, error) {
	var tpl samTemplate
	if err := json.Unmarshal(js, &tpl); err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for name := range tpl.Resources {
		names[name] = true
	}
	refs := func(v any) []string { return references(v, names) }
	g := deps{}
	for name, r := range tpl.Resources {
		switch r.Type {
		case "AWS::Serverless::Function":
			g.add(name, refs(tpl.Globals.Function)...)
			for k, v := range r.Properties {
				if k != "Events" && k != "Policies" {
					g.add(name, refs(v)...)
				}
			}
			if _, own := r.Properties["Role"]; !own {
				role := name + "Role"
				g.add(name, role)
				g.add(role, refs(r.Properties["Policies"])...)
			}
			events, _ := r.Properties["Events"].(map[string]any)
			for ev, e := range events {
				e, _ := e.(map[string]any)
				typ, _ := e["Type"].(string)
				props, _ := e["Properties"].(map[string]any)
				id := name + ev
				switch typ {
				case "HttpApi":
					api := "ServerlessHttpApi"
					if a := refs(props["ApiId"]); len(a) == 1 {
						api = a[0]
					}
					g.add(api, name)
					g.add(id+"Permission", name, api)
				case "SQS":
					g.add(id, name)
					g.add(id, refs(props)...)
				case "SNS":
					g.add(id, name)
					g.add(id, refs(props)...)
					g.add(id+"Permission", name)
					g.add(id+"Permission", refs(props["Topic"])...)
				case "ScheduleV2":
					g.add(id, name, id+"Role")
					g.add(id, refs(props)...)
					g.add(id+"Role", name)
				default:
					return nil, fmt.Errorf("%s: event %s of type %s: the check does not know what SAM makes of it", name, ev, typ)
				}
			}
		case "AWS::Serverless::HttpApi":
			g.add(name, refs(r.Properties)...)
			g.add(name+"ApiGatewayDefaultStage", name)
		default:
			if strings.HasPrefix(r.Type, "AWS::Serverless::") {
				return nil, fmt.Errorf("%s: the check does not know what SAM makes of %s", name, r.Type)
			}
			g.add(name, refs(r.Properties)...)
		}
		switch d := r.DependsOn.(type) {
		case string:
			g.add(name, d)
		case []any:
			for _, x := range d {
				s, _ := x.(string)
				g.add(name, s)
			}
		}
	}
	return g, nil
}

// subVar matches a ${Name} or ${Name.Attr} in a Fn::Sub string; ${!x} is
// a literal.
var subVar = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// references returns the resources v names through Ref, Fn::GetAtt and
// Fn::Sub, anywhere inside it, in every branch of every Fn::If.
func references(v any, resources map[string]bool) []string {
	var out []string
	var walk func(v any, local map[string]bool)
	walk = func(v any, local map[string]bool) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 1 {
				if ref, ok := x["Ref"].(string); ok {
					if resources[ref] && !local[ref] {
						out = append(out, ref)
					}
					return
				}
				if att, ok := x["Fn::GetAtt"]; ok {
					if name := getAttResource(att); resources[name] {
						out = append(out, name)
					}
					return
				}
				if sub, ok := x["Fn::Sub"]; ok {
					s, _ := sub.(string)
					inner := local
					if list, ok := sub.([]any); ok && len(list) == 2 {
						s, _ = list[0].(string)
						vars, _ := list[1].(map[string]any)
						inner = map[string]bool{}
						for k := range local {
							inner[k] = true
						}
						for k, val := range vars {
							inner[k] = true
							walk(val, local)
						}
					}
					for _, m := range subVar.FindAllStringSubmatch(s, -1) {
						name, _, _ := strings.Cut(strings.TrimSpace(m[1]), ".")
						if resources[name] && !inner[name] {
							out = append(out, name)
						}
					}
					return
				}
			}
			for _, val := range x {
				walk(val, local)
			}
		case []any:
			for _, val := range x {
				walk(val, local)
			}
		}
	}
	walk(v, nil)
	return out
}

// cycles returns one cycle, as "A → B → A", in each strongly connected
// part of g that has one, sorted.
func cycles(g deps) []string {
	// Tarjan's algorithm, then the shortest cycle through the first
	// member of each component.
	index, low := map[string]int{}, map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var comps [][]string
	next := 0
	nodes := make([]string, 0, len(g))
	for n := range g {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	var visit func(n string)
	visit = func(n string) {
		index[n], low[n] = next, next
		next++
		stack = append(stack, n)
		onStack[n] = true
		for _, m := range sortedKeys(g[n]) {
			if _, seen := index[m]; !seen {
				visit(m)
				low[n] = min(low[n], low[m])
			} else if onStack[m] {
				low[n] = min(low[n], index[m])
			}
		}
		if low[n] == index[n] {
			var comp []string
			for {
				m := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[m] = false
				comp = append(comp, m)
				if m == n {
					break
				}
			}
			if len(comp) > 1 || g[n][n] {
				sort.Strings(comp)
				comps = append(comps, comp)
			}
		}
	}
	for _, n := range nodes {
		if _, seen := index[n]; !seen {
			visit(n)
		}
	}
	var out []string
	for _, comp := range comps {
		in := map[string]bool{}
		for _, n := range comp {
			in[n] = true
		}
		start := comp[0]
		prev := map[string]string{}
		queue := []string{start}
		found := false
		for len(queue) > 0 && !found {
			n := queue[0]
			queue = queue[1:]
			for _, m := range sortedKeys(g[n]) {
				if !in[m] {
					continue
				}
				if m == start {
					prev[start] = n
					found = true
					break
				}
				if _, seen := prev[m]; !seen {
					prev[m] = n
					queue = append(queue, m)
				}
			}
		}
		path := []string{start}
		for n := prev[start]; n != start; n = prev[n] {
			path = append(path, n)
		}
		path = append(path, start)
		for i, j := 1, len(path)-2; i < j; i, j = i+1, j-1 {
			path[i], path[j] = path[j], path[i]
		}
		out = append(out, strings.Join(path, " → "))
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// templateJSON returns template.yaml as JSON, intrinsics unprocessed.
func templateJSON(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := intrinsics.ProcessYAML(raw, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return js
}

// TestExpandedStackHasNoCycle: the stack SAM makes of template.yaml has
// no dependency cycle, whichever branch of each Fn::If is taken.
func TestExpandedStackHasNoCycle(t *testing.T) {
	g, err := expand(templateJSON(t))
	if err != nil {
		t.Fatal(err)
	}
	if !g["HttpApi"]["ApiFunction"] {
		t.Fatal("the expansion has no HttpApi → ApiFunction edge (the API's body names the function's ARN); it is broken")
	}
	for _, c := range cycles(g) {
		t.Errorf("dependency cycle: %s", c)
	}
}

// TestCycleCheck runs the expansion on small templates whose cycles it
// must find: one through an HttpApi's body and a function's role, one on
// the branch of an Fn::If that the default parameters do not take.
func TestCycleCheck(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{
			name: "through the API body and the role",
			yaml: `
Resources:
  Api: {Type: AWS::Serverless::HttpApi}
  Front:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        All: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /, Method: ANY}}
      Policies:
        - LambdaInvokePolicy: {FunctionName: !Ref Back}
  Back:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          URL: !Sub "https://${Api}.execute-api.${AWS::Region}.amazonaws.com"
`,
			want: []string{"Api → Front → FrontRole → Back → Api"},
		},
		{
			name: "on the branch not taken",
			yaml: `
Parameters:
  Url: {Type: String, Default: ""}
Conditions:
  HasUrl: !Not [!Equals [!Ref Url, ""]]
Resources:
  Api: {Type: AWS::Serverless::HttpApi}
  Front:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          URL: !If [HasUrl, !Ref Url, !GetAtt Api.ApiEndpoint]
      Events:
        All: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /, Method: ANY}}
`,
			want: []string{"Api → Front → Api"},
		},
		{
			name: "none: a Sub variable of the same name is local",
			yaml: `
Resources:
  Api: {Type: AWS::Serverless::HttpApi}
  Front:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          URL: !Sub ["https://${Api}", {Api: example.com}]
      Events:
        All: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /, Method: ANY}}
`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js, err := intrinsics.ProcessYAML([]byte(tc.yaml), &intrinsics.ProcessorOptions{NoProcess: true})
			if err != nil {
				t.Fatal(err)
			}
			g, err := expand(js)
			if err != nil {
				t.Fatal(err)
			}
			got := cycles(g)
			if strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
				t.Errorf("cycles %q, want %q", got, tc.want)
			}
		})
	}
}
