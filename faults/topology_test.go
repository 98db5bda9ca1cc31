package faults

// The checks and measurements of TestThreeProcesses on made-up inputs, without services:
// each shown to fail on the case it must catch.

import (
	"strings"
	"testing"
	"time"
)

const assignedLog = `time=2026-12-07T15:40:00.100Z level=INFO msg="kafka group: joined" group=g
time=2026-12-07T15:40:01.250Z level=INFO msg="kafka group: partitions assigned" group=g generation=1 partitions=4
time=2026-12-07T15:40:09.000Z level=WARN msg="kafka group: partitions assigned" group=g generation=9 partitions=4
time=2026-12-07T15:40:05.500+00:00 level=INFO msg="kafka group: partitions assigned" group=g generation=2 partitions=6
`

func TestAssignments(t *testing.T) {
	as := assignments(assignedLog)
	if len(as) != 2 {
		t.Fatalf("got %d assignment lines, want 2 (the INFO ones): %+v", len(as), as)
	}
	want := time.Date(2026, 12, 7, 15, 40, 1, 250e6, time.UTC)
	if !as[0].at.Equal(want) || as[0].generation != 1 || as[0].partitions != 4 {
		t.Errorf("first line parsed as %+v, want generation 1, 4 partitions at %s", as[0], want)
	}
	if as[1].generation != 2 || as[1].partitions != 6 {
		t.Errorf("second line parsed as %+v, want generation 2, 6 partitions", as[1])
	}
}

func TestLastGeneration(t *testing.T) {
	ok := map[string][]assignment{
		"raterd-0": {{generation: 1, partitions: 4}, {generation: 3, partitions: 6}},
		// Rejoined a stable group: the same generation again, counted once.
		"raterd-3": {{generation: 3, partitions: 6}, {generation: 3, partitions: 6}},
	}
	if g, m, s := lastGeneration(ok); g != 3 || m != 2 || s != topologyPartitions {
		t.Errorf("lastGeneration = %d, %d members, %d partitions; want 3, 2, %d", g, m, s, topologyPartitions)
	}
	// Negative control: a member that missed the last generation leaves partitions unowned.
	missed := map[string][]assignment{
		"raterd-0": {{generation: 3, partitions: 6}},
		"raterd-3": {{generation: 2, partitions: 6}},
	}
	if _, _, s := lastGeneration(missed); s == topologyPartitions {
		t.Errorf("a member absent from the last generation still sums to %d partitions", s)
	}
}

func TestOwnershipProblem(t *testing.T) {
	whole := map[string][]int{"a": {0, 1, 2, 3}, "b": {4, 5, 6, 7}, "c": {8, 9, 10, 11}}
	if p := ownershipProblem(whole, topologyPartitions); p != "" {
		t.Errorf("every partition owned once, yet: %s", p)
	}
	// Negative controls: the same count (12) with a partition twice and one unowned; a
	// partition that does not exist.
	twice := map[string][]int{"a": {0, 1, 2, 3}, "b": {3, 5, 6, 7}, "c": {8, 9, 10, 11}}
	if p := ownershipProblem(twice, topologyPartitions); !strings.Contains(p, "partition 3 owned by 2") || !strings.Contains(p, "partition 4 owned by 0") {
		t.Errorf("partition 3 twice and 4 unowned not caught: %q", p)
	}
	extra := map[string][]int{"a": {0, 1, 2, 3, 12}, "b": {4, 5, 6, 7}, "c": {8, 9, 10, 11}}
	if p := ownershipProblem(extra, topologyPartitions); !strings.Contains(p, "unknown partition 12") {
		t.Errorf("partition 12 of 12 not caught: %q", p)
	}
}

func TestFetchGap(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	samples := []fetchSample{
		{at: at(0), fetched: 10, lag: true},
		{at: at(100), fetched: 20, lag: true}, // event at 150
		{at: at(200), fetched: 20, lag: true},
		{at: at(300), fetched: 20, lag: true},
		{at: at(400), fetched: 20, lag: true},
		{at: at(500), fetched: 40, lag: true}, // stalled from 150 at least until 400
		{at: at(600), fetched: 40, lag: false},
		{at: at(900), fetched: 40, lag: false}, // idle without lag: no gap
		{at: at(1000), fetched: 40, lag: true},
		{at: at(1100), fetched: 50, lag: true},
	}
	if g := fetchGap(samples, at(150), at(2000)); g != 250*time.Millisecond {
		t.Errorf("gap = %s, want 250ms (from the event at 150 ms to the last sample without growth, 400 ms)", g)
	}
	// The window ends at the next event: a stall after it is that event's.
	if g := fetchGap(samples, at(450), at(2000)); g != 100*time.Millisecond {
		t.Errorf("gap from 450 ms = %s, want 100ms (idle without lag is no gap)", g)
	}
	if g := fetchGap(samples, at(150), at(250)); g != 50*time.Millisecond {
		t.Errorf("gap in [150, 250] ms = %s, want 50ms", g)
	}
}
