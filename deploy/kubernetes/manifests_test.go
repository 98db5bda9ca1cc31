package kubernetes_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"raterd/internal/app"
	"raterd/internal/testkit"
)

// The KEDA sources (scripts/services.sh keda_install) that the ScaledObject is checked
// against: the CRD, and the kafka scaler whose struct tags name the metadata it reads.
const (
	kedaCRDFile    = "keda.sh_scaledobjects.yaml"
	kedaScalerFile = "kafka_scaler.go"
	kedaGroup      = "keda.sh"
	kedaVersion    = "v1alpha1"
)

// kedaSources loads the ScaledObject schema and the kafka scaler's metadata keys.
func kedaSources(t *testing.T) (*jsonschema.Schema, []string, scalerParams) {
	t.Helper()
	dir := testkit.Service(t, "RATERD_TEST_KEDA", "KEDA's CRD and kafka scaler source (scripts/services.sh keda_install)")
	crd, err := os.ReadFile(filepath.Join(dir, kedaCRDFile))
	if err != nil {
		t.Fatal(err)
	}
	schema, rules, err := compileCRD(crd)
	if err != nil {
		t.Fatalf("%s: %v", kedaCRDFile, err)
	}
	src, err := os.ReadFile(filepath.Join(dir, kedaScalerFile))
	if err != nil {
		t.Fatal(err)
	}
	params := kafkaScalerParams(src)
	// The scaler's tags are the only list of its keys; if KEDA changes how they are
	// written, this check must be rewritten rather than pass on an empty list.
	for _, want := range []string{"bootstrapServers", "consumerGroup", "topic", "lagThreshold"} {
		if _, ok := params[want]; !ok {
			t.Fatalf("%s: no keda:\"name=%s\" tag found; the parser of its tags is out of date", kedaScalerFile, want)
		}
	}
	return schema, rules, params
}

// TestKEDAScaledObjectMatchesCRDAndConfig validates deploy/kubernetes/keda-scaledobject.yaml
// offline: against the openAPIV3Schema of KEDA's ScaledObject CRD (as the API server would,
// unknown fields refused), against the trigger metadata KEDA's kafka scaler reads, and
// against raterd.yaml: the Deployment it scales and the group and topic raterd consumes.
func TestKEDAScaledObjectMatchesCRDAndConfig(t *testing.T) {
	schema, rules, params := kedaSources(t)
	docs := manifestDocs(t, "keda-scaledobject.yaml")
	deploy := readDeployment(t)
	n := 0
	for _, doc := range docs {
		if doc["kind"] != "ScaledObject" {
			continue
		}
		n++
		for _, err := range checkScaledObject(doc, schema, rules, params, deploy) {
			t.Error(err)
		}
	}
	if n != 1 {
		t.Fatalf("keda-scaledobject.yaml holds %d ScaledObjects, want 1", n)
	}
}

// TestKEDACheckCatchesBrokenManifests is the negative control: each mutation of the real
// manifest is one a user could make, and the check must refuse every one, naming it.
func TestKEDACheckCatchesBrokenManifests(t *testing.T) {
	schema, rules, params := kedaSources(t)
	deploy := readDeployment(t)
	var good map[string]any
	for _, doc := range manifestDocs(t, "keda-scaledobject.yaml") {
		if doc["kind"] == "ScaledObject" {
			good = doc
		}
	}
	if errs := checkScaledObject(good, schema, rules, params, deploy); len(errs) > 0 {
		t.Fatalf("the manifest itself fails: %v", errs)
	}
	cases := []struct {
		name, want string
		mutate     func(spec map[string]any)
	}{
		{"replica count as a string", "minReplicaCount", func(s map[string]any) { s["minReplicaCount"] = "one" }},
		{"unknown spec field", "minReplicas", func(s map[string]any) { s["minReplicas"] = 1 }},
		{"min above max", "minReplicaCount must be less than or equal to maxReplicaCount", func(s map[string]any) { s["minReplicaCount"] = 20 }},
		{"int32 overflow", "pollingInterval", func(s map[string]any) { s["pollingInterval"] = int64(1) << 40 }},
		{"misspelt trigger key", "lagTreshold", func(s map[string]any) { trigger(s)["lagTreshold"] = "5000" }},
		{"wrong consumer group", "consumerGroup", func(s map[string]any) { trigger(s)["consumerGroup"] = "raterd-old" }},
		{"wrong topic", "topic", func(s map[string]any) { trigger(s)["topic"] = "llm-trafic" }},
		{"bad enum", "offsetResetPolicy", func(s map[string]any) { trigger(s)["offsetResetPolicy"] = "earliest-ish" }},
		{"lag threshold not a number", "lagThreshold", func(s map[string]any) { trigger(s)["lagThreshold"] = "lots" }},
		{"other deployment", "scaleTargetRef", func(s map[string]any) { s["scaleTargetRef"].(map[string]any)["name"] = "raterd-canary" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := deepCopy(t, good)
			c.mutate(doc["spec"].(map[string]any))
			errs := checkScaledObject(doc, schema, rules, params, deploy)
			if len(errs) == 0 {
				t.Fatalf("accepted")
			}
			if !strings.Contains(fmt.Sprint(errs), c.want) {
				t.Fatalf("refused, but without naming %q: %v", c.want, errs)
			}
		})
	}
}

// TestKEDACRDConversionKeepsKubernetesRules checks the CRD-to-JSON-Schema conversion on a
// hand-made structural schema, without KEDA's files: the Kubernetes rules it must carry.
func TestKEDACRDConversionKeepsKubernetesRules(t *testing.T) {
	crd := []byte(`
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  group: keda.sh
  versions:
  - name: v1alpha1
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [n]
            properties:
              n: {type: integer, format: int32}
              port: {x-kubernetes-int-or-string: true}
              maybe: {type: string, nullable: true}
              free: {type: object, x-kubernetes-preserve-unknown-fields: true}
              labels: {type: object, additionalProperties: {type: string}}
            x-kubernetes-validations:
            - {rule: 'self.n > 0', message: n must be positive}
`)
	schema, rules, err := compileCRD(crd)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rules, []string{"self.n > 0"}) {
		t.Errorf("CEL rules = %q", rules)
	}
	for _, c := range []struct {
		doc string
		ok  bool
	}{
		{`{"spec": {"n": 1, "port": "http", "maybe": null, "free": {"x": 1}, "labels": {"a": "b"}}}`, true},
		{`{"spec": {"n": 1, "port": 8080}}`, true},
		{`{"spec": {"n": 1, "port": true}}`, false},             // int-or-string
		{`{"spec": {"n": 2147483648}}`, false},                  // int32
		{`{"spec": {"n": 1, "typo": 1}}`, false},                // unknown field
		{`{"spec": {"n": 1, "labels": {"a": 1}}}`, false},       // additionalProperties kept
		{`{"spec": {"port": 1}}`, false},                        // required
		{`{"spec": {"n": 1, "maybe": 3}}`, false},               // nullable string is still a string
		{`{"spec": {"n": 1}, "status": {}}`, false},             // unknown top-level field
		{`{"spec": {"n": 1, "free": {"anything": [1]}}}`, true}, // preserve-unknown-fields
	} {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(c.doc))
		if err != nil {
			t.Fatal(err)
		}
		err = schema.Validate(inst)
		if (err == nil) != c.ok {
			t.Errorf("%s: valid=%v, want %v (%v)", c.doc, err == nil, c.ok, err)
		}
	}
}

// deployment is what the ScaledObject must agree with in raterd.yaml.
type deployment struct {
	name, brokers, group, topic, startOffset string
}

// readDeployment reads the Deployment's name, the brokers of the raterd-env ConfigMap and
// the group, topic and start offset of raterd.yaml through raterd's own config loader.
func readDeployment(t *testing.T) deployment {
	t.Helper()
	var d deployment
	var configText string
	env := map[string]string{}
	for _, doc := range manifestDocs(t, "raterd.yaml") {
		meta, _ := doc["metadata"].(map[string]any)
		data, _ := doc["data"].(map[string]any)
		switch {
		case doc["kind"] == "Deployment":
			d.name, _ = meta["name"].(string)
		case doc["kind"] == "ConfigMap" && data["raterd.yaml"] != nil:
			configText, _ = data["raterd.yaml"].(string)
		case doc["kind"] == "ConfigMap" && meta["name"] == "raterd-env":
			for k, v := range data {
				env[k], _ = v.(string)
			}
		}
	}
	if d.name == "" || configText == "" || env["RATERD_KAFKA_BROKERS"] == "" {
		t.Fatalf("raterd.yaml: want a Deployment, the raterd.yaml ConfigMap and RATERD_KAFKA_BROKERS in raterd-env; got %+v", d)
	}
	cfg, err := app.ParseConfig([]byte(configText), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("raterd.yaml ConfigMap: %v", err)
	}
	if len(cfg.Kafka.Topics) != 1 {
		t.Fatalf("raterd.yaml reads %d topics; the ScaledObject's trigger names one", len(cfg.Kafka.Topics))
	}
	d.brokers = strings.Join(cfg.Kafka.Brokers, ",")
	d.group, d.topic, d.startOffset = cfg.Kafka.GroupID, cfg.Kafka.Topics[0], cfg.Kafka.StartOffset
	return d
}

// checkScaledObject returns every way doc fails: the CRD schema, its CEL rule, the
// scaler's metadata keys and enums, and agreement with raterd.yaml.
func checkScaledObject(doc map[string]any, schema *jsonschema.Schema, rules []string, params scalerParams, d deployment) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if doc["apiVersion"] != kedaGroup+"/"+kedaVersion {
		bad("apiVersion %v, want %s/%s", doc["apiVersion"], kedaGroup, kedaVersion)
	}
	inst, err := toJSONValue(doc)
	if err != nil {
		return append(errs, err)
	}
	if err := schema.Validate(inst); err != nil {
		bad("against KEDA's CRD schema: %v", err)
	}
	spec, _ := doc["spec"].(map[string]any)
	// The CRD's one CEL rule (x-kubernetes-validations), which JSON Schema cannot express.
	for _, rule := range rules {
		switch rule {
		case celMinLEMax:
			minR, hasMin := intOf(spec["minReplicaCount"])
			maxR, hasMax := intOf(spec["maxReplicaCount"])
			if !hasMax {
				maxR = 100
			}
			if hasMin && minR > maxR {
				bad("minReplicaCount must be less than or equal to maxReplicaCount (%d > %d)", minR, maxR)
			}
		default:
			bad("KEDA's CRD has a CEL rule this check does not evaluate: %q; add it to checkScaledObject", rule)
		}
	}
	if ref, _ := spec["scaleTargetRef"].(map[string]any); ref["name"] != d.name || (ref["kind"] != nil && ref["kind"] != "Deployment") {
		bad("scaleTargetRef %v, want the Deployment %q of raterd.yaml", ref, d.name)
	}
	triggers, _ := spec["triggers"].([]any)
	if len(triggers) == 0 {
		bad("no triggers")
	}
	for i, tr := range triggers {
		tm, _ := tr.(map[string]any)
		if tm["type"] != "kafka" {
			bad("triggers[%d].type %v, want kafka", i, tm["type"])
			continue
		}
		md, _ := tm["metadata"].(map[string]any)
		for k, v := range md {
			p, ok := params[k]
			if !ok {
				bad("triggers[%d].metadata.%s: not a key KEDA's kafka scaler reads", i, k)
				continue
			}
			s, _ := v.(string)
			if len(p.enum) > 0 && !slices.Contains(p.enum, s) {
				bad("triggers[%d].metadata.%s: %q, want one of %v", i, k, s, p.enum)
			}
		}
		want := map[string]string{"bootstrapServers": d.brokers, "consumerGroup": d.group, "topic": d.topic, "offsetResetPolicy": d.startOffset}
		for k, v := range want {
			if md[k] != v {
				bad("triggers[%d].metadata.%s: %v, but raterd.yaml has %q", i, k, md[k], v)
			}
		}
		if n, err := strconv.Atoi(fmt.Sprint(md["lagThreshold"])); err != nil || n <= 0 {
			bad("triggers[%d].metadata.lagThreshold: %v, want a positive integer", i, md["lagThreshold"])
		}
	}
	return errs
}

// celMinLEMax is the rule of KEDA v2.21's CRD, checked by hand in checkScaledObject.
const celMinLEMax = "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount) ? self.maxReplicaCount : 100)"

// compileCRD turns the v1alpha1 openAPIV3Schema of a CRD into a compiled JSON Schema with
// Kubernetes' structural-schema rules, and returns the CEL rules it could not translate.
func compileCRD(crd []byte) (*jsonschema.Schema, []string, error) {
	var doc struct {
		Spec struct {
			Group    string `yaml:"group"`
			Versions []struct {
				Name   string `yaml:"name"`
				Schema struct {
					OpenAPIV3Schema map[string]any `yaml:"openAPIV3Schema"`
				} `yaml:"schema"`
			} `yaml:"versions"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(crd, &doc); err != nil {
		return nil, nil, fmt.Errorf("parse CRD: %w", err)
	}
	if doc.Spec.Group != kedaGroup {
		return nil, nil, fmt.Errorf("CRD group %q, want %s", doc.Spec.Group, kedaGroup)
	}
	var root map[string]any
	for _, v := range doc.Spec.Versions {
		if v.Name == kedaVersion {
			root = v.Schema.OpenAPIV3Schema
		}
	}
	if root == nil {
		return nil, nil, fmt.Errorf("CRD has no version %s with an openAPIV3Schema", kedaVersion)
	}
	var rules []string
	structural(root, &rules)
	inst, err := toJSONValue(root)
	if err != nil {
		return nil, nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("keda-scaledobject.json", inst); err != nil {
		return nil, nil, fmt.Errorf("add schema: %w", err)
	}
	s, err := c.Compile("keda-scaledobject.json")
	if err != nil {
		return nil, nil, fmt.Errorf("compile schema: %w", err)
	}
	return s, rules, nil
}

// structural rewrites a Kubernetes structural schema node in place as JSON Schema: the
// x-kubernetes-* extensions and nullable become their JSON Schema meaning, int32/int64
// formats become bounds, and an object with properties refuses unknown fields (the API
// server prunes or, with strict field validation, refuses them) unless it preserves them.
func structural(node map[string]any, rules *[]string) {
	preserve := node["x-kubernetes-preserve-unknown-fields"] == true
	if node["x-kubernetes-int-or-string"] == true {
		delete(node, "type")
		node["anyOf"] = []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}
	}
	if vs, ok := node["x-kubernetes-validations"].([]any); ok {
		for _, v := range vs {
			if m, ok := v.(map[string]any); ok {
				r, _ := m["rule"].(string)
				*rules = append(*rules, strings.Join(strings.Fields(r), " "))
			}
		}
	}
	for k := range node {
		if strings.HasPrefix(k, "x-kubernetes-") {
			delete(node, k)
		}
	}
	if node["nullable"] == true {
		if t, ok := node["type"].(string); ok {
			node["type"] = []any{t, "null"}
		}
	}
	delete(node, "nullable")
	switch node["format"] {
	case "int32":
		node["minimum"], node["maximum"] = -(1 << 31), (1<<31)-1
	case "int64":
		node["minimum"], node["maximum"] = int64(-1<<63), int64(1<<63-1)
	}
	if props, ok := node["properties"].(map[string]any); ok {
		for _, p := range props {
			if m, ok := p.(map[string]any); ok {
				structural(m, rules)
			}
		}
		if _, set := node["additionalProperties"]; !set && !preserve {
			node["additionalProperties"] = false
		}
	}
	for _, k := range []string{"items", "additionalProperties", "not"} {
		if m, ok := node[k].(map[string]any); ok {
			structural(m, rules)
		}
	}
	for _, k := range []string{"anyOf", "allOf", "oneOf"} {
		if list, ok := node[k].([]any); ok {
			for _, e := range list {
				if m, ok := e.(map[string]any); ok {
					structural(m, rules)
				}
			}
		}
	}
}

// scalerParams are the trigger metadata keys KEDA's kafka scaler reads, with their enums.
type scalerParams map[string]struct{ enum []string }

// kedaTag matches a `keda:"name=…,order=…"` struct tag of KEDA's typed scaler config.
var kedaTag = regexp.MustCompile(`keda:"([^"]*)"`)

// kafkaScalerParams reads the struct tags of kafka_scaler.go: every parameter whose order
// includes triggerMetadata may appear under a trigger's metadata.
func kafkaScalerParams(src []byte) scalerParams {
	out := scalerParams{}
	for _, m := range kedaTag.FindAllSubmatch(src, -1) {
		var name string
		var enum []string
		fromMetadata := false
		for _, field := range strings.Split(string(m[1]), ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(field), "=")
			switch k {
			case "name":
				name = v
			case "order":
				fromMetadata = slices.Contains(strings.Split(v, ";"), "triggerMetadata")
			case "enum":
				enum = strings.Split(v, ";")
			}
		}
		if name != "" && fromMetadata {
			out[name] = struct{ enum []string }{enum}
		}
	}
	return out
}

// trigger returns the first trigger's metadata of a ScaledObject spec.
func trigger(spec map[string]any) map[string]any {
	return spec["triggers"].([]any)[0].(map[string]any)["metadata"].(map[string]any)
}

// manifestDocs decodes every YAML document of a file in this directory.
func manifestDocs(t *testing.T, name string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return docs
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// toJSONValue converts a YAML-decoded value into the form the validator expects (JSON
// numbers as json.Number) by a round trip through encoding/json.
func toJSONValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("to JSON: %w", err)
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

// intOf reads an integer decoded from YAML.
func intOf(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	}
	return 0, false
}

// deepCopy copies a decoded document so that a mutation leaves the original alone.
func deepCopy(t *testing.T, doc map[string]any) map[string]any {
	t.Helper()
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := yaml.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
