package memlimit

import (
	"bytes"
	"log/slog"
	"math"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"536870912": 512 << 20,
		"512MiB":    512 << 20,
		"1.5GiB":    3 << 29,
		"64KiB":     64 << 10,
		"100B":      100,
		"1TiB":      1 << 40,
		" 2 GiB ":   2 << 30,
		"0":         0,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "-5MiB", "512Mi", "512MB", "lots", "MiB", "0x10", "NaN", "InfGiB", "1e30TiB", "9223372036854775808"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		512 << 20:              "512MiB",
		483183820:              "460.8MiB",
		2 << 30:                "2GiB",
		100:                    "100B",
		math.MaxInt64:          "none",
		1<<40 + 1<<39:          "1.5TiB",
		int64(1.25 * 1024):     "1.2KiB",
		int64(1.75 * 1024):     "1.8KiB",
		int64(1023 * 1024):     "1023KiB",
		int64(1 << 20):         "1MiB",
		int64(1<<20 + 1):       "1MiB",
		int64(3 << 29):         "1.5GiB",
		int64(10 << 30):        "10GiB",
		int64(1 << 10):         "1KiB",
		int64(1<<10 - 1):       "1023B",
		int64(999 << 20):       "999MiB",
		int64(1<<30 - 1):       "1024MiB",
		int64(1 << 20 * 7 / 4): "1.8MiB",
	} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// cgroupTrees are cgroup trees as containers and hosts lay them out, by name.
func cgroupTrees() map[string]fstest.MapFS {
	return map[string]fstest.MapFS{
		// v2Container: Docker or Kubernetes with a cgroup namespace: the container's own
		// cgroup is the root of the mount.
		"v2Container": {
			"proc/self/cgroup":                 {Data: []byte("0::/\n")},
			"sys/fs/cgroup/cgroup.controllers": {Data: []byte("cpu memory pids\n")},
			"sys/fs/cgroup/memory.max":         {Data: []byte("536870912\n")},
		},
		// v2Host: a systemd service with MemoryMax= under a slice with a lower one.
		"v2Host": {
			"proc/self/cgroup": {Data: []byte("0::/system.slice/raterd.service\n")},
			"sys/fs/cgroup/system.slice/raterd.service/memory.max": {Data: []byte("2147483648\n")},
			"sys/fs/cgroup/system.slice/memory.max":                {Data: []byte("1073741824\n")},
		},
		// v2Unlimited: a cgroup without a limit.
		"v2Unlimited": {
			"proc/self/cgroup": {Data: []byte("0::/user.slice/session-1.scope\n")},
			"sys/fs/cgroup/user.slice/session-1.scope/memory.max": {Data: []byte("max\n")},
			"sys/fs/cgroup/user.slice/memory.max":                 {Data: []byte("max\n")},
		},
		// v1Container: cgroup v1 without a cgroup namespace: /proc/self/cgroup names the
		// host's path, the mount holds the container's own cgroup at its root.
		"v1Container": {
			"proc/self/cgroup":                           {Data: []byte("12:pids:/docker/abc\n11:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/system.slice/containerd.service\n")},
			"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("268435456\n")},
		},
		// v1Unlimited: v1's "no limit".
		"v1Unlimited": {
			"proc/self/cgroup":                           {Data: []byte("11:memory:/\n")},
			"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")},
		},
	}
}

func TestCgroupLimit(t *testing.T) {
	trees := cgroupTrees()
	for _, tc := range []struct {
		name  string
		root  fstest.MapFS
		limit int64
		file  string
	}{
		{"v2 container", trees["v2Container"], 512 << 20, "sys/fs/cgroup/memory.max"},
		{"v2 host, the parent's limit is lower", trees["v2Host"], 1 << 30, "sys/fs/cgroup/system.slice/memory.max"},
		{"v2 max", trees["v2Unlimited"], 0, ""},
		{"v1 container", trees["v1Container"], 256 << 20, "sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{"v1 unlimited", trees["v1Unlimited"], 0, ""},
		{"no cgroup files", fstest.MapFS{}, 0, ""},
		{"garbage", fstest.MapFS{"proc/self/cgroup": {Data: []byte("nonsense\n0::/x\n")}, "sys/fs/cgroup/x/memory.max": {Data: []byte("lots\n")}}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit, file, ok := CgroupLimit(tc.root)
			if limit != tc.limit || file != tc.file || ok != (tc.limit > 0) {
				t.Fatalf("CgroupLimit = %d, %q, %v; want %d, %q", limit, file, ok, tc.limit, tc.file)
			}
		})
	}
}

func TestResolvePrecedence(t *testing.T) {
	trees := cgroupTrees()
	for _, tc := range []struct {
		name      string
		env, conf string
		root      fstest.MapFS
		source    Source
		limit     int64
	}{
		{"GOMEMLIMIT wins over the config and the cgroup", "300MiB", "400MiB", trees["v2Container"], SourceEnv, 0},
		{"the config wins over the cgroup", "", "400MiB", trees["v2Container"], SourceConfig, 400 << 20},
		{"the config in bytes", "", "419430400", fstest.MapFS{}, SourceConfig, 400 << 20},
		{"off wins over the cgroup", "", "off", trees["v2Container"], SourceNone, 0},
		{"90% of the cgroup's", "", "", trees["v2Container"], SourceCgroup, 512 << 20 / 100 * CgroupPercent},
		{"90% of a v1 cgroup's", "", "", trees["v1Container"], SourceCgroup, 256 << 20 / 100 * CgroupPercent},
		{"none at all", "", "", trees["v2Unlimited"], SourceNone, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Resolve(tc.env, tc.conf, tc.root)
			if err != nil || d.Source != tc.source || d.Limit != tc.limit {
				t.Fatalf("Resolve = %+v, %v; want source %s, limit %d", d, err, tc.source, tc.limit)
			}
		})
	}
	for _, bad := range []string{"0", "-1", "lots"} {
		if d, err := Resolve("", bad, fstest.MapFS{}); err == nil {
			t.Errorf("Resolve(memory_limit %q) = %+v, want an error", bad, d)
		}
	}
}

func TestApplySetsAndLogs(t *testing.T) {
	trees := cgroupTrees()
	for _, tc := range []struct {
		name      string
		env, conf string
		root      fstest.MapFS
		set       int64 // what the setter is given; -2: not called
		log       []string
	}{
		{"env", "300MiB", "400MiB", trees["v2Container"], -1, []string{"GOMEMLIMIT", "source=GOMEMLIMIT", "limit=300MiB", "GOMEMLIMIT=300MiB", "cgroup_limit=512MiB"}},
		{"config", "", "400MiB", trees["v2Container"], 400 << 20, []string{"source=memory_limit", "limit=400MiB", "cgroup_file=/sys/fs/cgroup/memory.max"}},
		{"config above the cgroup", "", "1GiB", trees["v2Container"], 1 << 30, []string{"source=memory_limit", "level=WARN", "OOM killer"}},
		{"cgroup", "", "", trees["v2Container"], 512 << 20 / 100 * CgroupPercent, []string{"source=cgroup", "limit=460.8MiB", "cgroup_limit=512MiB", "90%"}},
		{"none", "", "", fstest.MapFS{}, -2, []string{"source=none", "limit=none"}},
		{"off", "", "off", trees["v2Container"], -2, []string{"source=none", "limit=none", "cgroup_limit=512MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, nil))
			var got int64 = -2
			set := func(n int64) int64 {
				got = n
				return 300 << 20 // the runtime's limit, as GOMEMLIMIT=300MiB set it
			}
			if _, err := Apply(logger, tc.env, tc.conf, tc.root, set); err != nil {
				t.Fatal(err)
			}
			if got != tc.set {
				t.Errorf("the limit set was %d, want %d", got, tc.set)
			}
			for _, want := range tc.log {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, buf.String())
				}
			}
			if tc.name != "config above the cgroup" && strings.Contains(buf.String(), "level=WARN") {
				t.Errorf("unexpected warning:\n%s", buf.String())
			}
		})
	}
}
