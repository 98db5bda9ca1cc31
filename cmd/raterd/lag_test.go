package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestRetryableLagError(t *testing.T) {
	live, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, stop := context.WithCancel(context.Background())
	stop()
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want bool
	}{
		{live, fmt.Errorf("consumer lag: committed offsets of group g: %w", kafka.GroupCoordinatorNotAvailable), true},
		{live, fmt.Errorf("wrapped: %w", kafka.GroupLoadInProgress), true},
		{live, fmt.Errorf("one call: %w", context.DeadlineExceeded), true},
		{done, fmt.Errorf("one call: %w", context.DeadlineExceeded), false}, // the wait itself ended
		{live, fmt.Errorf("consumer lag: kafka.topics: topic t does not exist: %w", kafka.UnknownTopicOrPartition), false},
		{live, errors.New("consumer lag: kafka.group_id: required"), false},
	} {
		if got := retryableLagError(c.ctx, c.err); got != c.want {
			t.Errorf("retryableLagError(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
