package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// benchRatios compares each raterd run over the full records with each baseline.
func benchRatios(runs []benchRun) []benchRatio {
	byName := map[string]benchRun{}
	for _, r := range runs {
		byName[r.Name] = r
	}
	var out []benchRatio
	for _, pair := range [][2]string{
		{runRaterd, runBare}, {runRaterd, runNaive}, {runRaterd, runNoCache},
		{runWarm, runBare}, {runWarm, runNaive}, {runWarm, runNoCache},
		{runRedact, runRaterd},
	} {
		r, ok1 := byName[pair[0]]
		base, ok2 := byName[pair[1]]
		if !ok1 || !ok2 || base.RecordsPerSecond == 0 || base.CPUMicrosPerRecord == 0 {
			continue
		}
		ratio := benchRatio{Run: pair[0], Baseline: pair[1],
			Throughput:   r.RecordsPerSecond / base.RecordsPerSecond,
			CPUPerRecord: r.CPUMicrosPerRecord / base.CPUMicrosPerRecord}
		if base.Records != r.Records {
			ratio.Note = fmt.Sprintf("rates per record: %s ran %d records, %s %d", base.Name, base.Records, r.Name, r.Records)
		}
		out = append(out, ratio)
	}
	return append(out, formatRatios(byName[runRaterd], runs)...)
}

// formatRatios compares each run over OTLP exports with the raterd run over the same valid
// records in the raterd JSON format, per valid record: the JSON traffic also holds the
// invalid messages, which the OTLP traffic leaves out, so main's rates are taken over its
// valid records (its records/s column counts every message done).
func formatRatios(main benchRun, runs []benchRun) []benchRatio {
	cpu := (main.CPUUserSeconds + main.CPUSystemSeconds) * 1e6
	if main.Name != runRaterd || main.Valid == 0 || main.ElapsedSeconds <= 0 || cpu <= 0 {
		return nil
	}
	rate, cpuPer := float64(main.Valid)/main.ElapsedSeconds, cpu/float64(main.Valid)
	var out []benchRatio
	for _, r := range runs {
		if r.Messages == 0 || !strings.HasPrefix(r.Name, runOTLPPrefix+"otlp") {
			continue
		}
		out = append(out, benchRatio{Run: r.Name, Baseline: runRaterd,
			Throughput: r.RecordsPerSecond / rate, CPUPerRecord: r.CPUMicrosPerRecord / cpuPer,
			Note: fmt.Sprintf("per valid record: %s %d records in %d messages (%.0f records/s, %.1f µs CPU/record); %s %d valid records (%.0f records/s, %.1f µs CPU/record) of %d messages",
				r.Name, r.Records, r.Messages, r.RecordsPerSecond, r.CPUMicrosPerRecord, main.Name, main.Valid, rate, cpuPer, main.Records)})
	}
	return out
}

// benchTargets checks the measured figures against the targets of issue 8.
func benchTargets(rep *benchReport) []benchTarget {
	var out []benchTarget
	ratio := func(run, base string) (benchRatio, bool) {
		for _, r := range rep.Ratios {
			if r.Run == run && r.Baseline == base {
				return r, true
			}
		}
		return benchRatio{}, false
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "missed"
	}
	if r, ok := ratio(runRaterd, runBare); ok {
		t := benchTarget{Target: "CPU/record within 3× the bare consumer's (heuristic judge, all-unique traffic)",
			Measured: fmt.Sprintf("%.2f×", r.CPUPerRecord), Verdict: verdict(r.CPUPerRecord <= 3)}
		if rep.Settings.Judge != benchJudgeHeuristic || rep.Settings.Traffic != "unique" {
			t.Verdict = "not measured: needs --judge heuristic --zipf 0"
		}
		out = append(out, t)
	}
	if r, ok := ratio(runWarm, runBare); ok {
		t := benchTarget{Target: "CPU/record within 2× the bare consumer's (heuristic judge, all-cached traffic)",
			Measured: fmt.Sprintf("%.2f× (%s)", r.CPUPerRecord, runWarm), Verdict: verdict(r.CPUPerRecord <= 2)}
		if rep.Settings.Judge != benchJudgeHeuristic {
			t.Verdict = "not measured: needs --judge heuristic"
		}
		out = append(out, t)
	}
	if r, ok := ratio(runRaterd, runNaive); ok {
		out = append(out, benchTarget{Target: "throughput at least 50× the naive evaluator's (same judge)",
			Measured: fmt.Sprintf("%.1f×", r.Throughput), Verdict: verdict(r.Throughput >= 50)})
	}
	for _, r := range rep.Runs {
		if r.Name == runRaterd {
			out = append(out, benchTarget{Target: "peak RSS under 300 MiB at the default in-flight limits",
				Measured: fmt.Sprintf("%.0f MiB (%s)", float64(r.PeakRSSBytes)/(1<<20), r.RSSMethod), Verdict: verdict(r.PeakRSSBytes < rssTargetBytes)})
		}
	}
	if l := rep.Latency; l != nil {
		out = append(out, benchTarget{Target: "end-to-end p99 (produce → row visible) under 3 s at half the maximum throughput",
			Measured: fmt.Sprintf("p99 %.2f s at %.0f records/s (%s)", l.P99Seconds, l.AchievedRate, l.RateBasis), Verdict: verdict(l.Seen > 0 && l.P99Seconds < 3)})
	}
	if rep.Soak != nil {
		out = append(out, soakTarget(rep.Soak))
	}
	out = append(out, poolTargets(rep.Pools)...)
	return out
}

// benchNotes says how to read the report.
func benchNotes(rep *benchReport, o benchOptions) []string {
	notes := []string{
		"Every run consumes the same topic as its own consumer group, in this process, one after another; raterd runs are built as `raterd run` builds them (default batch, worker and in-flight settings).",
		"Windows: from the first message in hand to the last row visible in ClickHouse (raterd) or the last commit acknowledged (baselines); group join is reported apart as start-up.",
		"CPU is the whole process's (getrusage RUSAGE_SELF) over the window: Kafka, Redis and ClickHouse clients included; the Kafka, Redis and ClickHouse servers are other processes and not counted.",
	}
	if o.judge == benchJudgeSim {

	}
	if o.baselines && o.naiveRecords < o.records {
		notes = append(notes, fmt.Sprintf("The naive evaluator consumed %d of the %d records (--naive-records); its throughput and CPU are per record, start-up excluded, so the ratios compare rates.", o.naiveRecords, o.records))
	}
	if rep.Soak != nil {
		notes = append(notes, soakNote(rep.Soak))
	}
	if rep.Settings.Redact != nil {
		notes = append(notes, fmt.Sprintf("--redact: %s ran right after %s on the same records with scoring.redact types %v, a fresh cache key space of its own; redaction masks what the model judge's evaluator (helpfulness) reads, cache key included, so the %s/%s ratio is the cost of redaction per record (the built-in checks read the raw text either way).",
			runRedact, runRaterd, rep.Settings.Redact, runRedact, runRaterd))
	}
	if ot := rep.Traffic.OTLP; ot != nil {
		notes = append(notes, fmt.Sprintf("--format %s: the %d valid records, converted (model, app as service.name, system prompt, messages, response; the record id as gen_ai.response.id), as %d exports of %.1f spans (%.1f traces of an HTTP root, %d database spans and the chat span) grouped by app into resources, on %s; %d invalid messages have no OTLP copy. %s ran after %s on its own Redis key space, with the same evaluators; its records/s and CPU/record are per record decoded (chat span), compared with %s's per valid record.",
			ot.Format, ot.Records, ot.Messages, ot.SpansPerMessage, ot.RecordsPerMessage, ot.NonGenAISpansPerTrace, ot.Topic, ot.InvalidLeftOut, otlpRunName(ot.Format), runRaterd, runRaterd))
	}
	if rep.Traffic.Valid > 0 && rep.Settings.Traffic == "unique" {
		notes = append(notes, fmt.Sprintf("Unique traffic: %d distinct prompts and %d distinct responses among %d valid records.", rep.Traffic.DistinctPrompts, rep.Traffic.DistinctResponses, rep.Traffic.Valid))
	}
	return notes
}

// printBenchReport writes the report as tables.
func printBenchReport(w io.Writer, rep *benchReport) {
	if len(rep.Pools) > 0 {
		printPoolReport(w, rep)
		return
	}
	s, t := rep.Settings, rep.Traffic
	fmt.Fprintf(w, "raterd bench %s — %d records (%s traffic", rep.Version, s.Records, s.Traffic)
	if s.Traffic == "zipf" {
		fmt.Fprintf(w, ", s = %g over %d prompts", s.ZipfS, s.Distinct)
	}
	fmt.Fprintf(w, ", %.0f%% invalid), judge %s (%d evaluators: %s)\n", 100*s.InvalidShare, s.Judge, len(s.Evaluators), strings.Join(s.Evaluators, ", "))
	fmt.Fprintf(w, "traffic: %d valid, %d invalid, %.1f MiB; prompts %d–%d chars (mean %d), responses %d–%d (mean %d); %d models, %d apps; %d distinct prompts, %d distinct pairs; %.2f tasks/record\n",
		t.Valid, t.Invalid, float64(t.Bytes)/(1<<20), t.PromptChars[0], t.PromptChars[2], t.PromptChars[1], t.ResponseChars[0], t.ResponseChars[2], t.ResponseChars[1],
		t.Models, t.Apps, t.DistinctPrompts, t.DistinctPairs, t.TasksPerRecord)
	m := rep.Machine
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d), %s, %s; load average %.2f before, %.2f after\n", m.CPUs, m.GOMAXPROCS, m.Go, m.OS, m.LoadBefore[0], m.LoadAfter[0])
	if s.Simulator != "" {
		fmt.Fprintf(w, "judgesim: %s\n", s.Simulator)
	}

	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\trecords\trecords/s\tCPU µs/rec\tpeak RSS MiB\tjudge tasks/rec\tcache RT/batch\trows/insert\tinserts/s\tpool util\trows exp/found\tstart-up s\t")
	for _, r := range rep.Runs {
		pool := "-"
		if r.PoolUtilization != nil {
			pool = fmt.Sprintf("%.1f%%", 100**r.PoolUtilization)
		}
		rows := "-"
		if r.Name != runBare {
			rows = fmt.Sprintf("%d/%d", r.RowsExpected, r.RowsFound)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.1f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t\n", r.Name, r.Records, r.RecordsPerSecond, r.CPUMicrosPerRecord,
			float64(r.PeakRSSBytes)/(1<<20), optf(r.JudgeTasksPerRecord, "%.3f"), optf(r.CacheRoundTripsPerBatch, "%.2f"),
			optf(r.RowsPerInsert, "%.0f"), optf(r.InsertsPerSecond, "%.2f"), pool, rows, r.StartupSeconds)
	}
	tw.Flush()

	if len(rep.Ratios) > 0 {
		fmt.Fprintln(w, "\nratios (run ÷ baseline)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "run\tbaseline\tthroughput\tCPU/record\t")
		for _, r := range rep.Ratios {
			fmt.Fprintf(tw, "%s\t%s\t%.2f×\t%.2f×\t\n", r.Run, r.Baseline, r.Throughput, r.CPUPerRecord)
		}
		tw.Flush()
	}
	printFormatRuns(w, rep)
	if l := rep.Latency; l != nil {
		fmt.Fprintf(w, "\nlatency, produce → row visible: %d of %d samples over %d records at %.0f records/s (target %.0f: %s)\n",
			l.Seen, l.Samples, l.Records, l.AchievedRate, l.TargetRate, l.RateBasis)
		fmt.Fprintf(w, "  p50 %.3f s   p90 %.3f s   p99 %.3f s   max %.3f s   (poll every %.0f ms: figures are upper bounds)\n",
			l.P50Seconds, l.P90Seconds, l.P99Seconds, l.MaxSeconds, 1000*l.PollSeconds)
	}
	if rep.Soak != nil {
		printSoak(w, rep.Soak)
	}
	var pool []string
	for _, r := range rep.Runs {
		if r.PoolCapacityPerSec != nil && r.PoolRequestsPerSec != nil {
			pool = append(pool, fmt.Sprintf("  %s: %d requests (%.3f/record), %.0f/s of a computed capacity of %.0f/s for the mean request",
				r.Name, r.PoolRequests, *r.PoolRequestsPerRec, *r.PoolRequestsPerSec, *r.PoolCapacityPerSec))
		}
	}
	if len(pool) > 0 {
		fmt.Fprintln(w, "\njudgesim pool")
		fmt.Fprintln(w, strings.Join(pool, "\n"))
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets (issue 8)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, t := range rep.Targets {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", t.Target, t.Measured, t.Verdict)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nnotes")
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "  - %s\n", n)
	}
	if rep.Profile != "" {
		fmt.Fprintf(w, "  - CPU profile of the %s run: %s (go tool pprof -top %s)\n", runRaterd, rep.Profile, rep.Profile)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
}

// printFormatRuns writes the runs over OTLP exports against the raterd (JSON) run.
func printFormatRuns(w io.Writer, rep *benchReport) {
	for _, ratio := range rep.Ratios {
		if !strings.HasPrefix(ratio.Run, runOTLPPrefix+"otlp") {
			continue
		}
		fmt.Fprintf(w, "\n%s vs %s (JSON), per valid record: throughput %.2f×, CPU/record %.2f×\n", ratio.Run, ratio.Baseline, ratio.Throughput, ratio.CPUPerRecord)
		for _, r := range rep.Runs {
			if r.Name == ratio.Run {
				fmt.Fprintf(w, "  %s: %.0f records/s, %.1f µs CPU/record, %d records in %d messages (%.1f spans per message), %d spans skipped, peak RSS %.0f MiB, rows %d/%d\n",
					r.Name, r.RecordsPerSecond, r.CPUMicrosPerRecord, r.Records, r.Messages, r.SpansPerMessage, r.Skipped, float64(r.PeakRSSBytes)/(1<<20), r.RowsExpected, r.RowsFound)
			}
		}
		fmt.Fprintf(w, "  (%s)\n", ratio.Note)
	}
}

// optf formats an optional figure, "-" when absent.
func optf(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func ptr[T any](v T) *T { return &v }
