package judgesim

import (
	"context"
	"math"
	"time"
)

// group is the sequences of one request. The scheduler owns its fields until it closes
// done; the handler reads them after.
type group struct {
	seqs    []*seq
	arrived time.Time

	pending  int   // sequences not yet finished
	started  bool  // a sequence ran a step
	lastStep int64 // the last step a sequence of the group ran in
	finished bool

	queue   time.Duration // arrival until the start of its first step
	service time.Duration // summed durations of the steps it ran in
	err     error         // nil, errRejected, errCanceled or errStopping
	done    chan struct{}
}

// seq is one sequence: it gets a slot, prefills its prompt (in one step, or in chunks
// under MaxBatchedTokens), emits one token per step, and leaves after need tokens.
type seq struct {
	g        *group
	prompt   int      // prompt tokens
	chain    []uint64 // hash chain of the prompt's full blocks (PrefixCaching), or nil
	need     int      // steps to finish: completion tokens, times the slow factor
	emitted  int
	canceled bool // its client left while it ran; it leaves the batch at the step's end

	computed  int      // tokens in its KV cache
	prefilled bool     // its prompt (and, after a preemption, its output) is computed
	inStep    bool     // in the step now running
	priv      int      // KV blocks of its own
	shared    []uint64 // cached prompt blocks it references (PrefixCaching)
}

// newGroup makes a request's group, one sequence per (prompt tokens, steps) pair.
func newGroup(prompts, needs []int) *group {
	g := &group{arrived: time.Now(), done: make(chan struct{}), pending: len(prompts)}
	g.seqs = make([]*seq, len(prompts))
	for i := range prompts {
		g.seqs[i] = &seq{g: g, prompt: prompts[i], need: max(needs[i], 1)}
	}
	return g
}

// slowSteps is the steps of a sequence of c tokens slowed by factor.
func slowSteps(c int, factor float64) int {
	n := math.Ceil(float64(c) * factor)
	if n > 1<<30 {
		return 1 << 30
	}
	return max(int(n), c)
}

// schedule hands g to the scheduler and waits until its sequences finish, the client
// leaves or the simulator stops.
func (s *Simulator) schedule(ctx context.Context, g *group) error {
	select {
	case s.submit <- g:
	case <-s.done:
		return errStopping
	case <-ctx.Done():
		return errCanceled
	}
	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		select {
		case s.cancel <- g:
		case <-s.done:
		}
		return errCanceled
	}
}

// maxLag is how far the step schedule may fall behind the wall clock before it is reset
// (after a pause of the process) instead of caught up with back-to-back steps.
const maxLag = 100 * time.Millisecond

// scheduler is the state of the scheduler goroutine.
type scheduler struct {
	s        *Simulator
	e        *engine
	deadline time.Time
	step     int64
	stopping bool
}

// run is the scheduler goroutine: it runs steps while there are sequences and blocks on
// its channels when there are none.
func (s *Simulator) run() {
	sc := &scheduler{s: s, e: newEngine(s.cfg)}
	defer close(s.done)
	defer sc.stopAll()
	stopping := s.stopping
	for {
		if len(sc.e.running) == 0 {
			if sc.stopping {
				return
			}
			sc.deadline = time.Time{}
			select {
			case g := <-s.submit:
				sc.accept(g)
			case g := <-s.cancel:
				sc.drop(g)
			case <-stopping:
				sc.stopping, stopping = true, nil
			case <-s.quit:
				return
			}
			continue
		}
		if !sc.runStep() {
			return
		}
	}
}

// runStep runs one step and reports false when the simulator quits.
func (sc *scheduler) runStep() bool {
	s := sc.s
	now := time.Now()
	start := sc.deadline
	if start.IsZero() || now.Before(start) || now.Sub(start) > maxLag {
		start = now
	}
	sc.step++
	p := sc.e.plan()
	for _, q := range p.batch {
		if g := q.g; !g.started {
			g.started = true
			g.queue = max(start.Sub(g.arrived), 0)
		}
	}
	d := p.d
	sc.deadline = start.Add(d)
	if !sc.wait(d) {
		return false
	}

	s.steps.Add(1)
	s.busyNanos.Add(int64(d))
	s.busySeqNanos.Add(int64(d) * int64(len(p.batch)))
	if p.full {
		s.saturatedNanos.Add(int64(d))
	}
	for _, q := range p.batch {
		if g := q.g; !q.canceled && g.lastStep != sc.step {
			g.lastStep = sc.step
			g.service += d
		}
	}
	for _, q := range sc.e.commit(p) {
		if q.canceled {
			continue
		}
		if g := q.g; !g.finished {
			if g.pending--; g.pending == 0 {
				s.finished.Add(1)
				finish(g, nil)
			}
		}
	}
	sc.counters()
	sc.refill()
	return true
}

// counters publishes the engine's token counters.
func (sc *scheduler) counters() {
	s, e := sc.s, sc.e
	s.prefillComputed.Store(e.prefillComputed)
	s.prefillSaved.Store(e.prefillSaved)
	s.preemptions.Store(e.preemptions)
	s.decodeTokens.Store(e.decodeTokens)
	if e.kv != nil {
		s.kvPeak.Store(int64(e.kv.peak))
		s.kvUsed.Store(int64(e.kv.used))
	}
}

// wait sleeps the step's duration, meanwhile taking submissions and cancellations. It
// reports false when the simulator quits.
func (sc *scheduler) wait(d time.Duration) bool {
	s := sc.s
	var timer <-chan time.Time
	if d > 0 {
		// Behind schedule, the timer fires at once: the steps catch up back to back.
		timer = s.after(max(time.Until(sc.deadline), 0))
	}
	for {
		if timer == nil {
			// A step of no time: take what is pending, then step.
			select {
			case g := <-s.submit:
				sc.accept(g)
			case g := <-s.cancel:
				sc.drop(g)
			case <-s.quit:
				return false
			default:
				return true
			}
			continue
		}
		select {
		case <-timer:
			return true
		case g := <-s.submit:
			sc.accept(g)
		case g := <-s.cancel:
			sc.drop(g)
		case <-s.quit:
			return false
		}
	}
}

// accept admits g's sequences, queueing those without a slot, or rejects g.
func (sc *scheduler) accept(g *group) {
	s := sc.s
	if !sc.stopping {
		select {
		case <-s.stopping:
			sc.stopping = true
		default:
		}
	}
	if sc.stopping {
		finish(g, errStopping)
		return
	}
	if len(g.seqs) == 0 {
		finish(g, nil)
		return
	}
	free := sc.e.free()
	if over := len(g.seqs) - free; over > 0 && len(sc.e.waiting)+over > s.cfg.QueueLimit {
		finish(g, errRejected)
		return
	}
	s.sequences.Add(int64(len(g.seqs)))
	sc.e.waiting = append(sc.e.waiting, g.seqs...)
	sc.refill()
}

// drop removes the sequences of a group whose client left: those not in the running
// step at once, those in it at the end of the step (the batch is already on the GPU).
func (sc *scheduler) drop(g *group) {
	if g.finished {
		return
	}
	finish(g, errCanceled)
	sc.e.remove(func(q *seq) bool { return q.g != g })
	sc.refill()
}

// refill gives free slots to the longest waiting sequences.
func (sc *scheduler) refill() {
	sc.e.refill()
	sc.gauges()
}

func (sc *scheduler) gauges() {
	s := sc.s
	r, q := int64(len(sc.e.running)), int64(len(sc.e.waiting))
	s.running.Store(r)
	s.queued.Store(q)
	if r > s.maxRunning.Load() {
		s.maxRunning.Store(r)
	}
	if q > s.maxQueued.Load() {
		s.maxQueued.Store(q)
	}
}

// stopAll answers every group still held with errStopping.
func (sc *scheduler) stopAll() {
	for _, q := range sc.e.stopAll() {
		finish(q.g, errStopping)
	}
	sc.counters()
	sc.gauges()
}

func finish(g *group, err error) {
	if g.finished {
		return
	}
	g.finished, g.err = true, err
	close(g.done)
}

func filter(l []*seq, keep func(*seq) bool) []*seq {
	out := l[:0]
	for _, q := range l {
		if keep(q) {
			out = append(out, q)
		}
	}
	clear(l[len(out):])
	return out
}
