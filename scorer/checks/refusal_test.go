package checks

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"raterd/internal/trafficgen"
	"raterd/record"
)

// refusalSentences are openings that match refusal rules of every language, and
// near-misses that do not.
var refusalSentences = []string{
	"I can't help with that.", "I'm sorry, but I cannot fulfill this request.", "I'm sorry, but I cannot.",
	"As an AI language model, I cannot form personal opinions about politicians.",
	"Unfortunately I won't be able to help you write that email.", "I’m not able to assist with creating malware.",
	"Sorry. That request violates my guidelines, so I will not continue.",
	"This request goes against the content policy and cannot be completed.", "I must respectfully decline to write that.",
	"I decline to answer.", "I refuse to do that.", "I'll have to pass on this one.", "I must refrain from commenting.",
	"Hi there! Thanks for your message. Unfortunately, I'm unable to provide that information.",
	"We are not allowed to share customer data.", "I am not permitted to disclose that.", "I'm not going to write that.",
	"I do not feel comfortable writing this.", "I shouldn't share that.", "We must not provide that.",
	"That is not something I can help with.", "It's not something we are able to support.", "I'd rather not discuss that topic.",
	"This is not allowed by our terms.", "That breaches our policy.", "It is in violation of the usage policy.",
	"Lo siento, pero no puedo ayudarte con eso.", "No puedo proporcionar esa información.",
	"Desculpe, mas não posso ajudar.", "Não posso fornecer isso.", "Lamento, eu não consigo.",
	"Désolé, mais je ne peux pas vous aider avec cette demande.", "Je ne suis pas en mesure de répondre.",
	"Non posso aiutarti.", "Mi dispiace, ma non sono in grado.", "Mi dispiace, ma non mi è possibile.",
	"Es tut mir leid, aber ich kann Ihnen dabei nicht helfen.", "Leider darf ich das nicht beantworten.",
	"Ich kann Ihnen leider nicht helfen.", "Извините, но я не могу помочь с этим.", "Я не могу помочь.",
	"抱歉，我无法帮助你完成这个请求。", "我不能提供这个。", "申し訳ありませんが、そのご依頼にはお応えできません。",
	"お手伝いできません。", "도와드릴 수 없습니다.", "죄송합니다, 그 요청은 처리할 수 없습니다.",
	// answers, some with refusal words
	"The capital of France is Paris.", "I can't stress enough how important backups are.",
	"I can't help but notice that your loop never terminates.", "I cannot guarantee it runs on Windows.",
	"The server can't handle that many connections.", "I can't wait to see what you build!",
	"This violates the company's security policy, so rotate the key.", "Je ne sais pas encore, mais voici une piste.",
	"We won't charge you twice.", "Ich kann das gerne erklären.", "Я не знаю точно, но попробуйте так.",
}

// clarifySentences ask for more information, some after a refusal; and near-misses.
var clarifySentences = []string{
	"I can't answer that without more context. Could you share the error?", "Without seeing the code, I cannot tell.",
	"I'd need more details to help.", "I would need the logs.", "Until I have more information, I won't guess.",
	"I cannot help without access to your account.", "We can do it without more data.", "Hi need more details",
	"i need your specifics", "withoutmore context", "I’d need more context.",
}

// TestClarifies: the clarification check, gated and anchored at its start words, answers
// what its pattern answers on the refusal corpus and the clarification sentences.
func TestClarifies(t *testing.T) {
	rf := New().refusal
	texts := refusalCorpus(t, rf)
	for _, s := range clarifySentences {
		texts = append(texts, normalize(s), normalize("I'm sorry, but "+s))
	}
	n := 0
	for _, lower := range texts {
		got, want := rf.clarifies(lower), rf.clarify.MatchString(lower)
		if got != want {
			t.Errorf("clarifies(%q) = %v, the pattern says %v", lower, got, want)
		}
		if want {
			n++
		}
	}
	if n < 10 {
		t.Errorf("only %d clarifications in the corpus", n)
	}
}

// apostrophes is the normalisation the refusal rules expect, as the check did it before
// normalize: the reference normalize must agree with.
var apostrophes = strings.NewReplacer("’", "'", "‘", "'", "ʼ", "'", "`", "'")

// refusalCorpus returns lower-cased, apostrophe-normalised openings as the check reads
// them: refusalSentences, the same with a greeting or apology in front, and the responses
// of generated traffic.
func refusalCorpus(t *testing.T, rf *refusalMatcher) []string {
	t.Helper()
	var texts []string
	for _, s := range refusalSentences {
		texts = append(texts, s, "Sorry, "+s, "Thanks for asking. "+s+" Here is more.")
	}
	for _, line := range trafficgen.Generate(trafficgen.Options{Seed: 3, Count: 3000, ExactRepeats: true, DistinctPrompts: 2000}) {
		var rec record.Record
		if json.Unmarshal(line, &rec) == nil {
			texts = append(texts, rec.Response)
		}
	}
	for _, line := range trafficgen.Generate(trafficgen.Options{Seed: 4, Count: 3000}) {
		var rec record.Record
		if json.Unmarshal(line, &rec) == nil {
			texts = append(texts, rec.Response)
		}
	}
	out := make([]string, len(texts))
	for i, s := range texts {
		out[i] = apostrophes.Replace(strings.ToLower(leadingSentences(s, 2, refusalHeadBytes)))
	}
	return out
}

// TestRefusalRuleCues checks the cue of each refusal rule: every match a rule finds in the
// corpus contains one of its cues, and one of its also literals when it has them, so
// gating the rule by them never loses a match; and begins with one of its starts when it
// has them, so running it anchored there never loses one either.
func TestRefusalRuleCues(t *testing.T) {
	cues := refusalCues()
	if len(cues) > 64 {
		t.Fatalf("%d refusal cues; the cue masks hold 64", len(cues))
	}
	rf := New().refusal
	corpus := refusalCorpus(t, rf)
	matched := make([]int, len(refusalRules()))
	for i, r := range refusalRules() {
		if len(r.cues) == 0 {
			t.Errorf("rule %d has no cues: %s", i, r.pattern)
		}
		re := regexp.MustCompile(r.pattern)
		for _, text := range corpus {
			for _, m := range re.FindAllString(text, -1) {
				matched[i]++
				ok := false
				for _, c := range r.cues {
					ok = ok || strings.Contains(m, c)
				}
				if !ok {
					t.Errorf("rule %d matched %q in %q without any of its cues %q", i, m, text, r.cues)
				}
				if len(r.also) > 0 && !slices.ContainsFunc(r.also, func(a string) bool { return strings.Contains(m, a) }) {
					t.Errorf("rule %d matched %q in %q without any of its also literals %q", i, m, text, r.also)
				}
				if len(r.starts) > 0 && !slices.ContainsFunc(r.starts, func(w string) bool { return strings.HasPrefix(m, w) }) {
					t.Errorf("rule %d matched %q in %q, which begins with none of its starts %q", i, m, text, r.starts)
				}
			}
		}
	}
	for i, n := range matched {
		if n == 0 {
			t.Errorf("rule %d matched nothing in the corpus; add a sentence for it: %s", i, refusalRules()[i].pattern)
		}
	}
}

// TestRefusalMatchIsThePattern: running the rules gated by their cues answers exactly
// what the whole alternation answers.
func TestRefusalMatchIsThePattern(t *testing.T) {
	rf := New().refusal
	whole := regexp.MustCompile(refusalPattern())
	refusals := 0
	for _, text := range refusalCorpus(t, rf) {
		got, want := rf.refusalMatch(text), whole.MatchString(text)
		if got != want {
			t.Errorf("refusalMatch(%q) = %v, the whole pattern says %v", text, got, want)
		}
		if want {
			refusals++
		}
	}
	if refusals < 100 {
		t.Errorf("only %d refusals in the corpus", refusals)
	}
}

// FuzzRefusalMatch checks on arbitrary text that the cue-gated rules answer what the whole
// refusal alternation answers, that the one-pass cue scan finds the cues a substring
// search per cue finds, that normalize is ToLower and the apostrophe replacer, and that
// the gated clarification check answers what its pattern does.
func FuzzRefusalMatch(f *testing.F) {
	for _, s := range append(refusalSentences, clarifySentences...) {
		f.Add(s)
	}
	rf := New().refusal
	whole := regexp.MustCompile(refusalPattern())
	f.Fuzz(func(t *testing.T, s string) {
		lower := apostrophes.Replace(strings.ToLower(s))
		if got := normalize(s); got != lower {
			t.Fatalf("normalize(%q) = %q, want %q", s, got, lower)
		}
		if got, want := rf.refusalMatch(lower), whole.MatchString(lower); got != want {
			t.Fatalf("refusalMatch(%q) = %v, the whole pattern says %v", lower, got, want)
		}
		var want uint64
		for i, c := range rf.refusalCues {
			if strings.Contains(lower, c) {
				want |= 1 << i
			}
		}
		if got := rf.refusalCueMask(lower); got != want {
			t.Fatalf("refusalCueMask(%q) = %b, substring search says %b", lower, got, want)
		}
		if got, want := rf.clarifies(lower), rf.clarify.MatchString(lower); got != want {
			t.Fatalf("clarifies(%q) = %v, the pattern says %v", lower, got, want)
		}
	})
}

// BenchmarkRefusalOpenings measures the refusal match on the openings of generated
// traffic: the cue-gated rules (the check) against the whole alternation (before).
func BenchmarkRefusalOpenings(b *testing.B) {
	rf := New().refusal
	var openings []string
	for _, line := range trafficgen.Generate(trafficgen.Options{Seed: 1, Count: 2000, ExactRepeats: true, DistinctPrompts: 2000}) {
		var rec record.Record
		if json.Unmarshal(line, &rec) == nil {
			openings = append(openings, normalize(leadingSentences(rec.Response, 2, refusalHeadBytes)))
		}
	}
	whole := regexp.MustCompile(refusalPattern())
	b.Run("rules", func(b *testing.B) {
		for i := range b.N {
			rf.refusalMatch(openings[i%len(openings)])
		}
	})
	b.Run("whole", func(b *testing.B) {
		for i := range b.N {
			lower := openings[i%len(openings)]
			if rf.refusalCueMask(lower) != 0 {
				whole.MatchString(lower)
			}
		}
	})
}
