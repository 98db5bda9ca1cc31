package checks

import (
	"fmt"
	"math/bits"
	"sync"
	"unicode"
	"unicode/utf8"
)

// NameRepetition is the name of the check that measures degenerate repetition.
const NameRepetition = "repetition"

// Repetition thresholds. A response is "degenerate" when at least repDegenerateShare of
// its word 4-grams already occurred earlier in it, or when repRunShare of them do and one
// uninterrupted repeated stretch is at least repRunWords words long (a loop that took over
// the tail of an otherwise fine answer). Natural prose stays well under 10%; a paragraph
// said twice is about 50%.
const (
	repN               = 4
	repMinWords        = 20
	repDegenerateShare = 0.35
	repRunShare        = 0.20
	repRunWords        = 50
)

// repetitionChecker runs the repetition check with scratch buffers from a pool, so that
// it allocates nothing in steady state even on 100 KB responses; it is safe for
// concurrent use.
type repetitionChecker struct {
	// scratch holds *repScratch buffers.
	scratch sync.Pool
}

// newRepetitionChecker returns a repetitionChecker with an empty pool.
func newRepetitionChecker() *repetitionChecker {
	r := &repetitionChecker{}
	r.scratch.New = func() any { return new(repScratch) }
	return r
}

// repScratch is the reusable memory of one repetition check.
type repScratch struct {
	toks []uint64 // token hashes
	set  []uint64 // open-addressing hash set of n-gram hashes; 0 marks a free slot
}

// maxPooledScratch keeps one huge response from pinning its buffers in the pool forever.
const maxPooledScratch = 1 << 18

// checkRepetition measures degenerate repetition: the share of word 4-grams that repeat
// an earlier 4-gram, and the longest uninterrupted stretch of such repeats. Words are
// runs of letters and digits, case-folded; each CJK character and each emoji counts as a
// word, so loops in scripts without spaces are caught too. It runs in O(n) with a
// pooled hash set and no allocation in steady state.
func (r *repetitionChecker) checkRepetition(s string) Result {
	sc := r.scratch.Get().(*repScratch)
	defer func() {
		if cap(sc.toks) <= maxPooledScratch && cap(sc.set) <= 2*maxPooledScratch {
			r.scratch.Put(sc)
		}
	}()
	sc.toks = appendTokenHashes(sc.toks[:0], s)
	words := len(sc.toks)
	if words < repMinWords {
		return Result{Value: 1, Label: "ok", Confidence: 1, Explanation: fmt.Sprintf("Too short to show degenerate repetition (%d words).", words)}
	}
	grams := words - repN + 1
	size := 1 << bits.Len(uint(2*grams)) // a power of two, at most half full
	if cap(sc.set) < size {
		sc.set = make([]uint64, size)
	} else {
		sc.set = sc.set[:size]
		clear(sc.set)
	}
	mask := uint64(size - 1)
	repeated, run, maxRun := 0, 0, 0
	for i := 0; i < grams; i++ {
		// Token hashes are already well mixed, so rotating each by its position and
		// XOR-ing them is an order-sensitive n-gram hash without another mixing round.
		h := sc.toks[i]
		for k := 1; k < repN; k++ {
			h ^= bits.RotateLeft64(sc.toks[i+k], 17*k)
		}
		h |= 1 // keep 0 free as the empty-slot marker
		seen := false
		for p := h & mask; ; p = (p + 1) & mask {
			switch sc.set[p] {
			case 0:
				sc.set[p] = h
			case h:
				seen = true
			default:
				continue
			}
			break
		}
		if seen {
			repeated++
			run++
			maxRun = max(maxRun, run)
		} else {
			run = 0
		}
	}
	share := float64(repeated) / float64(grams)
	runWords := 0
	if maxRun > 0 {
		runWords = maxRun + repN - 1
	}
	degenerate := share >= repDegenerateShare || (share >= repRunShare && runWords >= repRunWords)
	// Confidence grows with the distance from the share threshold.
	conf := 0.5 + min(0.5, abs(share-repDegenerateShare)/repDegenerateShare)
	if degenerate && share < repDegenerateShare {
		conf = 0.7 // caught by the long-run rule
	}
	expl := fmt.Sprintf("%.0f%% of %d-word sequences repeat earlier text; the longest repeated stretch is %d words.", share*100, repN, runWords)
	v := Result{Value: clamp01(1 - share), Label: "ok", Confidence: conf, Explanation: expl}
	if degenerate {
		v.Label = "degenerate"
	}
	return v
}

// appendTokenHashes appends a 64-bit hash of every word of s to dst.
func appendTokenHashes(dst []uint64, s string) []uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	inWord := false
	flush := func() {
		if inWord {
			dst = append(dst, mix64(h))
			h, inWord = offset, false
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			default:
				flush()
				continue
			}
			h = (h ^ uint64(c)) * prime
			inWord = true
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana) || unicode.IsSymbol(r):
			flush()
			dst = append(dst, mix64(uint64(unicode.ToLower(r))+0x51afd7ed558ccd))
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			h = (h ^ uint64(unicode.ToLower(r))) * prime
			inWord = true
		default:
			flush()
		}
	}
	flush()
	return dst
}

// mix64 is the SplitMix64 finaliser; it spreads FNV's weak low bits over the hash set.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func clamp01(x float64) float64 { return max(0, min(1, x)) }

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
