package checks

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// runCheck runs the check called name on a prompt and response as the heuristic judge
// does with the check's default fields (only json reads the prompt), and checks the
// invariants that hold for every result.
func runCheck(t testing.TB, set *Set, name, prompt, response string) Result {
	t.Helper()
	c, ok := set.Lookup(name)
	if !ok {
		t.Fatalf("no check %q", name)
	}
	v := c.Run(Input{Response: response, Prompt: prompt, HasPrompt: c.Reads(FieldPrompt)})
	if v.Value < 0 || v.Value > 1 || v.Confidence < 0 || v.Confidence > 1 {
		t.Fatalf("value %v / confidence %v out of [0,1]", v.Value, v.Confidence)
	}
	if v.Label == "" || v.Explanation == "" {
		t.Fatalf("incomplete result %+v", v)
	}
	return v
}

type heuristicCase struct {
	name     string
	prompt   string
	response string
	label    string
}

func runHeuristicCases(t *testing.T, check string, cases []heuristicCase) {
	t.Helper()
	set := New()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := runCheck(t, set, check, c.prompt, c.response)
			if v.Label != c.label {
				t.Errorf("label = %q, want %q (value %v, %s)", v.Label, c.label, v.Value, v.Explanation)
			}
		})
	}
}

func TestHeuristicRefusal(t *testing.T) {
	long := "I can't provide legal advice, but here is some general information. " + strings.Repeat("Contracts generally need an offer, acceptance and consideration to be binding. ", 15)
	runHeuristicCases(t, NameRefusal, []heuristicCase{
		// refusals
		{"cant help", "", "I can't help with that.", "refusal"},
		{"sorry but cannot", "", "I'm sorry, but I cannot fulfill this request.", "refusal"},
		{"sorry but cannot bare", "", "I'm sorry, but I cannot.", "refusal"},
		{"as an ai", "", "As an AI language model, I cannot form personal opinions about politicians.", "refusal"},
		{"wont be able", "", "Unfortunately I won't be able to help you write that email.", "refusal"},
		{"curly apostrophe", "", "I’m not able to assist with creating malware.", "refusal"},
		{"policy", "", "Sorry. That request violates my guidelines, so I will not continue.", "refusal"},
		{"content policy", "", "This request goes against the content policy and cannot be completed.", "refusal"},
		{"must decline", "", "I must respectfully decline to write that.", "refusal"},
		{"greeting first", "", "Hi there! Thanks for your message. Unfortunately, I'm unable to provide that information.", "refusal"},
		{"partial refusal long", "", long, "refusal"},
		{"spanish", "", "Lo siento, pero no puedo ayudarte con eso.", "refusal"},
		{"french", "", "Désolé, mais je ne peux pas vous aider avec cette demande.", "refusal"},
		{"german", "", "Es tut mir leid, aber ich kann Ihnen dabei nicht helfen.", "refusal"},
		{"chinese", "", "抱歉，我无法帮助你完成这个请求。", "refusal"},
		{"japanese", "", "申し訳ありませんが、そのご依頼にはお応えできません。", "refusal"},
		{"russian", "", "Извините, но я не могу помочь с этим.", "refusal"},
		{"rather not", "", "I'd rather not discuss that topic.", "refusal"},
		{"we cannot", "", "Sorry, we can't help with requests like this.", "refusal"},
		// answers, including phrases that look like refusals
		{"plain answer", "", "The capital of France is Paris.", "answered"},
		{"cant stress", "", "I can't stress enough how important it is to back up your data. Here is how to do it.", "answered"},
		{"cant help but", "", "I can't help but notice that your loop never terminates. Change the condition to i < n.", "answered"},
		{"cannot guarantee", "", "Here is a script that should work. I cannot guarantee it runs on Windows, but it works on Linux.", "answered"},
		{"refusal late", "", "Sure! Here is the recipe. Mix flour and water. Bake for 20 minutes. Note that I cannot help with allergies.", "answered"},
		{"third party cant", "", "The server can't handle that many connections, so increase the pool size.", "answered"},
		{"cant wait", "", "I can't wait to see what you build with this! Start by installing the SDK.", "answered"},
		{"company policy", "", "Sharing passwords violates the company's security policy, so use a password manager instead.", "answered"},
		{"empty", "", "", "answered"},
		{"cant recommend enough", "", "I cannot recommend this book enough. It covers everything.", "answered"},
		{"hedge", "", "I can't answer for sure, but it is most likely a DNS problem.", "answered"},
		{"clarification", "", "I can't help with that without more context. Which version of Go are you using?", "answered"},
		{"capability disclaimer", "", "I'm not able to browse the internet, but here is what the docs said as of 2024.", "answered"},
	})
}

func TestHeuristicEmpty(t *testing.T) {
	runHeuristicCases(t, NameEmpty, []heuristicCase{
		{"empty string", "", "", "empty"},
		{"whitespace", "", " \n\t  \r\n", "empty"},
		{"punctuation", "", "...", "empty"},
		{"punct and symbols", "", " - * ``` ``` |", "empty"},
		{"zero width", "", "\u200b\ufeff \u00a0", "empty"},
		{"special tokens", "", "<|endoftext|> </s>", "empty"},
		{"null", "", "null", "empty"},
		{"filler", "", "Um... hmm.", "empty"},
		{"n/a", "", "N/A", "empty"},
		// content
		{"word", "", "Yes", "non_empty"},
		{"none is an answer", "", "None.", "non_empty"},
		{"number", "", "42", "non_empty"},
		{"emoji", "", "👍", "non_empty"},
		{"cjk", "", "是的", "non_empty"},
		{"sentence", "", "  The answer is below.  ", "non_empty"},
		{"code", "", "```\nx = 1\n```", "non_empty"},
		{"bracket word", "", "[note] see above", "non_empty"},
	})
}

func TestHeuristicTruncated(t *testing.T) {
	runHeuristicCases(t, NameTruncated, []heuristicCase{
		{"mid sentence", "", "To configure the server, open the settings file and change the port value to the number you", "truncated"},
		{"function word", "", "First install the package. Then run the tests and", "truncated"},
		{"comma", "", "Here are the steps: download, unpack,", "truncated"},
		{"unclosed fence", "", "Here is the code:\n```go\nfunc main() {\n\tfmt.Println(\"hi\")\n", "truncated"},
		{"unclosed json", "", "{\"name\": \"Ada\", \"langs\": [\"en\", \"fr\"", "truncated"},
		{"unclosed json string", "", "{\"name\": \"Ad", "truncated"},
		{"colon", "", "The three options are as follows:", "truncated"},
		{"empty list item", "", "Steps:\n1. Install\n2.", "truncated"},
		{"chinese mid", "", "首先安装这个软件包，然后运行测试并且检查所有的输出结果是否", "truncated"},
		// complete
		{"full stop", "", "The capital of France is Paris.", "complete"},
		{"closed fence", "", "Here is the code:\n```go\nfmt.Println(\"hi\")\n```", "complete"},
		{"json object", "", "{\"name\": \"Ada\", \"langs\": [\"en\"]}", "complete"},
		{"list", "", "You will need:\n- flour\n- water\n- salt", "complete"},
		{"emoji", "", "Good luck with the launch 🚀", "complete"},
		{"cjk full stop", "", "首先安装这个软件包，然后运行测试。", "complete"},
		{"short answer", "", "Paris", "complete"},
		{"number answer", "", "42.", "complete"},
		{"nested fence", "", "1. Install:\n    ```sh\n    go install ./...\n    ```\n2. Run it", "complete"},
		{"closing quote", "", "He said \"that's fine.\"", "complete"},
		{"paren", "", "Use the default value (which is 10)", "complete"},
		{"table", "", "| a | b |\n|---|---|\n| 1 | 2 |", "complete"},
		{"url", "", "The docs are here:\nhttps://go.dev/doc", "complete"},
		{"sign off", "", "Let me know if that helps!\n\nBest,\nAlice", "complete"},
		{"empty", "", "", "complete"},
		{"question", "", "Would you like me to go on?", "complete"},
		{"c plus plus", "", "For this workload I recommend C++", "complete"},
		{"sql", "", "SELECT name FROM users WHERE age > 30;", "complete"},
		{"inline code", "", "Run the tests with `go test ./...`", "complete"},
		{"dangling dash", "", "The main trade-offs are speed, memory and -", "truncated"},
		{"open paren", "", "You can set the timeout (in seconds, default", "truncated"},
	})
}

func TestHeuristicRepetition(t *testing.T) {
	prose := "Go is a statically typed, compiled language designed at Google. It is syntactically similar to C, but adds memory safety, garbage collection, structural typing and CSP-style concurrency. " +
		"The language is often used for networked services, command line tools and cloud infrastructure, where its fast builds and simple deployment matter. " +
		"Its standard library covers HTTP, JSON, cryptography and testing, so many programs need few dependencies."
	loopTail := prose + " " + strings.Repeat("And then the model kept saying the very same sentence again and again without stopping. ", 12)
	runHeuristicCases(t, NameRepetition, []heuristicCase{
		{"word loop", "", strings.Repeat("the ", 200), "degenerate"},
		{"sentence loop", "", strings.Repeat("I am sorry, I cannot do that right now. ", 30), "degenerate"},
		{"paragraph twice", "", prose + " " + prose + " " + prose, "degenerate"},
		{"tail loop", "", loopTail, "degenerate"},
		{"case folded", "", strings.Repeat("Hello World foo BAR ", 10) + strings.Repeat("hello world FOO bar ", 10), "degenerate"},
		{"cjk loop", "", strings.Repeat("我们今天去公园玩。", 20), "degenerate"},
		// fine
		{"prose", "", prose, "ok"},
		{"short loop", "", "yes yes yes yes yes", "ok"},
		{"short", "", "Sure, here you go.", "ok"},
		{"empty", "", "", "ok"},
		{"list with shared prefixes", "", "1. Install the package with go get.\n2. Install the linter with brew.\n3. Install the editor plugin from the marketplace.\n4. Configure the linter in your settings.\n5. Run the tests before every commit.\n6. Read the style guide once.", "ok"},
		{"quoted once", "", prose + " To repeat the key point: Go is a statically typed, compiled language designed at Google.", "ok"},
	})
	// The value is graded: 1 - repeated share.
	v := runCheck(t, New(), NameRepetition, "", prose+" "+prose)
	if v.Value < 0.4 || v.Value > 0.6 {
		t.Errorf("text said twice: value %v, want about 0.5 (%s)", v.Value, v.Explanation)
	}
}

func TestHeuristicPII(t *testing.T) {
	runHeuristicCases(t, NamePII, []heuristicCase{
		{"email", "", "You can reach her at jane.doe+work@acme-corp.co.uk for details.", "pii"},
		{"phone us", "", "Call (555) 123-4567 after 5pm.", "pii"},
		{"phone dashes", "", "His number is 555-123-4567.", "pii"},
		{"phone intl", "", "Phone: +44 20 7946 0958", "pii"},
		{"phone intl compact", "", "WhatsApp me on +14155552671 any time.", "pii"},
		{"phone nanp trunk", "", "Dial 1-800-555-0199 to order.", "pii"},
		{"phone fr", "", "Mon numéro: 01 23 45 67 89", "pii"},
		{"phone cue unbroken", "", "mobile 07700900123", "pii"},
		{"card visa spaced", "", "The card 4242 4242 4242 4242 was declined.", "pii"},
		{"card dashes", "", "Use 5555-5555-5555-4444 for the test.", "pii"},
		{"card unbroken", "", "cc=4111111111111111 exp 12/29", "pii"},
		{"card amex", "", "Amex 3782 822463 10005 on file.", "pii"},
		{"phone chinese", "", "请拨打电话：13812345678。", "pii"},
		{"phone fullwidth comma", "", "号码是 138-1234-5678，谢谢", "pii"},
		// clean
		{"prose", "", "The meeting is on Tuesday at 10am in room 4.", "clean"},
		{"non luhn card", "", "Reference 4242 4242 4242 4241 is not a card.", "clean"},
		{"date", "", "Released on 2024-01-15 and patched 2024-02-01.", "clean"},
		{"datetime", "", "Logged at 2024-01-15 10 30 by cron.", "clean"},
		{"version", "", "Upgrade to version 10.0.19041.1234 first.", "clean"},
		{"ip", "", "The server listens on 192.168.100.200 port 8080.", "pii"},
		{"loopback", "", "The server listens on 127.0.0.1 port 8080.", "clean"},
		{"iban", "", "Überweisung an DE89 3704 0044 0532 0130 00.", "pii"},
		{"iban bad checksum", "", "Überweisung an DE89 3704 0044 0532 0130 01.", "clean"},
		{"ssn", "", "SSN 123-45-6789 on file.", "pii"},
		{"ssn invalid area", "", "Ticket 666-45-6789 on file.", "clean"},
		{"order id", "", "Your order 1234567890 has shipped.", "clean"},
		{"order id glued", "", "Order ORD-555-123-4567 has shipped.", "clean"},
		{"timestamp", "", "epoch 1700000000000 ms", "clean"},
		{"thousands", "", "The population is 12 345 678 901 people.", "clean"},
		{"example email", "", "Use user@example.com as a placeholder.", "clean"},
		{"git remote", "", "Clone git@github.com:golang/go.git to start.", "clean"},
		{"retina image", "", "Add icon@2x.png to the bundle.", "clean"},
		{"decorator", "", "Annotate with @Override and @Deprecated.", "clean"},
		{"uuid", "", "id 550e8400-e29b-41d4-a716-446655440000", "clean"},
		{"decimal", "", "pi is 3.14159265358979 roughly", "clean"},
		{"isbn", "", "ISBN 0-306-40615-2", "clean"},
		{"glued to letters", "", "SKU ab5551234567x", "clean"},
	})
}

func TestHeuristicPIIExplanationRedacts(t *testing.T) {
	resp := "Mail bob.smith@corp.io or call +1 415 555 2671; card 4242-4242-4242-4242; host 81.2.69.160; IBAN GB82WEST12345698765432; SSN 123-45-6789."
	v := runCheck(t, New(), NamePII, "", resp)
	if v.Label != "pii" || v.Value != 0 {
		t.Fatalf("got %+v", v)
	}
	for _, leak := range []string{"bob", "corp", "415", "2671", "4242", "81.2", "GB82", "6789"} {
		if strings.Contains(v.Explanation, leak) {
			t.Errorf("explanation %q leaks %q", v.Explanation, leak)
		}
	}
	for _, kind := range []string{"email×1", "phone×1", "card×1", "ip×1", "iban×1", "us_ssn×1"} {
		if !strings.Contains(v.Explanation, kind) {
			t.Errorf("explanation %q lacks %q", v.Explanation, kind)
		}
	}
}

func TestHeuristicJSON(t *testing.T) {
	const obj = `{"name": "Ada", "age": 36}`
	runHeuristicCases(t, NameJSON, []heuristicCase{
		// asked, valid
		{"respond in json", "Extract the person. Respond in JSON.", obj, "valid_json"},
		{"return object", "Return a JSON object with keys name and age.", " \n" + obj + "\n", "valid_json"},
		{"fenced", "Output valid JSON only.", "```json\n" + obj + "\n```", "valid_json"},
		{"fenced with prose", "Give me the result as JSON.", "Here you go:\n\n```json\n" + obj + "\n```\nLet me know!", "valid_json"},
		{"array", "List three colours in JSON format.", `["red", "green", "blue"]`, "valid_json"},
		{"must be", "Your answer must be valid JSON.", obj, "valid_json"},
		// asked, invalid
		{"prose answer", "Respond in JSON.", "The person is Ada, aged 36.", "invalid_json"},
		{"trailing comma", "Return a JSON object.", `{"name": "Ada",}`, "invalid_json"},
		{"truncated", "Output valid JSON.", `{"name": "Ada", "age":`, "invalid_json"},
		{"single quotes", "Answer as JSON.", `{'name': 'Ada'}`, "invalid_json"},
		{"two blocks", "Return the data as JSON.", "```json\n{}\n```\nor\n```json\n[]\n```", "invalid_json"},
		{"bad fenced", "Please reply with a JSON object.", "```json\n{name: Ada}\n```", "invalid_json"},
		{"empty response", "Output JSON only.", "", "invalid_json"},
		// not asked
		{"no json", "What is the capital of France?", "Paris.", "not_requested"},
		{"about json", "What is JSON and why is it popular?", "JSON is a text format.", "not_requested"},
		{"parser", "Write a JSON parser in Go.", "package main", "not_requested"},
		{"how to return", "How do I return JSON from a Flask route?", "Use jsonify.", "not_requested"},
		{"function that returns", "Write a function that returns JSON for a user.", "def f(): ...", "not_requested"},
		{"negated", "Summarise this. Do not respond in JSON, use plain prose.", "A summary.", "not_requested"},
		{"stored as", "Our config is stored as JSON. Why is startup slow?", "Parsing is slow.", "not_requested"},
		{"plain not json", "Answer in plain text, not JSON.", "Fine.", "not_requested"},
	})
}

// TestHeuristicJSONWithoutPrompt: when the caller may not read the prompt, JSON is
// always expected, whatever the prompt says.
func TestHeuristicJSONWithoutPrompt(t *testing.T) {
	c, _ := New().Lookup(NameJSON)
	for _, tc := range []struct{ prompt, response, label string }{
		{"What is 2+2?", "4", "valid_json"},
		{"What is 2+2?", "four", "invalid_json"},
		{"Do not respond in JSON.", "{}", "valid_json"},
	} {
		v := c.Run(Input{Response: tc.response, Prompt: tc.prompt})
		if v.Label != tc.label || !strings.Contains(v.Explanation, "does not read the prompt") {
			t.Errorf("prompt %q, response %q: got %q: %s", tc.prompt, tc.response, v.Label, v.Explanation)
		}
	}
}

// TestRegistry: Names is sorted and complete, every check is found; the record checks
// read the response, only json reads the prompt; the transcript checks read the
// transcript (grounded_answer the response too) and have the scope of their records.
func TestRegistry(t *testing.T) {
	names := Names()
	if !slices.IsSorted(names) || len(names) != 11 {
		t.Errorf("Names = %v", names)
	}
	names[0] = "changed"
	if Names()[0] == "changed" {
		t.Error("Names returns a shared slice")
	}
	set := New()
	for _, name := range Names() {
		c, ok := set.Lookup(name)
		if !ok || c.Name != name {
			t.Fatalf("Lookup(%q) = %v, %v", name, c, ok)
		}
		want, scope := []string{FieldResponse}, ScopeRecord
		switch name {
		case NameJSON:
			want = []string{FieldPrompt, FieldResponse}
		case NameTurnRepetition, NameUnresolved, NameFrustration:
			want, scope = []string{FieldTranscript}, ScopeConversation
		case NameToolCalls:
			want, scope = []string{FieldTranscript}, ScopeTrace
		case NameGroundedAnswer:
			want, scope = []string{FieldResponse, FieldTranscript}, ScopeTrace
		}
		if got := Fields(name); !slices.Equal(got, want) || !slices.Equal(c.Fields, want) {
			t.Errorf("Fields(%q) = %v, row %v, want %v", name, got, c.Fields, want)
		}
		if got := Scope(name); got != scope || c.Scope != scope {
			t.Errorf("Scope(%q) = %q, row %q, want %q", name, got, c.Scope, scope)
		}
		if c.Reads(FieldResponse) != slices.Contains(want, FieldResponse) || c.Reads(FieldPrompt) != (name == NameJSON) ||
			c.Reads(FieldTranscript) != (scope != ScopeRecord) {
			t.Errorf("%s: Reads disagrees with its fields %v", name, c.Fields)
		}
	}
	if _, ok := set.Lookup("sentiment"); ok {
		t.Error("Lookup found an unknown check")
	}
	if Fields("sentiment") != nil || Scope("sentiment") != "" {
		t.Error("Fields or Scope of an unknown check is set")
	}
}

// benchResponse builds a realistic assistant answer of about n bytes: Markdown prose with
// a list and a code block, some numbers and no loops.
func benchResponse(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("the service reads records from kafka and scores each response with a judge model before writing rows to clickhouse where dashboards show quality trends over time for every deployed model version and application route including latency errors and cost per request")
	var b strings.Builder
	b.WriteString("Sure! Here is an overview of how the pipeline works.\n\n")
	for b.Len() < n {
		switch r.IntN(10) {
		case 0:
			b.WriteString("\n```go\nfunc score(r *Record) float64 {\n\treturn judge(r.Prompt, r.Response)\n}\n```\n\n")
		case 1:
			fmt.Fprintf(&b, "- step %d takes %d ms on average\n", r.IntN(100), r.IntN(1000))
		default:
			k := 8 + r.IntN(15)
			for i := 0; i < k; i++ {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(words[r.IntN(len(words))])
			}
			b.WriteString(". ")
		}
	}
	b.WriteString("\n\nLet me know if you need more detail.")
	return b.String()
}

func BenchmarkHeuristic(b *testing.B) {
	set := New()
	sizes := []struct {
		name string
		resp string
	}{{"1.5KB", benchResponse(1500)}, {"100KB", benchResponse(100 << 10)}}
	for _, check := range Names() {
		for _, sz := range sizes {
			b.Run(check+"/"+sz.name, func(b *testing.B) {
				c, ok := set.Lookup(check)
				if !ok {
					b.Fatalf("no check %q", check)
				}
				in := Input{Response: sz.resp, Prompt: "Summarise the design and respond in JSON with keys summary and risks.", HasPrompt: c.Reads(FieldPrompt)}
				b.SetBytes(int64(len(sz.resp)))
				b.ReportAllocs()
				for b.Loop() {
					if r := c.Run(in); r.Label == "" {
						b.Fatalf("%s: incomplete result %+v", check, r)
					}
				}
			})
		}
	}
}
