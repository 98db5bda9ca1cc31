package consumer

import (
	"context"
	"strings"
	"testing"
)

func TestPartitionLag(t *testing.T) {
	for _, c := range []struct {
		committed, first, end int64
		latest                bool
		want                  int64
	}{
		{-1, 0, 7, false, 7}, // nothing committed, earliest: the group reads the whole partition
		{-1, 5, 7, false, 2}, // ... from the oldest record retention kept
		{-1, 0, 7, true, 0},  // latest: a new group reads nothing already there
		{3, 0, 7, false, 4},
		{3, 0, 7, true, 4}, // a commit counts whatever the start offset
		{7, 0, 7, false, 0},
		{9, 0, 7, false, 0}, // a commit past the end (truncated topic) is no negative lag
	} {
		l := PartitionLag{Committed: c.committed, First: c.first, End: c.end, StartLatest: c.latest}
		if got := l.Lag(); got != c.want {
			t.Errorf("%+v: lag %d, want %d", l, got, c.want)
		}
	}
	if got := TotalLag([]PartitionLag{{Committed: -1, End: 2}, {Committed: 1, End: 5}}); got != 6 {
		t.Errorf("TotalLag = %d, want 6", got)
	}
}

func TestGroupLagNamesTheMissingKey(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Topics: []string{"t"}, GroupID: "g"}, "kafka.brokers:"},
		{Config{Brokers: []string{"127.0.0.1:1"}, GroupID: "g"}, "kafka.topics:"},
		{Config{Brokers: []string{"127.0.0.1:1"}, Topics: []string{"t"}}, "kafka.group_id:"},
	} {
		if _, err := GroupLag(context.Background(), c.cfg, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("GroupLag(%+v): err = %v, want one naming %s", c.cfg, err, c.want)
		}
	}
}
