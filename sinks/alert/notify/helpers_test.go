package notify_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"raterd/sinks/alert/notify"
)

// notifyAt is the time of the sample notifications.
var notifyAt = time.Date(2026, 11, 28, 12, 30, 0, 0, time.UTC)

// notifySample is a complete notification in the given state, as the lifecycle sends it
// (a resolution closes an episode that fired).
func notifySample(state string) notify.Notification {
	return notify.Notification{
		Fired:    state != notify.StatePending,
		AlertID:  "a1f3c9e2",
		Rule:     "helpfulness-drop",
		Series:   notify.Series{Model: "support-llm-v7", App: "helpdesk", Evaluator: "helpfulness", Judge: "prometheus-2"},
		State:    state,
		Severity: "critical",
		Observed: 3.12, Expected: 4.2, Lower: 2.95, Upper: 3.29,
		SampleSize: 412,
		Since:      notifyAt.Add(-20 * time.Minute),
		At:         notifyAt,
		Examples:   []notify.Example{{RecordID: "req-7f3a", Score: 1}, {RecordID: "req-81c0", Score: 2}},
		Message:    "helpfulness mean 3.12 is below the threshold 4.2 over the last hour",
		DrilldownSQL: "SELECT record_id, score, explanation FROM raterd.scores FINAL\n" +
			"WHERE model = 'support-llm-v7' AND app = 'helpdesk' AND evaluator = 'helpfulness'\n" +
			"  AND event_time >= '2026-11-28 12:10:00' AND score < 3 ORDER BY event_time LIMIT 100",
	}
}

// notifyRequest is one request a test receiver got.
type notifyRequest struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// notifyReceiver is an httptest server that records each request and answers with
// status(i) for the i-th request (0-based) and body.
type notifyReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []notifyRequest
}

func newNotifyReceiver(t *testing.T, status func(i int) int, body string) *notifyReceiver {
	t.Helper()
	r := &notifyReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			t.Errorf("receiver: read body: %v", err)
		}
		r.mu.Lock()
		i := len(r.reqs)
		r.reqs = append(r.reqs, notifyRequest{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Body: b})
		r.mu.Unlock()
		w.WriteHeader(status(i))
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *notifyReceiver) requests() []notifyRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notifyRequest(nil), r.reqs...)
}

func statusAlways(code int) func(int) int { return func(int) int { return code } }
