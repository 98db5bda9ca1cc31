package detect_test

// The evaluation harness of docs/alerting.md: synthetic score streams with injected
// shifts, and long no-shift controls, fed to every detector with fixed seeds.
//
//	go test -run '^$' -bench=AlertDetectors -benchtime=1x -v ./sinks/alert/
//
// TestAlertingEvaluation runs a reduced version in the regular test suite and checks only
// that the detectors behave sanely, not the targets.

import (
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"raterd/sinks/alert/detect"
)

// dist is a score distribution: discrete 1–5 scores, or pass (1) / fail (0).
type dist struct {
	cdf      []float64 // cdf[k] = P(value ≤ k+1) for scores; {1−p} for pass/fail
	pass     bool
	mean, sd float64
}

func (d dist) draw(r *rand.Rand) float64 {
	u := r.Float64()
	for k, c := range d.cdf {
		if u < c {
			if d.pass {
				return 0
			}
			return float64(k + 1)
		}
	}
	if d.pass {
		return 1
	}
	return float64(len(d.cdf))
}

// scores returns a normal curve of width 1.25 discretized on 1..5 whose mean is exactly
// mean (sd ≈ 1.0 at mean 3.8), like a judge's 1–5 ratings.
func scores(mean float64) dist {
	var d dist
	lo, hi := -5.0, 10.0
	for range 80 {
		m := (lo + hi) / 2
		p, sum := make([]float64, 5), 0.0
		for k := range p {
			p[k] = math.Exp(-math.Pow(float64(k+1)-m, 2) / (2 * 1.25 * 1.25))
			sum += p[k]
		}
		d = dist{cdf: make([]float64, 5)}
		acc, sq := 0.0, 0.0
		for k := range p {
			acc += p[k] / sum
			d.cdf[k] = acc
			d.mean += float64(k+1) * p[k] / sum
			sq += float64((k+1)*(k+1)) * p[k] / sum
		}
		d.sd = math.Sqrt(sq - d.mean*d.mean)
		if d.mean < mean {
			lo = m
		} else {
			hi = m
		}
	}
	return d
}

func passRate(p float64) dist {
	return dist{cdf: []float64{1 - p}, pass: true, mean: p, sd: math.Sqrt(p * (1 - p))}
}

// family is a kind of stream with its baseline and the drops injected into it.
type family struct {
	name   string
	pass   bool
	base   float64
	shifts []float64
}

func (f family) dist(level float64) dist {
	if f.pass {
		return passRate(level)
	}
	return scores(level)
}

func families() []family {
	return []family{
		{name: "mean (1–5, μ0 3.8, sd 1.0)", base: 3.8, shifts: []float64{0.1, 0.3, 0.5}},
		{name: "pass rate (90%)", pass: true, base: 0.9, shifts: []float64{0.02, 0.05, 0.10}},
	}
}

// subject is a detector under evaluation.
type subject struct {
	observe func(arm detect.Arm, x float64, at time.Time) detect.State
	reset   func()
}

func single(d detect.Detector, err error) subject {
	if err != nil {
		panic(err)
	}
	return subject{
		observe: func(_ detect.Arm, x float64, at time.Time) detect.State {
			dec, _ := d.Observe(x, at)
			return dec.State
		},
		reset: d.Reset,
	}
}

// contender is a detector configuration in the evaluation.
type contender struct {
	name   string
	rate   float64 // records per minute when the detector uses time; 0 when it does not
	canary bool    // two interleaved streams, the candidate shifted from the start
	warm   int     // records before the detector can judge (learned baseline)
	pre    int     // in-control records before the shift (after warm)
	make   func(f family) subject
}

func contenders() []contender {
	base := func(f family) *detect.Baseline {
		d := f.dist(f.base)
		return &detect.Baseline{Mean: d.mean, SD: d.sd}
	}
	threshold := func(rate float64) contender {
		return contender{name: fmt.Sprintf("Threshold 1h @%g/min", rate), rate: rate, pre: int(120 * rate),
			make: func(f family) subject {
				cfg := detect.ThresholdConfig{Alert: f.base - 0.2, Warning: ptr(f.base - 0.1), MinSamples: 300}
				if f.pass {
					cfg = detect.ThresholdConfig{Stat: detect.StatPassRate, Alert: f.base - 0.06, Warning: ptr(f.base - 0.03), MinSamples: 300}
				}
				return single(detect.NewThreshold(cfg))
			}}
	}
	warmUp := must2(detect.NewEWMA(detect.EWMAConfig{})).Config().WarmUp
	return []contender{
		threshold(10), threshold(100),
		{name: "EWMA (baseline given)", pre: 1000, make: func(f family) subject {
			return single(detect.NewEWMA(detect.EWMAConfig{BaselineConfig: detect.BaselineConfig{Baseline: base(f)}}))
		}},
		{name: fmt.Sprintf("EWMA (warm-up %d)", warmUp), warm: warmUp, pre: 1000, make: func(f family) subject {
			return single(detect.NewEWMA(detect.EWMAConfig{}))
		}},
		{name: "CUSUM (baseline given)", pre: 1000, make: func(f family) subject {
			return single(detect.NewCUSUM(detect.CUSUMConfig{BaselineConfig: detect.BaselineConfig{Baseline: base(f)}}))
		}},
		{name: fmt.Sprintf("CUSUM (warm-up %d)", warmUp), warm: warmUp, pre: 1000, make: func(f family) subject {
			return single(detect.NewCUSUM(detect.CUSUMConfig{}))
		}},
		{name: "Canary mSPRT (50/50 split)", canary: true, make: func(f family) subject {
			c := must2(detect.NewCanary(detect.CanaryConfig{}))
			return subject{
				observe: func(arm detect.Arm, x float64, at time.Time) detect.State {
					dec, _ := c.Observe(arm, x, at)
					return dec.State
				},
				reset: c.Reset,
			}
		}},
	}
}

func ptr[T any](v T) *T { return &v }

// evalSize is how much the evaluation simulates.
type evalSize struct {
	reps    int // streams per detector and shift
	horizon int // records after the shift within which a detection counts
	runs    int // no-shift control streams per detector and family
	runLen  int // records per control stream (after any warm-up)
	// canaryRuns and canaryLen size the canary's controls: fewer, longer streams, since
	// its guarantee is on the probability that a stream ever alarms.
	canaryRuns, canaryLen int
}

// stream feeds a subject one record at a time, with Poisson arrivals at the contender's
// rate (10/min when time plays no part).
type stream struct {
	c    contender
	s    subject
	r    *rand.Rand
	t    time.Time
	gap  float64 // mean minutes between records
	good dist
}

func newStream(c contender, f family, seed string, rep int) *stream {
	h := fnv.New64a()
	io.WriteString(h, c.name+"|"+seed)
	rate := c.rate
	if rate == 0 {
		rate = 10
	}
	return &stream{c: c, s: c.make(f), r: rand.New(rand.NewPCG(h.Sum64(), uint64(rep))),
		t: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), gap: 1 / rate, good: f.dist(f.base)}
}

// step draws one record (for a canary: candidate or baseline at even odds, the candidate
// from bad) and reports whether the detector is in StateAlert after it.
func (s *stream) step(bad dist) bool {
	s.t = s.t.Add(time.Duration(s.r.ExpFloat64() * s.gap * float64(time.Minute)))
	arm, d := detect.ArmBaseline, bad
	if s.c.canary {
		if s.r.IntN(2) == 0 {
			arm = detect.ArmCandidate
		} else {
			d = s.good
		}
	}
	return s.s.observe(arm, d.draw(s.r), s.t) == detect.StateAlert
}

// detection is one shifted stream's outcome: records and minutes from the shift to the
// first alert, or 0 records when it was missed within the horizon.
type detection struct {
	records int
	minutes float64
}

// shiftRun feeds warm-up and pre-shift records (resetting after any false alarm there),
// then shifted records until the first alert or the horizon.
func shiftRun(c contender, f family, shift float64, rep, horizon int) detection {
	s := newStream(c, f, fmt.Sprintf("%s|shift %g", f.name, shift), rep)
	for range c.warm + c.pre {
		if s.step(s.good) {
			s.s.reset()
		}
	}
	bad, t0 := f.dist(f.base-shift), s.t
	for j := 1; j <= horizon; j++ {
		if s.step(bad) {
			return detection{records: j, minutes: s.t.Sub(t0).Minutes()}
		}
	}
	return detection{}
}

// controlRun feeds a no-shift stream and counts false alarms: each entry into StateAlert
// is one, after which the detector is Reset.
func controlRun(c contender, f family, run, n int) int {
	s := newStream(c, f, f.name+"|control", run)
	for range c.warm {
		s.step(s.good)
	}
	alarms := 0
	for range n {
		if s.step(s.good) {
			alarms++
			s.s.reset()
		}
	}
	return alarms
}

type shiftResult struct {
	c     contender
	f     family
	shift float64
	det   []detection
}

type controlResult struct {
	c       contender
	f       family
	records int
	alarms  []int // per run
}

// evaluate runs every contender on every shift and control, in parallel but
// deterministically (each stream has its own seed and result slot).
func evaluate(size evalSize) ([]shiftResult, []controlResult) {
	var shifts []shiftResult
	var controls []controlResult
	for _, c := range contenders() {
		for _, f := range families() {
			for _, sh := range f.shifts {
				shifts = append(shifts, shiftResult{c: c, f: f, shift: sh, det: make([]detection, size.reps)})
			}
			runs, n := size.runs, size.runLen
			if c.canary {
				runs, n = size.canaryRuns, size.canaryLen
			}
			controls = append(controls, controlResult{c: c, f: f, records: n * runs, alarms: make([]int, runs)})
		}
	}
	var jobs []func()
	for i := range shifts {
		r := &shifts[i]
		for rep := range r.det {
			jobs = append(jobs, func() { r.det[rep] = shiftRun(r.c, r.f, r.shift, rep, size.horizon) })
		}
	}
	for i := range controls {
		r := &controls[i]
		for run := range r.alarms {
			jobs = append(jobs, func() { r.alarms[run] = controlRun(r.c, r.f, run, r.records/len(r.alarms)) })
		}
	}
	work := make(chan func())
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range work {
				j()
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	return shifts, controls
}

// quantile returns the nearest-rank q-quantile of the delays in records, misses counting
// as infinite (reported as missed); and the matching minutes.
func (r shiftResult) quantile(q float64) (rec int, minutes float64, missed bool) {
	d := slices.Clone(r.det)
	slices.SortFunc(d, func(a, b detection) int { return key(a) - key(b) })
	x := d[max(0, int(math.Ceil(q*float64(len(d))))-1)]
	return x.records, x.minutes, x.records == 0
}

func key(d detection) int {
	if d.records == 0 {
		return math.MaxInt32
	}
	return d.records
}

// median returns the median delay in records, MaxInt32 when missed.
func (r shiftResult) median() int {
	rec, _, missed := r.quantile(0.5)
	if missed {
		return math.MaxInt32
	}
	return rec
}

func (r shiftResult) missed() int {
	n := 0
	for _, d := range r.det {
		if d.records == 0 {
			n++
		}
	}
	return n
}

func (r shiftResult) shiftName() string {
	if r.f.pass {
		return fmt.Sprintf("−%g pt", r.shift*100)
	}
	return fmt.Sprintf("−%g", r.shift)
}

func (r controlResult) total() (alarms, runsWithAlarm int) {
	for _, a := range r.alarms {
		alarms += a
		if a > 0 {
			runsWithAlarm++
		}
	}
	return alarms, runsWithAlarm
}

func (r controlResult) per10k() float64 {
	a, _ := r.total()
	return float64(a) / float64(r.records) * 1e4
}

// report writes the results as the markdown tables of docs/alerting.md.
func report(w io.Writer, size evalSize, shifts []shiftResult, controls []controlResult) {
	fmt.Fprintf(w, "Detection: %d streams per detector and shift; a detection counts within %d records after the shift.\n\n", size.reps, size.horizon)
	fmt.Fprintln(w, "| detector | stream | drop | median delay (records) | p90 delay (records) | median min @10/min | median min @100/min | missed |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range shifts {
		cell := func(q float64) (string, string, string) {
			rec, min, missed := r.quantile(q)
			switch {
			case missed:
				return fmt.Sprintf("> %d", size.horizon), "—", "—"
			case r.c.rate == 10:
				return fmt.Sprint(rec), fmt.Sprintf("%.0f", min), "—"
			case r.c.rate == 100:
				return fmt.Sprint(rec), "—", fmt.Sprintf("%.0f", min)
			}
			return fmt.Sprint(rec), fmt.Sprintf("%.1f", float64(rec)/10), fmt.Sprintf("%.1f", float64(rec)/100)
		}
		med, m10, m100 := cell(0.5)
		p90, _, _ := cell(0.9)
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %d/%d |\n", r.c.name, strings.Split(r.f.name, " (")[0],
			r.shiftName(), med, p90, m10, m100, r.missed(), len(r.det))
	}
	fmt.Fprintf(w, "\nFalse alarms on no-shift streams: %d streams of %d records per detector and family (canary: %d of %d); each entry into the alert state counts as one, after which the detector is Reset.\n\n",
		size.runs, size.runLen, size.canaryRuns, size.canaryLen)
	fmt.Fprintln(w, "| detector | stream | control records | false alarms | per 10,000 records | streams with an alarm |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: |")
	for _, r := range controls {
		a, runs := r.total()
		fmt.Fprintf(w, "| %s | %s | %d | %d | %.2f | %d/%d |\n", r.c.name, strings.Split(r.f.name, " (")[0],
			r.records, a, r.per10k(), runs, len(r.alarms))
	}
	fmt.Fprintln(w, "\nTarget (issue 7): a 0.3 drop detected within 500 records (p90) with at most 1 false alarm per 10,000 records:")
	for _, c := range controls {
		for _, s := range shifts {
			if s.c.name != c.c.name || s.f.name != c.f.name || s.f.pass || s.shift != 0.3 {
				continue
			}
			rec, _, missed := s.quantile(0.9)
			p90, verdict := fmt.Sprint(rec), "met"
			if missed {
				p90 = fmt.Sprintf("> %d", size.horizon)
			}
			if missed || rec > 500 || c.per10k() > 1 {
				verdict = "not met"
			}
			fmt.Fprintf(w, "- %s: p90 %s records, %.2f false alarms per 10,000: %s\n", c.c.name, p90, c.per10k(), verdict)
		}
	}
}

// BenchmarkAlertDetectors runs the full evaluation once and prints its tables; with
// RATERD_ALERT_EVAL_OUT set it also writes them to that file.
func BenchmarkAlertDetectors(b *testing.B) {
	size := evalSize{reps: 500, horizon: 5000, runs: 500, runLen: 10000, canaryRuns: 100, canaryLen: 50000}
	for b.Loop() {
		shifts, controls := evaluate(size)
		report(os.Stdout, size, shifts, controls)
		if path := os.Getenv("RATERD_ALERT_EVAL_OUT"); path != "" {
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			report(f, size, shifts, controls)
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestAlertingEvaluation runs a reduced evaluation and checks that the detectors behave
// sanely: every one catches the largest drops, catches them sooner than the smallest, and
// does not drown the controls in false alarms. The targets are the benchmark's business.
func TestAlertingEvaluation(t *testing.T) {
	size := evalSize{reps: 20, horizon: 5000, runs: 8, runLen: 5000, canaryRuns: 8, canaryLen: 5000}
	shifts, controls := evaluate(size)
	var sb strings.Builder
	report(&sb, size, shifts, controls)
	t.Log("\n" + sb.String())
	for i, r := range shifts {
		if r.shift != r.f.shifts[2] {
			continue
		}
		if r.missed() > len(r.det)/10 {
			t.Errorf("%s, %s drop %s: missed %d of %d", r.c.name, r.f.name, r.shiftName(), r.missed(), len(r.det))
		}
		if small := shifts[i-2]; r.median() >= small.median() {
			t.Errorf("%s, %s: median delay for drop %s not below that for %s", r.c.name, r.f.name, r.shiftName(), small.shiftName())
		}
	}
	for _, r := range controls {
		if r.per10k() > 10 {
			t.Errorf("%s, %s: %.1f false alarms per 10,000 records", r.c.name, r.f.name, r.per10k())
		}
	}
}
