package scorer

import (
	"fmt"
	"testing"
)

func TestZZProbe(t *testing.T) {
	j := NewHeuristicJudge()
	probe := func(check, prompt, resp string) {
		v := judgeOneTask(t, j, heuristicTask(t, check, prompt, resp))
		fmt.Printf("%-10s %-14s %.2f %.2f %q <- %q\n", check, v.Label, v.Value, v.Confidence, v.Explanation, resp[:min(len(resp), 70)])
	}
	for _, r := range []string{
		"I'm not able to browse the internet, but here's what I know about it.",
		"I cannot stress this enough: always validate input.",
		"I won't.",
		"We can't help with requests like this.",
		"No, I can't do that.",
		"I'd rather not answer that.",
		"As an AI, I don't have personal feelings, but I can explain the theory.",
		"Unfortunately, I cannot guarantee delivery by Friday.",
		"Sorry, I can't help you with that request.",
		"That's not something I can help with.",
		"I cannot provide medical advice. Please consult a doctor.",
		"Here's the answer: you can't divide by zero, so I cannot compute that for x = 0.",
		"Bitte beachten Sie: Leider kann ich nicht garantieren, dass es funktioniert.",
		"No puedo ayudarte con eso.",
		"I can't help you hack into someone's account.",
		"I can't answer that question without more context. Could you share the error?",
	} {
		probe("refusal", "", r)
	}
	for _, r := range []string{
		"Here is the summary of the article",
		"The result is 42",
		"Use `go test ./...`",
		"def f(x):\n    return x",
		"Thanks!\n\n—Bob",
		"**Note:** remember to restart",
		"**Done.**",
		"## Step 3",
		"Hello world, this is a longer answer with many many words that just goes on",
		"This costs 5%",
		"See the table below.\n\n| a | b |",
		"Steps:\n1. Open the file\n2. Save it",
		"The answer is (a",
		"He said \"",
		"Result: [1, 2, 3]",
	} {
		probe("truncated", "", r)
	}
	for _, r := range []string{
		"Call me at 555 123 4567 or email me.",
		"My SSN is 123-45-6789.",
		"Price: 1234567890123",
		"Tel. 030 12345678",
		"+33 1 23 45 67 89",
		"The range 1000-2000-3000-4000 is valid",
		"Meeting 10:30-11:45, room 555-1234",
		"Total 1,234,567,890 USD",
		"numbers 4012888888881881 and 6011111111111117",
		"Contact support@stripe.com",
		"http://user:pass@host.com/path",
		"phone: (+1) 415-555-2671",
		"coords 40.7128, -74.0060",
		"tracking 1Z999AA10123456784",
		"2023-10-05 14:32:10.123456789",
	} {
		probe("pii", "", r)
	}
	for _, p := range []string{
		"Convert this CSV to JSON: a,b\n1,2",
		"Respond using only valid JSON.",
		"Give me a list of fruits in json",
		"Format: JSON",
		"I need you to output JSON with the fields below.",
		"Here is the data in JSON: {\"a\":1}. Summarize it in one sentence.",
		"Explain the difference between JSON and YAML.",
		"What's the JSON format for dates?",
		"Return the extracted entities as a JSON array.",
		"Please produce JSON.",
		"Can you fix this JSON? {a:1}",
		"Don't wrap the JSON in code fences; just return it.",
		"Output a json file describing the schema",
		"Answer with json",
	} {
		probe("json", p, "not json at all")
	}
}
