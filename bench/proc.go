package bench

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// freeMemory returns freed memory to the OS before a run, so that a run's peak RSS is its
// own and not what an earlier phase left.
func freeMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// peakRSS samples the process's resident set. On Linux it first resets the kernel's
// high-water mark (writing 5 to /proc/self/clear_refs), so that VmHWM at the end is the
// peak over the run; it also samples VmRSS every 20ms, and reports the larger. Where the
// reset is refused it reports the sampled peak alone, and elsewhere 0.
type peakRSS struct {
	reset bool
	stopc chan struct{}
	done  chan struct{}
	max   int64
	once  sync.Once
	peak  int64
	how   string
}

func startPeakRSS() *peakRSS {
	p := &peakRSS{stopc: make(chan struct{}), done: make(chan struct{})}
	p.reset = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	go func() {
		defer close(p.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _ := procStatusBytes("VmRSS:"); rss > p.max {
				p.max = rss
			}
			select {
			case <-p.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// stop ends the sampling and returns the peak and how it was measured; safe to call twice.
func (p *peakRSS) stop() (int64, string) {
	p.once.Do(func() {
		close(p.stopc)
		<-p.done
		p.peak, p.how = p.max, "VmRSS sampled every 20ms"
		if p.reset {
			if hwm, ok := procStatusBytes("VmHWM:"); ok {
				p.peak, p.how = max(p.peak, hwm), "VmHWM after clear_refs"
			}
		}
		if p.peak == 0 {
			p.how = "not available"
		}
	})
	return p.peak, p.how
}

// procStatusBytes reads a "kB" field of /proc/self/status.
func procStatusBytes(field string) (int64, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	return parseStatusKB(data, field)
}

// parseStatusKB finds "field  N kB" in /proc/<pid>/status text and returns N × 1024.
func parseStatusKB(data []byte, field string) (int64, bool) {
	for line := range bytes.Lines(data) {
		rest, ok := bytes.CutPrefix(line, []byte(field))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, false
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		return n << 10, true
	}
	return 0, false
}

// loadAvg returns the 1, 5 and 15-minute load averages (zeros where unknown).
func loadAvg() [3]float64 {
	var out [3]float64
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	for i, f := range strings.Fields(string(data)) {
		if i >= 3 {
			break
		}
		out[i], _ = strconv.ParseFloat(f, 64)
	}
	return out
}
