package judgesim

import "testing"

// TestPlanMarksFullSteps: a step is full when a sequence waits for a slot, every slot is
// taken, the token budget is used up, or a sequence with a slot waits for KV blocks;
// one short sequence on an idle engine leaves room.
func TestPlanMarksFullSteps(t *testing.T) {
	cases := []struct {
		name     string
		cfg      Config
		prompts  []int
		wantFull bool
	}{
		{"room left", Config{MaxSeqs: 4}, []int{10}, false},
		{"every slot taken", Config{MaxSeqs: 2}, []int{10, 10}, true},
		{"waiting for a slot", Config{MaxSeqs: 1}, []int{10, 10}, true},
		{"token budget used up", Config{MaxSeqs: 4, MaxBatchedTokens: 8}, []int{100}, true},
		{"waiting for KV blocks", Config{MaxSeqs: 4, KVCacheTokens: 4 * BlockTokens}, []int{3 * BlockTokens, 3 * BlockTokens}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(c.cfg)
			g := newGroup(c.prompts, make([]int, len(c.prompts)))
			e.waiting = append(e.waiting, g.seqs...)
			e.refill()
			if p := e.plan(); p.full != c.wantFull {
				t.Fatalf("full = %v, want %v (batch %d of %d running, %d waiting)", p.full, c.wantFull, len(p.batch), len(e.running), len(e.waiting))
			}
		})
	}
}
