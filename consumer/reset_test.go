package consumer

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRewoundOffset(t *testing.T) {
	for _, c := range []struct {
		name                    string
		committed, target, want int64
		kept                    bool
	}{
		{"caught-up group goes back", 100, 40, 40, false},
		{"group without commits starts at the time", -1, 40, 40, false},
		{"lagging group keeps its offset (nothing skipped)", 10, 40, 10, true},
		{"at the target", 40, 40, 40, false},
		{"nothing that recent: target is the end", 100, 100, 100, false},
	} {
		r := OffsetReset{Committed: c.committed, Target: c.target, End: 100}
		r.New = rewoundOffset(r.Committed, r.Target)
		if r.New != c.want || r.Kept() != c.kept {
			t.Errorf("%s: new %d kept %v, want %d %v", c.name, r.New, r.Kept(), c.want, c.kept)
		}
		if got := r.Records(); got != 100-c.want {
			t.Errorf("%s: records %d, want %d", c.name, got, 100-c.want)
		}
	}
}

func TestResetGroupToTimeNamesTheMissingKey(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Topics: []string{"t"}, GroupID: "g"}, "kafka.brokers:"},
		{Config{Brokers: []string{"127.0.0.1:1"}, GroupID: "g"}, "kafka.topics:"},
		{Config{Brokers: []string{"127.0.0.1:1"}, Topics: []string{"t"}}, "kafka.group_id:"},
	} {
		if _, err := ResetGroupToTime(context.Background(), c.cfg, time.Now(), nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ResetGroupToTime(%+v): err = %v, want one naming %s", c.cfg, err, c.want)
		}
	}
}
