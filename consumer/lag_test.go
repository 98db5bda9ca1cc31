package consumer

import (
	"context"
	"strings"
	"testing"
)

func TestPartitionLag(t *testing.T) {
	for _, c := range []struct {
		committed, end, want int64
	}{
		{-1, 7, 7}, // nothing committed: the group reads the whole partition
		{3, 7, 4},
		{7, 7, 0},
		{9, 7, 0}, // a commit past the end (truncated topic) is no negative lag
	} {
		if got := (PartitionLag{Committed: c.committed, End: c.end}).Lag(); got != c.want {
			t.Errorf("committed %d end %d: lag %d, want %d", c.committed, c.end, got, c.want)
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
