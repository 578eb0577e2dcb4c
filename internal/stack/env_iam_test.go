package stack

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/broadsheet-news/broadsheet/internal/localaws"
)

// functionFolders maps each function of the template to its folder under
// functions/, from the Makefile's build-<LogicalId> targets.
func functionFolders(t *testing.T, tpl *template) map[string]string {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for name := range tpl.functions(t) {
		m := regexp.MustCompile(`(?m)^build-` + name + `:\n\t.*\./functions/([a-z]+)\s*$`).FindSubmatch(mk)
		if m == nil {
			t.Fatalf("no build-%s target", name)
		}
		out[name] = string(m[1])
	}
	return out
}

// sourceFiles returns the non-test Go files of this module's packages that
// the function's binary links.
func sourceFiles(t *testing.T, folder string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{.ImportPath}}|{{.Dir}}|{{join .GoFiles ","}}{{end}}`, "./functions/"+folder)
	cmd.Dir = root
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var files []string
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.Split(line, "|")
		if len(parts) != 3 || !strings.HasPrefix(parts[0], "github.com/broadsheet-news/broadsheet/") || parts[2] == "" {
			continue
		}
		for _, f := range strings.Split(parts[2], ",") {
			files = append(files, filepath.Join(parts[1], f))
		}
	}
	return files
}

var envName = regexp.MustCompile(`"(BROADSHEET_[A-Z0-9_]+)"`)

// functionOnly are variables that only some functions read, with the
// functions that read them; every other BROADSHEET_* name the code reads
// must be set for each function that links the code reading it.
var functionOnly = map[string][]string{
	"BROADSHEET_DIGEST_FUNCTION":        {"ApiFunction"},                                        // api invokes the digest function
	"BROADSHEET_QUEUE_URL":              {"DigestFunction", "SenderFunction", "IngestFunction"}, // fan-out and retries enqueue
	"BROADSHEET_WORDPRESS_URL":          {"IngestFunction"},                                     // the site it pulls from
	"BROADSHEET_WORDPRESS_SECRET":       {"ApiFunction"},                                        // POST /hooks/wordpress
	"BROADSHEET_WORDPRESS_SECRET_PARAM": {"ApiFunction"},
	"BROADSHEET_SENDER_CONCURRENCY":     {"SenderFunction"}, // its share of the SES rate
}

// laptopOnly are settings only the laptop binary reads (package settings
// serves both): nothing on AWS reads them.
var laptopOnly = map[string]bool{}

// TestEnvironmentCoversCode: every BROADSHEET_* variable named in the code
// a function links is declared in that function's environment (Globals
// merged), so nothing runs on a silent default in production.
func TestEnvironmentCoversCode(t *testing.T) {
	tpl, _ := loadTemplate(t)
	fns := tpl.functions(t)
	for name, folder := range functionFolders(t, tpl) {
		read := map[string]bool{}
		for _, f := range sourceFiles(t, folder) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range envName.FindAllSubmatch(b, -1) {
				read[string(m[1])] = true
			}
		}
		if len(read) == 0 {
			t.Errorf("%s: found no BROADSHEET_* variable in its code; the scan is broken", name)
		}
		for v := range read {
			if laptopOnly[v] {
				continue
			}
			if only, ok := functionOnly[v]; ok && !contains(only, name) {
				continue
			}
			if _, ok := fns[name].Environment.Variables[v]; !ok {
				t.Errorf("%s reads %s, which template.yaml does not set for it", name, v)
			}
		}
	}
}

// samPolicy is what each SAM policy template the stack uses allows, from
// the SAM policy template list.
var samPolicy = map[string][]string{
	"DynamoDBCrudPolicy":     {"dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"},
	"SQSSendMessagePolicy":   {"sqs:SendMessage"},
	"SSMParameterReadPolicy": {"ssm:DescribeParameters", "ssm:GetParameters", "ssm:GetParameter", "ssm:GetParametersByPath"},
	"LambdaInvokePolicy":     {"lambda:InvokeFunction"},
}

// sdkServices maps an aws-sdk-go-v2 service package to its IAM prefix.
var sdkServices = map[string]string{"dynamodb": "dynamodb", "sqs": "sqs", "sesv2": "ses", "ssm": "ssm", "lambda": "lambda"}

// actionsFor maps an SDK operation to the IAM actions it needs.
func actionsFor(service, op string) []string {
	prefix := sdkServices[service]
	switch service + ":" + op {
	case "dynamodb:TransactWriteItems":
		return []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}
	case "dynamodb:TransactGetItems":
		return []string{"dynamodb:GetItem"}
	case "sqs:SendMessageBatch":
		return []string{"sqs:SendMessage"}
	case "lambda:Invoke":
		return []string{"lambda:InvokeFunction"}
	}
	return []string{prefix + ":" + op}
}

// sdkCall matches an SDK client operation in a binary's symbol table.
var sdkCall = regexp.MustCompile(`github\.com/aws/aws-sdk-go-v2/service/([a-z0-9]+)\.\(\*Client\)\.([A-Z][A-Za-z0-9]+)$`)

// sdkInternal are client methods the SDK links for its own machinery,
// which our code never calls: DynamoDB endpoint discovery is off unless
// asked for.
var sdkInternal = map[string]bool{"dynamodb:DescribeEndpoints": true, "dynamodb:Options": true}

// awsCalls returns the IAM actions a function's binary can reach: the
// SDK client operations the linker kept, which are those the code calls.
// (A function's whole package graph would over-count: the wiring package
// holds every function's loader.)
func awsCalls(t *testing.T, folder string) map[string]bool {
	t.Helper()
	nm := symbols(t, folder)
	calls := map[string]bool{}
	for _, name := range nm {
		m := sdkCall.FindStringSubmatch(name)
		if m == nil || sdkServices[m[1]] == "" || sdkInternal[m[1]+":"+m[2]] {
			continue
		}
		for _, a := range actionsFor(m[1], m[2]) {
			calls[a] = true
		}
	}
	return calls
}

// symbolCache holds each function binary's symbols: building one takes
// seconds, and several checks read them.
var symbolCache = struct {
	sync.Mutex
	m map[string][]string
}{m: map[string][]string{}}

// symbols returns the names in the symbol table of the function in
// folder, built as for Lambda but unstripped.
func symbols(t *testing.T, folder string) []string {
	t.Helper()
	symbolCache.Lock()
	defer symbolCache.Unlock()
	if s, ok := symbolCache.m[folder]; ok {
		return s
	}
	bin := filepath.Join(t.TempDir(), folder)
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, "./functions/"+folder)
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", folder, err, b)
	}
	nm, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("nm %s: %v", folder, err)
	}
	var names []string
	for _, line := range strings.Split(string(nm), "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			names = append(names, f[len(f)-1])
		}
	}
	symbolCache.m[folder] = names
	return names
}

// TestTimeZonesEmbedded: every function that loads a time zone (the
// schedules' and the digests' dates, BROADSHEET_TIMEZONE) embeds the time
// zone database (time/tzdata), so that its dates do not depend on
// whether the Lambda runtime ships one.
func TestTimeZonesEmbedded(t *testing.T) {
	tpl, _ := loadTemplate(t)
	loaders := 0
	for name, folder := range functionFolders(t, tpl) {
		var loads, embeds bool
		for _, s := range symbols(t, folder) {
			loads = loads || s == "time.LoadLocation"
			embeds = embeds || strings.HasPrefix(s, "time/tzdata.")
		}
		if loads {
			loaders++
		}
		if loads && !embeds {
			t.Errorf("%s loads time zones but does not embed time/tzdata", name)
		}
	}
	if loaders == 0 {
		t.Error("no function loads a time zone; the scan is broken")
	}
}

// TestPoliciesAllowCalls: every AWS call in the code a function links is
// allowed by that function's policies (SAM policy templates expanded, and
// inline statements), so least privilege does not break a send.
func TestPoliciesAllowCalls(t *testing.T) {
	tpl, _ := loadTemplate(t)
	fns := tpl.functions(t)
	for name, folder := range functionFolders(t, tpl) {
		allowed := map[string]bool{}
		for _, p := range fns[name].Policies {
			m, ok := p.(map[string]any)
			if !ok {
				t.Errorf("%s: policy %v is not a policy template or statement", name, p)
				continue
			}
			for k, v := range m {
				if k != "Statement" {
					if _, known := samPolicy[k]; !known {
						t.Errorf("%s: policy template %s is not in this test's table", name, k)
					}
					for _, a := range samPolicy[k] {
						allowed[a] = true
					}
					continue
				}
				stmts, _ := v.([]any)
				for _, s := range stmts {
					st, _ := s.(map[string]any)
					actions, _ := st["Action"].([]any)
					for _, a := range actions {
						allowed[a.(string)] = true
					}
				}
			}
		}
		needed := awsCalls(t, folder)
		if !needed["dynamodb:GetItem"] {
			t.Errorf("%s: found no DynamoDB read in its code; the scan is broken", name)
		}
		var missing []string
		for a := range needed {
			if !allowed[a] {
				missing = append(missing, a)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s calls %v, which its policies do not allow", name, missing)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestLocalEnvFileMatchesTemplate: the env file `make local-aws` writes
// has an entry for every function, and sets only variables template.yaml
// declares for that function: `sam local` ignores any other (it sets the
// variables the template declares, taking their values from the file).
func TestLocalEnvFileMatchesTemplate(t *testing.T) {
	tpl, _ := loadTemplate(t)
	fns := tpl.functions(t)
	env := localaws.Env(localaws.Defaults(), localaws.Endpoints{}, "00")
	for name, f := range fns {
		vars, ok := env[name]
		if !ok {
			t.Errorf("the local env file has no %s", name)
			continue
		}
		for v := range vars {
			if _, ok := f.Environment.Variables[v]; !ok {
				t.Errorf("the local env file sets %s for %s, which template.yaml does not declare for it: sam local would ignore it", v, name)
			}
		}
	}
	for name := range env {
		if fns[name] == nil {
			t.Errorf("the local env file names %s, which is not a function of template.yaml", name)
		}
	}
}
