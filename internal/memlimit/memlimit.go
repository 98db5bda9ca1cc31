// Package memlimit sets the Go runtime's soft memory limit (runtime/debug.SetMemoryLimit,
// what GOMEMLIMIT sets) at start, from the first of these that is there: the GOMEMLIMIT
// environment variable (which the runtime has read already), raterd.yaml's memory_limit,
// or CgroupPercent (90%) of the memory limit of the cgroup the process runs in.
//
// The soft limit makes the garbage collector run more often as the heap nears it, instead
// of letting the heap grow to twice the live heap (GOGC=100) past a container's limit and
// into the kernel's OOM killer. It is soft: a live heap above it is not an error, only
// more collection (the runtime caps the collector's share of CPU at about half).
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// Source names what set the limit.
type Source string

// The sources of the limit, in order of precedence.
const (
	// SourceEnv is the GOMEMLIMIT environment variable, which the runtime reads itself.
	SourceEnv Source = "GOMEMLIMIT"
	// SourceConfig is raterd.yaml's memory_limit.
	SourceConfig Source = "memory_limit"
	// SourceCgroup is CgroupPercent of the cgroup's memory limit.
	SourceCgroup Source = "cgroup"
	// SourceNone is no limit: none of the others is set, or memory_limit is off.
	SourceNone Source = "none"
)

// CgroupPercent is the share of a cgroup's memory limit, in percent, that becomes the soft limit when
// neither GOMEMLIMIT nor memory_limit is set. The rest is headroom for what the cgroup
// charges and the Go runtime does not count against its limit: the page cache of the
// files the process writes, kernel memory for its sockets and buffers, and heap pages
// freed but not yet returned to the kernel. 90% is the usual rule for Go services; the
// runtime's own overhead beyond the heap (stacks, metadata) is counted by the limit.
const CgroupPercent = 90

// Off is the configured value that turns the limit off, even in a cgroup with a limit.
const Off = "off"

// unlimited is where a cgroup v1 limit stops being one: an unset memory.limit_in_bytes
// reads as the largest page-aligned int64 (9223372036854771712).
const unlimited = 1 << 62

// ParseSize parses a size in bytes: an integer, or a number with one of GOMEMLIMIT's
// units B, KiB, MiB, GiB or TiB ("512MiB", "1.5GiB"). Negative, unparsable and
// out-of-range values are errors.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num, mult := s, 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil && mult == 1 {
		if n < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || strings.ContainsAny(num, "xXpPnN_") {
		return 0, fmt.Errorf("%q is not a size: bytes, or a number with B, KiB, MiB, GiB or TiB (512MiB)", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	if b := f * mult; b < math.MaxInt64 {
		return int64(b), nil
	}
	return 0, fmt.Errorf("%q is too large", s)
}

// CgroupLimit returns the memory limit of the cgroup the process runs in, read under
// root (os.DirFS("/") in production, a fake tree in tests): cgroup v1's
// memory.limit_in_bytes when /proc/self/cgroup names a memory controller, else cgroup
// v2's memory.max. A limit set on a parent cgroup binds too, so the cgroup's directory and
// each of its parents are read and the lowest limit wins; file is the one it came from.
// ok is false when no cgroup file sets a limit (no cgroup, "max", v1's unlimited).
func CgroupLimit(root fs.FS) (limit int64, file string, ok bool) {
	v1, v2, sawV1 := "/", "/", false
	if data, err := fs.ReadFile(root, "proc/self/cgroup"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			// hierarchy-ID:controller-list:cgroup-path
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 {
				continue
			}
			switch {
			case parts[0] == "0" && parts[1] == "":
				v2 = parts[2]
			case containsWord(parts[1], "memory"):
				v1, sawV1 = parts[2], true
			}
		}
	}
	mount, name, dir := "sys/fs/cgroup", "memory.max", v2
	if sawV1 {
		mount, name, dir = "sys/fs/cgroup/memory", "memory.limit_in_bytes", v1
	} else if _, err := fs.Stat(root, "sys/fs/cgroup/memory/memory.limit_in_bytes"); err == nil {
		// No /proc/self/cgroup, or one without a memory line: a v1 mount still says so.
		mount, name, dir = "sys/fs/cgroup/memory", "memory.limit_in_bytes", v1
	}
	dir = path.Clean("/" + dir)
	for {
		f := path.Join(mount, dir, name)
		if n, set := readLimit(root, f); set && (!ok || n < limit) {
			limit, file, ok = n, f, true
		}
		if dir == "/" {
			break
		}
		dir = path.Dir(dir)
	}
	// A container's own cgroup mounted at the root while /proc/self/cgroup names the
	// host's path (cgroup v1, or v2 without a cgroup namespace) is read at "/" above.
	return limit, file, ok
}

// readLimit reads one cgroup limit file: a byte count, or "max" (v2) or a value at or
// above unlimited (v1) for none. A missing or unreadable file is no limit.
func readLimit(root fs.FS, name string) (int64, bool) {
	data, err := fs.ReadFile(root, name)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= unlimited {
		return 0, false
	}
	return n, true
}

func containsWord(list, word string) bool {
	for _, w := range strings.Split(list, ",") {
		if w == word {
			return true
		}
	}
	return false
}

// Decision is the limit chosen and what chose it.
type Decision struct {
	// Source is what set the limit.
	Source Source
	// Limit is the soft limit in bytes; 0 with SourceNone, and with SourceEnv (the
	// runtime's, read back by Apply).
	Limit int64
	// Env is GOMEMLIMIT's value with SourceEnv.
	Env string
	// CgroupLimit and CgroupFile are the cgroup's memory limit and the file it was read
	// from, when there is one, whatever the source.
	CgroupLimit int64
	CgroupFile  string
}

// Resolve decides the limit: env is GOMEMLIMIT's value ("" when unset); configured is
// memory_limit's value ("" when unset, Off, or a size ParseSize reads, already
// validated); root is where the cgroup files are read (CgroupLimit). It sets nothing.
func Resolve(env, configured string, root fs.FS) (Decision, error) {
	var d Decision
	if root != nil {
		if n, f, ok := CgroupLimit(root); ok {
			d.CgroupLimit, d.CgroupFile = n, f
		}
	}
	switch {
	case env != "":
		d.Source, d.Env = SourceEnv, env
	case configured == Off:
		d.Source = SourceNone
	case configured != "":
		n, err := ParseSize(configured)
		if err != nil {
			return Decision{}, err
		}
		if n == 0 {
			return Decision{}, errors.New(`0 is not a limit; "off" turns it off`)
		}
		d.Source, d.Limit = SourceConfig, n
	case d.CgroupLimit > 0:
		d.Source, d.Limit = SourceCgroup, d.CgroupLimit/100*CgroupPercent
	default:
		d.Source = SourceNone
	}
	return d, nil
}

// Apply resolves the limit (Resolve), sets it with set (debug.SetMemoryLimit when nil)
// unless GOMEMLIMIT set it already or there is none, and logs at Info which source set
// what limit; a configured limit above the cgroup's is logged at Warn, since the kernel
// then kills the process before the collector holds it back.
func Apply(logger *slog.Logger, env, configured string, root fs.FS, set func(int64) int64) (Decision, error) {
	if set == nil {
		set = debug.SetMemoryLimit
	}
	d, err := Resolve(env, configured, root)
	if err != nil {
		return d, err
	}
	attrs := []any{"source", string(d.Source)}
	switch d.Source {
	case SourceEnv:
		d.Limit = set(-1) // reads the runtime's limit without changing it
		attrs = append(attrs, "limit", FormatSize(d.Limit), "GOMEMLIMIT", d.Env)
	case SourceConfig, SourceCgroup:
		set(d.Limit)
		attrs = append(attrs, "limit", FormatSize(d.Limit))
	default:
		attrs = append(attrs, "limit", "none")
	}
	if d.CgroupLimit > 0 {
		attrs = append(attrs, "cgroup_limit", FormatSize(d.CgroupLimit), "cgroup_file", "/"+d.CgroupFile)
	}
	msg := "memory limit"
	switch d.Source {
	case SourceEnv:
		msg = "memory limit from GOMEMLIMIT (it wins over memory_limit and the cgroup)"
	case SourceConfig:
		msg = "memory limit from memory_limit"
	case SourceCgroup:
		msg = fmt.Sprintf("memory limit: %d%% of the cgroup's memory limit", CgroupPercent)
	case SourceNone:
		msg = "no memory limit: the heap may grow to twice the live heap (GOGC)"
	}
	logger.Info(msg, attrs...)
	if d.CgroupLimit > 0 && d.Limit > d.CgroupLimit && d.Source != SourceCgroup {
		logger.Warn("the memory limit is above the cgroup's: the kernel's OOM killer acts before the garbage collector holds the heap back", "limit", FormatSize(d.Limit), "cgroup_limit", FormatSize(d.CgroupLimit))
	}
	return d, nil
}

// FormatSize writes n bytes in the largest binary unit it reaches, with at most one
// decimal: "460.8MiB", "2GiB", "512B"; math.MaxInt64 (the runtime's "no limit") is "none".
func FormatSize(n int64) string {
	if n == math.MaxInt64 {
		return "none"
	}
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size {
			return strings.TrimSuffix(strconv.FormatFloat(float64(n)/float64(u.size), 'f', 1, 64), ".0") + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
