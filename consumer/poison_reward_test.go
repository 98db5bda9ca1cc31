package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"raterd/internal/telemetry"
	"raterd/record"
	"raterd/scorer"
	"raterd/scorer/pool"
)

// batchScorer adapts a scorer.Scorer to the pipeline, as internal/app does.
type batchScorer struct{ s *scorer.Scorer }

func (b batchScorer) Score(ctx context.Context, recs []*record.Record) ([]record.Score, error) {
	rows, _, err := b.s.ScoreBatch(ctx, recs)
	return rows, err
}

// newFakeRewardServer is a FAKE vLLM /pooling server: 500 for a request with an input
// containing "POISON" (an input the server cannot handle), a reward per input otherwise.
func newFakeRewardServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Input []string `json:"input"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var data []map[string]any
		for i, in := range body.Input {
			if strings.Contains(in, "POISON") {
				http.Error(w, "CUDA error", http.StatusInternalServerError)
				return
			}
			data = append(data, map[string]any{"index": i, "data": []float64{float64(len(in))}})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The whole path, pipeline → scorer → reward judge → a FAKE server: one poison record in
// batches of 1, 4, 8 and 64 (the reward judge's max_batch is 8) of a judge that is up is
// the only dead letter (judge_failed, after poison_attempts attempts); every other record
// is scored.
func TestPipelineDeadLettersOnlyThePoisonRecordOfARewardBatch(t *testing.T) {
	for _, n := range []int{1, 4, 8, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			srv := newFakeRewardServer(t)
			j, err := scorer.NewRewardJudge(scorer.RewardConfig{Model: "rm", Settings: scorer.RewardSettings{MaxBatch: 8},
				Pool: pool.Config{Endpoints: []pool.Endpoint{{URL: srv.URL}}, MaxAttempts: 1, Timeout: 5 * time.Second,
					Breaker: pool.Breaker{Failures: 1000}}},
				scorer.JudgeSettings{Key: "judges.rm", Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = j.Close(context.Background()) })
			ev := &scorer.Evaluator{Name: "reward", Judge: "rm"}
			if err := ev.Prepare("evaluators[0]", scorer.KindReward); err != nil {
				t.Fatal(err)
			}
			s, err := scorer.New([]*scorer.Evaluator{ev}, map[string]scorer.Judge{"rm": j}, scorer.Options{})
			if err != nil {
				t.Fatal(err)
			}
			// The judge has answered a moment ago (it is up): a lone record's 500 is then
			// the record's, not the judge's.
			warm := &record.Record{ID: "warm-up", Model: "m", Prompt: "p", Response: "healthy"}
			if _, _, err := s.ScoreBatch(context.Background(), []*record.Record{warm}); err != nil {
				t.Fatal(err)
			}

			poison := n / 2
			var msgs []kafka.Message
			for i := range n {
				resp := fmt.Sprintf("answer %d", i)
				if i == poison {
					resp = "POISON"
				}
				v := fmt.Sprintf(`{"id":"r%d","model":"m","prompt":"p","response":%q}`, i, resp)
				msgs = append(msgs, kafka.Message{Topic: "t", Partition: i % 2, Offset: int64(i / 2), Value: []byte(v), Time: time.Unix(0, 0)})
			}
			cfg := testConfig()
			cfg.PoisonAttempts = 3
			cfg.Batch.MaxRecords = n
			cfg.MaxInFlightRecords = max(n, cfg.MaxInFlightRecords)
			reader := &fakeReader{msgs: msgs, commits: map[TopicPartition]int64{}}
			sink := &recordingSink{}
			p, err := New(cfg, reader, batchScorer{s}, sink, sink, Options{Telemetry: telemetry.Settings{Logger: slog.New(slog.DiscardHandler)}})
			if err != nil {
				t.Fatal(err)
			}
			runUntilDone(t, p, int64(n))
			if len(sink.dead) != 1 || sink.dead[0].Reason != ReasonJudgeFailed || sink.dead[0].Attempts != 3 ||
				string(sink.dead[0].Value) != string(msgs[poison].Value) {
				t.Fatalf("dead letters %+v, want only r%d's message (%s, 3 attempts)", sink.dead, poison, ReasonJudgeFailed)
			}
			if len(sink.rows) != n-1 {
				t.Fatalf("%d score rows, want %d", len(sink.rows), n-1)
			}
		})
	}
}
