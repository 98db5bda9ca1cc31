package judgesim

import (
	"container/list"
	"slices"
	"time"
)

// BlockTokens is the size of a KV-cache block in tokens, as in vLLM: a sequence holds
// ceil(tokens/BlockTokens) blocks, and prefix caching shares whole blocks.
const BlockTokens = 16

// blockBytes is the prompt text of one block: judgesim counts a token as 4 bytes.
const blockBytes = BlockTokens * 4

// engine is the scheduling logic shared by the scheduler goroutine (real time) and
// SimulateVirtual (virtual time): it decides what each step computes and how long the
// step takes, and applies the step's result. It never sleeps and holds no lock; its
// owner serializes the calls.
//
// running holds the sequences with a slot (at most MaxSeqs): fresh ones, partially
// prefilled ones and decoding ones. waiting is the FIFO of sequences without a slot.
type engine struct {
	cfg     Config // defaults applied
	kv      *kvCache
	running []*seq
	waiting []*seq

	prefillComputed, prefillSaved, preemptions, decodeTokens int64
}

// stepPlan is what one step computes.
type stepPlan struct {
	batch         []*seq // the sequences in the step, each once
	chunks        []int  // tokens computed per sequence of batch: 1 for a decode
	emitting      int    // sequences that emit a token at the end of the step
	prefillTokens int    // prompt (or re-prefill) tokens computed
	d             time.Duration
	// full says the step had no room left: every slot taken, sequences waiting for one,
	// the token budget used up, or sequences with a slot left out (no KV blocks).
	full bool
}

func newEngine(cfg Config) *engine {
	e := &engine{cfg: cfg}
	if cfg.KVCacheTokens > 0 {
		e.kv = newKVCache(max(cfg.KVCacheTokens/BlockTokens, 1))
	}
	return e
}

// free is the slots free for waiting sequences.
func (e *engine) free() int { return e.cfg.MaxSeqs - len(e.running) }

// refill gives free slots to the longest waiting sequences.
func (e *engine) refill() {
	n := min(e.free(), len(e.waiting))
	if n > 0 {
		e.running = append(e.running, e.waiting[:n]...)
		clear(e.waiting[:n])
		e.waiting = e.waiting[n:]
		if len(e.waiting) == 0 {
			e.waiting = nil // let the backing array go
		}
	}
}

// needTokens is the tokens q must compute before it emits its next token: its prompt and
// what it generated (after a preemption) less what is in its KV cache; 1 when decoding.
func (q *seq) needTokens() int {
	if q.prefilled {
		return 1
	}
	return max(q.prompt+q.emitted-q.computed, 0)
}

// plan decides the next step: first one token for every decoding sequence, then prefill
// chunks for the sequences with a slot that are still prefilling, oldest first, within
// MaxBatchedTokens and the free KV blocks. A decoding sequence that finds no free block
// preempts the newest sequence holding blocks (vLLM's recompute policy).
func (e *engine) plan() stepPlan {
	var p stepPlan
	kvShort := false // a prefill got fewer tokens than it could for lack of KV blocks
	budget := -1     // unlimited
	if e.cfg.MaxBatchedTokens > 0 {
		budget = e.cfg.MaxBatchedTokens
	}
	take := func(q *seq, n int) {
		p.batch = append(p.batch, q)
		p.chunks = append(p.chunks, n)
		if budget >= 0 {
			budget -= n
		}
	}
	// Decodes first (over a copy: a preemption removes a sequence from running).
	for _, q := range slices.Clone(e.running) {
		if !q.prefilled || q.canceled {
			continue // not decoding, or preempted meanwhile
		}
		if budget == 0 {
			break
		}
		if !e.ensure(q, q.computed+1, &p) {
			continue // q itself was preempted
		}
		take(q, 1)
		p.emitting++
	}
	// Then prefill chunks, oldest first.
	for i := 0; i < len(e.running) && budget != 0; i++ {
		q := e.running[i]
		if q.prefilled || q.canceled || q.inStep {
			continue
		}
		if q.computed == 0 && q.blocks() == 0 {
			e.lookupPrefix(q)
		}
		n := q.needTokens()
		if budget > 0 && e.cfg.MaxBatchedTokens > 0 {
			n = min(n, budget)
		}
		if e.kv != nil {
			// As much of the chunk as free blocks allow; prefills preempt nobody.
			room := (q.blocks()+e.kv.available())*BlockTokens - q.computed
			if q.needTokens() > 0 && room <= 0 {
				kvShort = true
				continue
			}
			if room < n {
				kvShort = true
			}
			n = min(n, room)
			e.kv.grow(q, q.computed+n)
		}
		q.inStep = true
		take(q, n)
		p.prefillTokens += n
		if n == q.needTokens() {
			p.emitting++
		}
	}
	if len(p.batch) == 0 && len(e.running) > 0 && e.kv != nil {
		// Every sequence waits for blocks that sequences with slots hold: preempt the
		// newest holder so that the oldest can go on; a sequence alone that needs more
		// than the whole cache runs over it (judgesim does not model max_model_len).
		if e.preemptNewest(e.running[0]) {
			return e.plan()
		}
		if q := e.running[0]; !q.canceled {
			n := q.needTokens()
			e.kv.overcommit(q, q.computed+n)
			take(q, n)
			if !q.prefilled {
				p.prefillTokens += n
			}
			p.emitting++
		}
	}
	for _, q := range p.batch {
		q.inStep = true
	}
	p.d = e.stepTime(p.emitting, p.prefillTokens)
	p.full = len(e.waiting) > 0 || e.free() <= 0 || budget == 0 || kvShort || len(p.batch) < len(e.running)
	return p
}

// stepTime is StepBase + StepPerSeq × emitting + PrefillPerToken × prefill, divided by
// Speed.
func (e *engine) stepTime(emitting, prefill int) time.Duration {
	d := e.cfg.StepBase + time.Duration(emitting)*e.cfg.StepPerSeq + time.Duration(prefill)*e.cfg.PrefillPerToken
	if s := e.cfg.Speed; s > 0 && s != 1 {
		d = time.Duration(float64(d) / s)
	}
	return d
}

// ensure gets q the blocks for tokens, preempting the newest block holders when none
// are free (q itself when it is the newest). It reports whether q keeps its slot.
func (e *engine) ensure(q *seq, tokens int, p *stepPlan) bool {
	if e.kv == nil {
		return true
	}
	for !e.kv.grow(q, tokens) {
		v := e.newestHolder(q)
		if v == nil {
			// q alone holds blocks and needs more than the cache: it runs over it
			// rather than preempting itself for ever.
			e.kv.overcommit(q, tokens)
			return true
		}
		if inBatch(p, v) {
			// Every other holder is older than q and already scheduled: q is the
			// newest, so q is preempted.
			e.preempt(q)
			return false
		}
		e.preempt(v)
	}
	return true
}

func inBatch(p *stepPlan, q *seq) bool {
	for _, b := range p.batch {
		if b == q {
			return true
		}
	}
	return false
}

// newestHolder is the newest running sequence other than q holding blocks.
func (e *engine) newestHolder(q *seq) *seq {
	for i := len(e.running) - 1; i >= 0; i-- {
		if v := e.running[i]; v != q && v.blocks() > 0 {
			return v
		}
	}
	return nil
}

// preemptNewest preempts the newest block holder other than keep, reporting whether
// there was one.
func (e *engine) preemptNewest(keep *seq) bool {
	v := e.newestHolder(keep)
	if v == nil {
		return false
	}
	e.preempt(v)
	return true
}

// preempt frees v's blocks and sends it to the front of the waiting queue: it must
// prefill its prompt and what it generated again.
func (e *engine) preempt(v *seq) {
	e.preemptions++
	e.kv.release(v)
	v.computed, v.prefilled = 0, false
	if i := slices.Index(e.running, v); i >= 0 {
		e.running = slices.Delete(e.running, i, i+1)
	}
	e.waiting = append([]*seq{v}, e.waiting...)
}

// lookupPrefix shares the cached blocks of q's prompt prefix (PrefixCaching): they are
// not computed again. At least one token is always computed.
func (e *engine) lookupPrefix(q *seq) {
	if e.kv == nil || !e.cfg.PrefixCaching || len(q.chain) == 0 {
		return
	}
	n := e.kv.share(q, q.chain, q.prompt+q.emitted)
	q.computed = n * BlockTokens
	e.prefillSaved += int64(q.computed)
}

// commit applies a step: computed tokens, emitted tokens, newly full prompt blocks
// cached. It returns the sequences that finished or were canceled, removed from
// running.
func (e *engine) commit(p stepPlan) (done []*seq) {
	for i, q := range p.batch {
		q.inStep = false
		if q.canceled {
			continue
		}
		n := p.chunks[i]
		if q.prefilled {
			q.computed++
			q.emitted++
			e.decodeTokens++
		} else {
			q.computed += n
			e.prefillComputed += int64(n)
			if q.computed >= q.prompt+q.emitted {
				q.prefilled = true
				q.emitted++
				e.decodeTokens++
			}
		}
		if e.kv != nil && e.cfg.PrefixCaching {
			e.kv.promote(q)
		}
	}
	kept := e.running[:0]
	for _, q := range e.running {
		if q.canceled || q.emitted >= q.need {
			if e.kv != nil {
				e.kv.release(q)
			}
			done = append(done, q)
			continue
		}
		kept = append(kept, q)
	}
	clear(e.running[len(kept):])
	e.running = kept
	return done
}

// remove takes q out of running or waiting at once (its client left), freeing its
// blocks; a sequence in the running step is only marked canceled.
func (e *engine) remove(keep func(*seq) bool) {
	drop := func(q *seq) bool {
		if keep(q) {
			return true
		}
		if q.inStep {
			q.canceled = true
			return true
		}
		if e.kv != nil {
			e.kv.release(q)
		}
		return false
	}
	e.running = filter(e.running, drop)
	e.waiting = filter(e.waiting, drop)
}

// stopAll removes every sequence, returning them.
func (e *engine) stopAll() []*seq {
	all := append(append([]*seq(nil), e.running...), e.waiting...)
	for _, q := range all {
		if e.kv != nil {
			e.kv.release(q)
		}
	}
	e.running, e.waiting = nil, nil
	return all
}

// kvCache is the KV-cache block pool: blocks are free, held privately by a sequence,
// or cached under the hash chain of a full prompt block (shared by the sequences that
// reference it; evictable, least recently used first, when none does).
type kvCache struct {
	total  int
	used   int // private blocks plus cached blocks referenced by a sequence
	peak   int
	cached map[uint64]*cblock
	lru    *list.List // hashes of unreferenced cached blocks, oldest first
}

type cblock struct {
	ref  int
	elem *list.Element // in lru when ref == 0
}

func newKVCache(blocks int) *kvCache {
	return &kvCache{total: blocks, cached: make(map[uint64]*cblock), lru: list.New()}
}

// available is the blocks that can be allocated: free ones and evictable cached ones.
func (c *kvCache) available() int { return max(c.total-c.used, 0) }

func (q *seq) blocks() int { return q.priv + len(q.shared) }

func blocksFor(tokens int) int { return (max(tokens, 0) + BlockTokens - 1) / BlockTokens }

// grow gives q the blocks for tokens, evicting cached blocks as needed; false when
// there are not enough.
func (c *kvCache) grow(q *seq, tokens int) bool {
	n := blocksFor(tokens) - q.blocks()
	if n <= 0 {
		return true
	}
	if n > c.available() {
		return false
	}
	for c.total-c.used-c.lru.Len() < n {
		c.evict()
	}
	q.priv += n
	c.used += n
	c.peak = max(c.peak, c.used)
	return true
}

// overcommit gives q the blocks for tokens even beyond the cache.
func (c *kvCache) overcommit(q *seq, tokens int) {
	n := blocksFor(tokens) - q.blocks()
	if n <= 0 {
		return
	}
	for c.lru.Len() > 0 {
		c.evict()
	}
	q.priv += n
	c.used += n
	c.peak = max(c.peak, c.used)
}

func (c *kvCache) evict() {
	e := c.lru.Front()
	h := e.Value.(uint64)
	c.lru.Remove(e)
	delete(c.cached, h)
}

// share references the cached blocks of chain's longest cached prefix, leaving at
// least one of tokens to compute; it returns how many blocks q shares.
func (c *kvCache) share(q *seq, chain []uint64, tokens int) int {
	for _, h := range chain {
		if (len(q.shared)+1)*BlockTokens >= tokens {
			break
		}
		b, ok := c.cached[h]
		if !ok {
			break
		}
		c.ref(b)
		q.shared = append(q.shared, h)
	}
	return len(q.shared)
}

func (c *kvCache) ref(b *cblock) {
	if b.ref == 0 {
		c.lru.Remove(b.elem)
		b.elem = nil
		c.used++
		c.peak = max(c.peak, c.used)
	}
	b.ref++
}

// promote caches q's full prompt blocks that it computed privately: each becomes a
// shared block under its hash chain (or, when another sequence cached the same block
// first, q shares that one and frees its copy).
func (c *kvCache) promote(q *seq) {
	for len(q.shared) < len(q.chain) && (len(q.shared)+1)*BlockTokens <= q.computed && q.priv > 0 {
		h := q.chain[len(q.shared)]
		q.priv--
		c.used--
		if b, ok := c.cached[h]; ok {
			c.ref(b)
		} else {
			c.cached[h] = &cblock{ref: 1}
			c.used++
		}
		q.shared = append(q.shared, h)
	}
}

// release frees q's private blocks and unreferences its shared ones (which stay cached,
// evictable, most recently used last).
func (c *kvCache) release(q *seq) {
	c.used -= q.priv
	q.priv = 0
	for _, h := range q.shared {
		b := c.cached[h]
		if b == nil {
			continue
		}
		if b.ref--; b.ref == 0 {
			c.used--
			b.elem = c.lru.PushBack(h)
		}
	}
	q.shared = nil
}

// promptChain is the hash chain of the full 64-byte blocks of prompt text: the hash of
// block i covers blocks 0..i, so equal hashes mean equal prefixes.
func promptChain(text string) []uint64 {
	n := len(text) / blockBytes
	if n == 0 {
		return nil
	}
	chain := make([]uint64, n)
	var h uint64 = 14695981039346656037 // FNV-1a offset basis
	for i := range n {
		for _, b := range []byte(text[i*blockBytes : (i+1)*blockBytes]) {
			h ^= uint64(b)
			h *= 1099511628211
		}
		h ^= uint64(i + 1)
		h *= 1099511628211
		chain[i] = h
	}
	return chain
}
