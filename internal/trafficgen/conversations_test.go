package trafficgen

import (
	"math"
	"strings"
	"testing"
	"time"

	"raterd/consumer"
	"raterd/record"
)

// decodeConversations decodes every line with the consumer's decoder, failing on any error.
func decodeConversations(t *testing.T, lines [][]byte) []*record.Record {
	t.Helper()
	out := make([]*record.Record, len(lines))
	for i, l := range lines {
		r, err := consumer.Decode(l, record.Source{Topic: "conversations"}, time.Unix(1, 0), 0)
		if err != nil {
			t.Fatalf("line %d: consumer.Decode: %v\n%s", i, err, l)
		}
		out[i] = r
	}
	return out
}

// byConversation groups decoded records by conversation id, in line order.
func byConversation(recs []*record.Record) map[string][]*record.Record {
	m := map[string][]*record.Record{}
	for _, r := range recs {
		m[r.ConversationID] = append(m[r.ConversationID], r)
	}
	return m
}

func TestConversationsDeterministic(t *testing.T) {
	o := DefaultConversationOptions()
	o.Count = 80
	a, b := Conversations(o), Conversations(o)
	if !equalLines(a, b) {
		t.Fatal("equal options gave different lines")
	}
	o.Seed = 2
	if equalLines(a, Conversations(o)) {
		t.Fatal("another seed gave the same lines")
	}
	// Conversation k's content depends only on Seed and k, not on Count: the first turn of
	// conversation 0 is the same whatever the count (the outcome label may differ).
	o.Seed = DefaultConversationOptions().Seed
	o.Count = 3
	first := func(lines [][]byte) string {
		for _, r := range decodeConversations(t, lines) {
			if r.ID == "conv-000000-t1" {
				return r.PromptText()
			}
		}
		return ""
	}
	if p, q := first(a), first(Conversations(o)); p == "" || p != q {
		t.Fatalf("conversation 0 differs with Count: %q vs %q", p, q)
	}
}

func TestConversationLinesKeys(t *testing.T) {
	o := DefaultConversationOptions()
	o.Count = 30
	keys, values := ConversationLines(o)
	if len(keys) != len(values) || !equalLines(values, Conversations(o)) {
		t.Fatalf("%d keys, %d values; values must equal Conversations'", len(keys), len(values))
	}
	for i, r := range decodeConversations(t, values) {
		if string(keys[i]) != r.ConversationID {
			t.Fatalf("line %d: key %q, conversation %q", i, keys[i], r.ConversationID)
		}
	}
}

func TestConversationsShape(t *testing.T) {
	o := DefaultConversationOptions()
	o.Count = 300
	lines := Conversations(o)
	recs := decodeConversations(t, lines)
	ids := map[string]bool{}
	var prev time.Time
	for i, r := range recs {
		if ids[r.ID] {
			t.Fatalf("line %d: id %s repeated", i, r.ID)
		}
		ids[r.ID] = true
		if r.Timestamp.Before(prev) {
			t.Fatalf("line %d: timestamp %s before the previous line's %s", i, r.Timestamp, prev)
		}
		prev = r.Timestamp
		if r.App != "helpdesk" && r.App != "billing" {
			t.Fatalf("line %d: app %q", i, r.App)
		}
		if r.Prompt != "" || r.Response == "" {
			t.Fatalf("line %d: prompt %q, response %q", i, r.Prompt, r.Response)
		}
	}
	convs := byConversation(recs)
	if len(convs) != o.Count {
		t.Fatalf("%d conversations, want %d", len(convs), o.Count)
	}
	turns := map[int]int{}
	for id, turnsOf := range convs {
		n := len(turnsOf)
		turns[n]++
		if n < 2 || n > 6 {
			t.Fatalf("%s: %d turns", id, n)
		}
		for j, r := range turnsOf {
			if want := id + "-t" + string(rune('1'+j)); r.ID != want {
				t.Fatalf("%s turn %d: id %s, want %s", id, j, r.ID, want)
			}
			if r.Model != turnsOf[0].Model || r.App != turnsOf[0].App || r.Metadata[MetaOutcome] != turnsOf[0].Metadata[MetaOutcome] {
				t.Fatalf("%s: model, app or outcome changes within the conversation", id)
			}
			// system, then user/assistant alternating, ending with this turn's user message;
			// the assistant messages are the earlier turns' responses.
			if len(r.Messages) != 2+2*j || r.Messages[0].Role != "system" {
				t.Fatalf("%s turn %d: %d messages", id, j, len(r.Messages))
			}
			for m, msg := range r.Messages[1:] {
				want := "user"
				if m%2 == 1 {
					want = "assistant"
					if msg.Content != turnsOf[m/2].Response {
						t.Fatalf("%s turn %d: assistant message %d is not turn %d's response", id, j, m, m/2)
					}
				}
				if msg.Role != want || msg.Content == "" {
					t.Fatalf("%s turn %d: message %d is %q %q", id, j, m, msg.Role, msg.Content)
				}
			}
			if j > 0 {
				gap := r.Timestamp.Sub(turnsOf[j-1].Timestamp)
				if gap < o.MaxTurnGap/12 || gap > o.MaxTurnGap {
					t.Fatalf("%s turn %d: %s after the previous turn", id, j, gap)
				}
			}
			if _, ok := r.Metadata[MetaConversationEnd]; ok && j != n-1 {
				t.Fatalf("%s: end marker on turn %d of %d", id, j, n)
			}
		}
	}
	for n := 2; n <= 6; n++ {
		if turns[n] == 0 {
			t.Errorf("no conversation of %d turns in %d", n, o.Count)
		}
	}
}

func TestConversationOutcomeProportions(t *testing.T) {
	for _, count := range []int{1, 7, 100, 333} {
		o := DefaultConversationOptions()
		o.Count = count
		convs := byConversation(decodeConversations(t, Conversations(o)))
		got := map[string]int{}
		for _, turnsOf := range convs {
			got[turnsOf[0].Metadata[MetaOutcome]]++
		}
		want := OutcomeCounts(count)
		total := 0
		for k, n := range want {
			total += n
			if got[k] != n {
				t.Errorf("count %d: %d %s conversations, want %d", count, got[k], k, n)
			}
		}
		if total != count {
			t.Errorf("OutcomeCounts(%d) sums to %d", count, total)
		}
	}
	if c := OutcomeCounts(1000); c[OutcomeResolved] != 500 || c[OutcomeUnresolved] != 200 || c[OutcomeFrustrated] != 150 || c[OutcomeRepetitive] != 150 {
		t.Fatalf("OutcomeCounts(1000) = %v", c)
	}
}

func TestConversationOutcomeContent(t *testing.T) {
	o := DefaultConversationOptions()
	o.Count = 400
	convs := byConversation(decodeConversations(t, Conversations(o)))
	caps := 0
	for id, turnsOf := range convs {
		last := turnsOf[len(turnsOf)-1]
		user := last.Messages[len(last.Messages)-1].Content
		var users []string
		for _, m := range last.Messages {
			if m.Role == "user" {
				users = append(users, m.Content)
			}
		}
		switch outcome := last.Metadata[MetaOutcome]; outcome {
		case OutcomeResolved:
			if !contains(thanks, user) || !contains(confirmations, last.Response) {
				t.Fatalf("%s resolved: ends with %q / %q", id, user, last.Response)
			}
		case OutcomeUnresolved:
			if !contains(deferrals, last.Response) && !contains(stillBroken, user) {
				t.Fatalf("%s unresolved: ends with %q / %q", id, user, last.Response)
			}
		case OutcomeFrustrated:
			if !contains(humanRequests, user) {
				t.Fatalf("%s frustrated: ends with %q", id, user)
			}
			said := map[string]int{}
			for _, u := range users {
				if said[u]++; said[u] > 2 {
					t.Fatalf("%s frustrated: the user says %q three times", id, u)
				}
			}
			for _, u := range users[1:] {
				if u == users[0] || strings.Contains(strings.ToLower(u), "already told you") || u == strings.ToUpper(u) {
					caps++
					break
				}
			}
		case OutcomeRepetitive:
			if first := turnsOf[0].Response; last.Response != first || len(turnsOf) < 2 {
				t.Fatalf("%s repetitive: last answer is not the first one verbatim", id)
			}
		default:
			t.Fatalf("%s: outcome %q", id, outcome)
		}
	}
	if caps == 0 {
		t.Fatal("no frustrated conversation repeats the question, says \"already told you\" or shouts")
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func TestConversationEndMarkerShare(t *testing.T) {
	tests := []struct {
		share float64
		count int
	}{{0, 50}, {0.6, 200}, {0.25, 81}, {1, 30}}
	for _, tt := range tests {
		o := DefaultConversationOptions()
		o.Count, o.EndMarkerShare = tt.count, tt.share
		convs := byConversation(decodeConversations(t, Conversations(o)))
		ended := 0
		for _, turnsOf := range convs {
			if turnsOf[len(turnsOf)-1].Metadata[MetaConversationEnd] == "true" {
				ended++
			}
		}
		if want := int(math.Round(tt.share * float64(tt.count))); ended != want {
			t.Errorf("share %g of %d: %d end markers, want %d", tt.share, tt.count, ended, want)
		}
	}
}

func TestConversationsInterleave(t *testing.T) {
	tests := []struct {
		name       string
		spacing    time.Duration
		interleave bool
	}{
		{"default spacing", 0, true},
		{"an hour apart", time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultConversationOptions()
			o.Count, o.Spacing = 40, tt.spacing
			recs := decodeConversations(t, Conversations(o))
			// A conversation interleaves when another conversation's line lies between its
			// first and last line.
			switches, seen := 0, map[string]bool{}
			for i, r := range recs {
				if i > 0 && r.ConversationID != recs[i-1].ConversationID {
					switches++
					if seen[r.ConversationID] && !tt.interleave {
						t.Fatalf("line %d: %s resumes after another conversation", i, r.ConversationID)
					}
				}
				seen[r.ConversationID] = true
			}
			if tt.interleave && switches < len(recs)/2 {
				t.Fatalf("%d conversation switches in %d lines: barely interleaved", switches, len(recs))
			}
			if !tt.interleave && switches != o.Count-1 {
				t.Fatalf("%d conversation switches, want %d", switches, o.Count-1)
			}
		})
	}
}

func TestConversationValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*ConversationOptions)
		want []string // substrings of the error; nil: valid
	}{
		{"defaults", func(*ConversationOptions) {}, nil},
		{"zeros", func(o *ConversationOptions) { *o = ConversationOptions{} }, nil},
		{"negative count", func(o *ConversationOptions) { o.Count = -1 }, []string{"count"}},
		{"share", func(o *ConversationOptions) { o.EndMarkerShare = 1.5 }, []string{"end_marker_share"}},
		{"NaN share", func(o *ConversationOptions) { o.EndMarkerShare = math.NaN() }, []string{"end_marker_share"}},
		{"several", func(o *ConversationOptions) { o.Spacing, o.MaxTurnGap = -time.Second, -time.Second }, []string{"spacing", "max_turn_gap"}},
		{"out of range", func(o *ConversationOptions) { o.Start = time.Date(9999, 12, 31, 23, 59, 0, 0, time.UTC) }, []string{"start"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultConversationOptions()
			tt.mod(&o)
			err := o.Validate()
			if (err == nil) != (tt.want == nil) {
				t.Fatalf("Validate() = %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			// Whatever the options, the output decodes.
			o.Count = min(max(o.Count, 0), 5)
			decodeConversations(t, Conversations(o))
		})
	}
}

func TestConversationsZeroCount(t *testing.T) {
	keys, values := ConversationLines(ConversationOptions{})
	if len(keys) != 0 || len(values) != 0 {
		t.Fatalf("%d keys, %d values for count 0", len(keys), len(values))
	}
}

func BenchmarkConversations(b *testing.B) {
	o := DefaultConversationOptions()
	lines := 0
	for b.Loop() {
		lines = len(Conversations(o))
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
