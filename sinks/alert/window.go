package alert

import (
	"math"
	"time"
)

// Mean window: an hour of event time in 5-minute buckets.
const (
	meanBucket  = 5 * 60 // seconds
	meanBuckets = 12
)

// meanWindow is a series' score mean over the last hour of event time, whatever the
// rule's detector: what raterd.alert.series.mean exports. Records more than an hour older
// than the newest are left out.
type meanWindow struct {
	Cur     int64         `json:"cur"`
	Buckets []meanBucketN `json:"buckets,omitempty"`
}

type meanBucketN struct {
	I int64   `json:"i"` // Unix time / meanBucket
	N int64   `json:"n"`
	S float64 `json:"s"` // sum of the scores
}

func (w *meanWindow) add(x float64, at time.Time) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return
	}
	i := at.Unix() / meanBucket
	if i <= w.Cur-meanBuckets {
		return // late
	}
	w.Cur = max(w.Cur, i)
	kept := w.Buckets[:0]
	found := false
	for _, b := range w.Buckets {
		if b.I <= w.Cur-meanBuckets {
			continue
		}
		if b.I == i {
			b.N++
			b.S += x
			found = true
		}
		kept = append(kept, b)
	}
	if !found {
		kept = append(kept, meanBucketN{I: i, N: 1, S: x})
	}
	w.Buckets = kept
}

func (w *meanWindow) mean() (float64, bool) {
	var n int64
	var sum float64
	for _, b := range w.Buckets {
		if b.I > w.Cur-meanBuckets {
			n += b.N
			sum += b.S
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}
