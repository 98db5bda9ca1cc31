package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"testing"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"raterd/sinks"
)

// TestClassify: the server's codes for a missing grant or user, a schema behind and a
// value that does not fit are permanent; passing trouble (memory, too many parts,
// timeouts, a lost connection) is not.
func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&ch.Exception{Code: 497, Message: "raterd: Not enough privileges"}, ClassAccess},
		{&ch.Exception{Code: 164, Message: "readonly"}, ClassAccess},
		// 18.16's answer, on a connection opened before, once users.xml withdrew the
		// database from the user's allow_databases (seen by the fault suite's access
		// scenario, faults/clickhouse_refusal_integration_test.go).
		{&ch.Exception{Code: 291, Message: "Access denied to database raterd for user default"}, ClassAccess},
		{&ch.Exception{Code: 516, Message: "Authentication failed"}, ClassAccess},
		{&ch.Exception{Code: 16, Message: "No such column x"}, ClassSchema},
		{&ch.Exception{Code: 60, Message: "Table raterd.scores doesn't exist"}, ClassSchema},
		{&ch.Exception{Code: 53, Message: "Type mismatch"}, ClassData},
		{fmt.Errorf("insert: %w", &ch.Exception{Code: 81}), ClassSchema},
		{&ch.Exception{Code: 252, Message: "Too many parts"}, ""},
		{&ch.Exception{Code: 241, Message: "Memory limit exceeded"}, ""},
		{&ch.Exception{Code: 159, Message: "Timeout exceeded"}, ""},
		// On a cluster (docs/design-topology.md §2.1): a replica that lost ZooKeeper turns its
		// tables read-only, the ZooKeeper client fails, or the answer of a replicated insert
		// is lost. All pass once ZooKeeper or the replica is back, so the insert is retried.
		{&ch.Exception{Code: 242, Message: "Table is in readonly mode"}, ""},
		{&ch.Exception{Code: 999, Message: "Coordination::Exception: Connection loss"}, ""},
		{&ch.Exception{Code: 319, Message: "Unknown status of insert"}, ""},
		{context.DeadlineExceeded, ""},
		{errors.New("read: connection reset by peer"), ""},
		{sinks.Permanent(ClassData, errors.New("append")), ClassData},
	}
	for _, tt := range tests {
		if got := sinks.PermanentClass(classify(tt.err)); got != tt.want {
			t.Errorf("classify(%v): class %q, want %q", tt.err, got, tt.want)
		}
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}
