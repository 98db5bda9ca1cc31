package clickhouse

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"slices"
	"strconv"

	"raterd/record"
)

// Insert deduplication tokens. ClickHouse (22.2+, on tables with a deduplication window;
// see migration 4) drops an inserted block whose token it has seen among the table's
// recent inserts. raterd's token names exactly the rows an insert carries — each row's
// source topic, partition and offset, record id and identity (evaluator, rubric version,
// judge) — so it is the same for every attempt of one insert, whatever order the rows
// came in, and differs for any insert with other rows: a rescore under a new rubric
// version or judge is never mistaken for a retry.

// scoreInsertToken returns the deduplication token of an insert of rows.
func scoreInsertToken(rows []record.Score) string {
	return scoreChunksToken([][]record.Score{rows})
}

// scoreChunksToken returns the deduplication token of an insert of the rows of chunks,
// the same as scoreInsertToken of them in one slice.
func scoreChunksToken(chunks [][]record.Score) string {
	var rows []*record.Score
	for _, c := range chunks {
		for i := range c {
			rows = append(rows, &c[i])
		}
	}
	slices.SortFunc(rows, func(x, y *record.Score) int {
		return cmp.Or(
			cmp.Compare(x.Source.Topic, y.Source.Topic),
			cmp.Compare(x.Source.Partition, y.Source.Partition),
			cmp.Compare(x.Source.Offset, y.Source.Offset),
			cmp.Compare(x.RecordID, y.RecordID),
			cmp.Compare(x.Evaluator, y.Evaluator),
			cmp.Compare(x.RubricVersion, y.RubricVersion),
			cmp.Compare(x.Judge, y.Judge),
		)
	})
	h := sha256.New()
	for _, r := range rows {
		writeSource(h, r.Source)
		for _, s := range []string{r.RecordID, r.Evaluator, r.RubricVersion, r.Judge} {
			writeField(h, s)
		}
	}
	return token("scores", len(rows), h)
}

// deadLetterInsertToken returns the deduplication token of an insert of letters: a
// message is dead-lettered at most once per source offset.
func deadLetterInsertToken(letters []record.DeadLetter) string {
	srcs := make([]record.Source, len(letters))
	for i := range letters {
		srcs[i] = letters[i].Source
	}
	slices.SortFunc(srcs, func(x, y record.Source) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition), cmp.Compare(x.Offset, y.Offset))
	})
	h := sha256.New()
	for _, s := range srcs {
		writeSource(h, s)
	}
	return token("dead_letters", len(letters), h)
}

// writeSource and writeField frame every value (length or fixed size first), so that no
// two different row sets hash the same byte stream.
func writeSource(h hash.Hash, s record.Source) {
	writeField(h, s.Topic)
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(s.Partition))
	binary.BigEndian.PutUint64(b[8:], uint64(s.Offset))
	h.Write(b[:])
}

func writeField(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

// token formats "raterd-v1-<table>-<rows>-<sha256 prefix>": readable in query logs, and
// 128 bits of hash make a collision between different inserts negligible.
func token(table string, n int, h hash.Hash) string {
	return "raterd-v1-" + table + "-" + strconv.Itoa(n) + "-" + hex.EncodeToString(h.Sum(nil)[:16])
}
