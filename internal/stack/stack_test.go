// Package stack holds the checks of the SAM template (template.yaml)
// against the code: every function has a folder and a Makefile target that
// builds it, the queue's visibility timeout covers the sender, the sender
// reports partial batch failures, every environment variable the code
// reads is set and every AWS call the code makes is allowed.
package stack

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/intrinsics"
	"github.com/broadsheet-news/broadsheet/internal/dynamo"
)

// root is the repository root, two folders up.
const root = "../.."

// template is the part of template.yaml the checks read, decoded from
// plain YAML because goformation drops some SAM properties (an SQS event
// with FunctionResponseTypes loses them all) and merges no Globals.
type template struct {
	Globals struct {
		Function struct {
			Timeout     int
			Environment struct{ Variables map[string]any }
		}
	}
	Resources map[string]resource
}

type resource struct {
	Type       string
	Metadata   map[string]any
	Properties json.RawMessage
}

type function struct {
	CodeUri     string
	Handler     string
	Runtime     string
	Timeout     int
	Environment struct{ Variables map[string]any }
	Events      map[string]struct {
		Type       string
		Properties json.RawMessage
	}
	Policies []any
}

func loadTemplate(t *testing.T) (*template, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := intrinsics.ProcessYAML(raw, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	var tpl template
	if err := json.Unmarshal(js, &tpl); err != nil {
		t.Fatalf("decode template.yaml: %v", err)
	}
	return &tpl, raw
}

func (tpl *template) functions(t *testing.T) map[string]*function {
	t.Helper()
	out := map[string]*function{}
	for name, r := range tpl.Resources {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		var f function
		if err := json.Unmarshal(r.Properties, &f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Timeout == 0 {
			f.Timeout = tpl.Globals.Function.Timeout
		}
		merged := map[string]any{}
		for k, v := range tpl.Globals.Function.Environment.Variables {
			merged[k] = v
		}
		for k, v := range f.Environment.Variables {
			merged[k] = v
		}
		f.Environment.Variables = merged
		out[name] = &f
	}
	return out
}

// TestTemplateParses runs the template through goformation, the typed
// CloudFormation/SAM model, and checks the functions' runtime settings.
func TestTemplateParses(t *testing.T) {
	tpl, err := goformation.OpenWithOptions(filepath.Join(root, "template.yaml"), &intrinsics.ProcessorOptions{
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{
			"Ref":        func(string, any, any) any { return "ref" },
			"Fn::GetAtt": func(string, any, any) any { return "attr" },
			"Fn::Sub":    func(string, any, any) any { return "sub" },
			"Fn::If":     func(string, any, any) any { return "if" },
		},
	})
	if err != nil {
		t.Fatalf("goformation: %v", err)
	}
	fns := tpl.GetAllServerlessFunctionResources()
	if len(fns) != 5 {
		t.Fatalf("%d functions, want api, digest, sender, feedback and ingest", len(fns))
	}
	plain, _ := loadTemplate(t)
	if plain.Globals.Function.Timeout == 0 {
		t.Fatal("no Globals.Function.Timeout")
	}
	raw, _ := os.ReadFile(filepath.Join(root, "template.yaml"))
	for _, want := range []string{"Runtime: provided.al2023", "Architectures: [arm64]", "Handler: bootstrap"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("template.yaml Globals lack %q", want)
		}
	}
	for name, r := range plain.Resources {
		if r.Type == "AWS::Serverless::Function" && r.Metadata["BuildMethod"] != "makefile" {
			t.Errorf("%s: BuildMethod %v, want makefile", name, r.Metadata["BuildMethod"])
		}
	}
}

// TestEveryFunctionHasFolderAndTarget: each function's build-<LogicalId>
// target builds ./functions/<name>, and that folder holds a main package.
func TestEveryFunctionHasFolderAndTarget(t *testing.T) {
	tpl, _ := loadTemplate(t)
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range tpl.functions(t) {
		re := regexp.MustCompile(`(?m)^build-` + name + `:\n\t.*-o \$\(ARTIFACTS_DIR\)/bootstrap \./functions/([a-z]+)\s*$`)
		m := re.FindSubmatch(mk)
		if m == nil {
			t.Errorf("Makefile has no build-%s target writing $(ARTIFACTS_DIR)/bootstrap from ./functions/<name>", name)
			continue
		}
		main := filepath.Join(root, "functions", string(m[1]), "main.go")
		b, err := os.ReadFile(main)
		if err != nil || !strings.Contains(string(b), "package main") || !strings.Contains(string(b), "lambda.Start") {
			t.Errorf("%s: %s is not a main package calling lambda.Start (%v)", name, main, err)
		}
	}
}

// TestQueueAndSender: the visibility timeout is at least six times the
// sender's timeout (AWS's advice for Lambda event sources), the sender
// reports partial batch failures and caps its concurrency, and failed
// messages end in a dead-letter queue.
func TestQueueAndSender(t *testing.T) {
	tpl, _ := loadTemplate(t)
	fns := tpl.functions(t)
	sender := fns["SenderFunction"]
	if sender == nil {
		t.Fatal("no SenderFunction")
	}
	var queueRef string
	found := false
	for _, ev := range sender.Events {
		if ev.Type != "SQS" {
			continue
		}
		found = true
		var p struct {
			Queue                 map[string]any
			FunctionResponseTypes []string
			ScalingConfig         struct{ MaximumConcurrency any }
		}
		if err := json.Unmarshal(ev.Properties, &p); err != nil {
			t.Fatal(err)
		}
		if len(p.FunctionResponseTypes) != 1 || p.FunctionResponseTypes[0] != "ReportBatchItemFailures" {
			t.Errorf("sender FunctionResponseTypes %v, want [ReportBatchItemFailures]", p.FunctionResponseTypes)
		}
		if p.ScalingConfig.MaximumConcurrency == nil {
			t.Error("sender has no ScalingConfig.MaximumConcurrency: nothing holds it to the SES rate")
		}
		queueRef = getAttResource(p.Queue["Fn::GetAtt"])
	}
	if !found || queueRef == "" {
		t.Fatal("sender has no SQS event from a queue in this template")
	}
	var q struct {
		VisibilityTimeout int
		RedrivePolicy     struct {
			DeadLetterTargetArn any `json:"deadLetterTargetArn"`
			MaxReceiveCount     int `json:"maxReceiveCount"`
		}
	}
	if err := json.Unmarshal(tpl.Resources[queueRef].Properties, &q); err != nil {
		t.Fatal(err)
	}
	if q.VisibilityTimeout < 6*sender.Timeout {
		t.Errorf("queue visibility timeout %d s < 6 × sender timeout %d s", q.VisibilityTimeout, sender.Timeout)
	}
	if q.RedrivePolicy.DeadLetterTargetArn == nil || q.RedrivePolicy.MaxReceiveCount < 2 {
		t.Errorf("queue redrive policy %+v: want a dead-letter queue after a few receives", q.RedrivePolicy)
	}
}

// getAttResource returns the logical ID a Fn::GetAtt names, in either of
// its forms: "Name.Attr" or ["Name", "Attr"].
func getAttResource(v any) string {
	switch att := v.(type) {
	case string:
		name, _, _ := strings.Cut(att, ".")
		return name
	case []any:
		if len(att) == 2 {
			name, _ := att[0].(string)
			return name
		}
	}
	return ""
}

// TestTableMatchesStore: the table in template.yaml has the keys, indexes
// and TTL attribute the DynamoDB store creates in tests, so what is tested
// is what is deployed.
func TestTableMatchesStore(t *testing.T) {
	tpl, _ := loadTemplate(t)
	var table struct {
		BillingMode            string
		AttributeDefinitions   []struct{ AttributeName, AttributeType string }
		KeySchema              []struct{ AttributeName, KeyType string }
		GlobalSecondaryIndexes []struct {
			IndexName  string
			KeySchema  []struct{ AttributeName, KeyType string }
			Projection struct{ ProjectionType string }
		}
		TimeToLiveSpecification struct {
			AttributeName string
			Enabled       bool
		}
		PointInTimeRecoverySpecification struct{ PointInTimeRecoveryEnabled bool }
	}
	if err := json.Unmarshal(tpl.Resources["Table"].Properties, &table); err != nil {
		t.Fatal(err)
	}
	want := dynamo.TableInput("x")
	if table.BillingMode != string(want.BillingMode) {
		t.Errorf("billing mode %q, want %q", table.BillingMode, want.BillingMode)
	}
	attrs := map[string]string{}
	for _, a := range table.AttributeDefinitions {
		attrs[a.AttributeName] = a.AttributeType
	}
	if len(attrs) != len(want.AttributeDefinitions) {
		t.Errorf("template defines %d attributes, the store %d", len(attrs), len(want.AttributeDefinitions))
	}
	for _, a := range want.AttributeDefinitions {
		if attrs[*a.AttributeName] != string(a.AttributeType) {
			t.Errorf("attribute %s: template %q, store %q", *a.AttributeName, attrs[*a.AttributeName], a.AttributeType)
		}
	}
	keyString := func(name, typ string) string { return name + ":" + typ }
	for i, k := range want.KeySchema {
		if i >= len(table.KeySchema) || keyString(table.KeySchema[i].AttributeName, table.KeySchema[i].KeyType) != keyString(*k.AttributeName, string(k.KeyType)) {
			t.Errorf("key schema %v, want %v", table.KeySchema, want.KeySchema)
			break
		}
	}
	if len(table.GlobalSecondaryIndexes) != len(want.GlobalSecondaryIndexes) {
		t.Fatalf("template has %d GSIs, the store %d", len(table.GlobalSecondaryIndexes), len(want.GlobalSecondaryIndexes))
	}
	for i, g := range want.GlobalSecondaryIndexes {
		got := table.GlobalSecondaryIndexes[i]
		if got.IndexName != *g.IndexName || got.Projection.ProjectionType != string(g.Projection.ProjectionType) || len(got.KeySchema) != len(g.KeySchema) {
			t.Errorf("GSI %d: template %+v, store %s", i, got, *g.IndexName)
			continue
		}
		for j, k := range g.KeySchema {
			if keyString(got.KeySchema[j].AttributeName, got.KeySchema[j].KeyType) != keyString(*k.AttributeName, string(k.KeyType)) {
				t.Errorf("GSI %s key %d: template %+v", *g.IndexName, j, got.KeySchema[j])
			}
		}
	}
	if table.TimeToLiveSpecification.AttributeName != dynamo.TTLAttribute || !table.TimeToLiveSpecification.Enabled {
		t.Errorf("TTL %+v, want %s enabled", table.TimeToLiveSpecification, dynamo.TTLAttribute)
	}
	if !table.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled {
		t.Error("point-in-time recovery is off")
	}
}

// maxBootstrap is the most a stripped bootstrap may weigh: small binaries
// start fast, and the issue sets the bar at 16 MB.
const maxBootstrap = 16 << 20

// TestSamBuildTargets runs each function's build-<LogicalId> target as
// `sam build` would (with ARTIFACTS_DIR set) and checks that a stripped
// arm64 Linux bootstrap under 16 MB appears.
func TestSamBuildTargets(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is required to check the SAM build targets")
	}
	tpl, _ := loadTemplate(t)
	for name := range tpl.functions(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command("make", "--no-print-directory", "build-"+name, "ARTIFACTS_DIR="+dir)
			cmd.Dir = root
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make build-%s: %v\n%s", name, err, b)
			}
			path := filepath.Join(dir, "bootstrap")
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatalf("no bootstrap: %v", err)
			}
			f, err := elf.Open(path)
			if err != nil {
				t.Fatalf("bootstrap is not an ELF binary: %v", err)
			}
			defer f.Close()
			if f.Machine != elf.EM_AARCH64 {
				t.Errorf("bootstrap is for %v, want arm64 (the template's architecture)", f.Machine)
			}
			if f.Section(".symtab") != nil {
				t.Error("bootstrap is not stripped")
			}
			t.Logf("%s bootstrap: %.2f MB", name, float64(fi.Size())/(1<<20))
			if fi.Size() > maxBootstrap {
				t.Errorf("bootstrap is %.2f MB, over the 16 MB limit", float64(fi.Size())/(1<<20))
			}
		})
	}
}

// TestEveryParameterIsUsed: each parameter of template.yaml is named by a
// Ref or a Fn::Sub somewhere in the template, so that none is asked for
// and then ignored.
func TestEveryParameterIsUsed(t *testing.T) {
	var tpl struct {
		Parameters map[string]json.RawMessage
		Globals    json.RawMessage
		Conditions json.RawMessage
		Resources  json.RawMessage
		Outputs    json.RawMessage
	}
	if err := json.Unmarshal(templateJSON(t), &tpl); err != nil {
		t.Fatal(err)
	}
	params := map[string]bool{}
	for name := range tpl.Parameters {
		params[name] = true
	}
	used := map[string]bool{}
	for _, part := range []json.RawMessage{tpl.Globals, tpl.Conditions, tpl.Resources, tpl.Outputs} {
		var v any
		if len(part) == 0 {
			continue
		}
		if err := json.Unmarshal(part, &v); err != nil {
			t.Fatal(err)
		}
		for _, name := range references(v, params) {
			used[name] = true
		}
	}
	for name := range params {
		if !used[name] {
			t.Errorf("parameter %s is used nowhere in template.yaml", name)
		}
	}
}
