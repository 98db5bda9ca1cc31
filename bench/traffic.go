package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"raterd/consumer"
	"raterd/internal/trafficgen"
	"raterd/record"
	"raterd/scorer"
)

// benchTraffic generates n message values with trafficgen's exact-repeat traffic (prompts
// of 200–4,000 characters, responses of 200–2,000, five models, several apps), record ids
// rewritten to idPrefix-NNNNNN so that runs never share ids. With --zipf 0 every valid
// record is then made unique (uniquify): no two share a prompt or a response.
func benchTraffic(o benchOptions, seed int64, n int, idPrefix string) ([][]byte, trafficInfo) {
	values := benchValues(o, seed, n, idPrefix, 0)
	return values, describeTraffic(values)
}

// benchValues generates the message values of benchTraffic; with --zipf 0, record i is
// made unique as record base+i, so that chunks generated with successive bases (the soak
// run's) never share a prompt or a response.
func benchValues(o benchOptions, seed int64, n int, idPrefix string, base int) [][]byte {
	opts := trafficgen.Options{Seed: seed, Count: n, ExactRepeats: true, InvalidShare: o.invalid, ZipfS: 1.1, DistinctPrompts: max(o.distinct, 1)}
	if o.zipf > 0 {
		opts.ZipfS = o.zipf
	}
	values := trafficgen.Generate(opts)
	from := []byte(`"id":"req-`)
	to := []byte(`"id":"` + idPrefix + `-`)
	for i, v := range values {
		v = bytes.Replace(v, from, to, 1)
		if o.zipf == 0 {
			v = uniquify(v, base+i)
		}
		values[i] = v
	}
	return values
}

// recordID returns the id of a message value written by benchTraffic ("" if none).
func recordID(v []byte) string {
	_, rest, ok := bytes.Cut(v, []byte(`"id":"`))
	if !ok {
		return ""
	}
	id, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(id)
}

// uniquify makes a valid record's prompt and response unique to record i without
// changing what the heuristic checks find: the prompt gets a reference sentence at its
// end, a JSON response a unique run of insignificant whitespace after its first
// character, and any other response a reference in parentheses after its first sentence
// (before any code fence). An invalid message is returned unchanged.
func uniquify(v []byte, i int) []byte {
	if _, err := consumer.Decode(v, record.Source{}, time.Time{}, 0); err != nil {
		return v
	}
	var rec record.Record
	if err := json.Unmarshal(v, &rec); err != nil {
		return v
	}
	tag := strconv.FormatInt(int64(i), 36)
	note := "\n\n(Reference " + tag + ".)"
	switch {
	case rec.Prompt != "" || len(rec.Messages) == 0:
		rec.Prompt += note
	default:
		k := len(rec.Messages) - 1
		for j := k; j >= 0; j-- {
			if rec.Messages[j].Role == "user" {
				k = j
				break
			}
		}
		rec.Messages[k].Content += note
	}
	rec.Response = uniqueResponse(rec.Response, i, tag)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		return v
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// uniqueResponse returns resp made unique to record i (see uniquify).
func uniqueResponse(resp string, i int, tag string) string {
	trimmed := strings.TrimSpace(resp)
	if trimmed != "" && json.Valid([]byte(trimmed)) {
		// 3^16 distinct runs of space, tab and newline: insignificant between JSON tokens.
		ws := make([]byte, 16)
		for k := range ws {
			ws[k] = " \t\n"[i%3]
			i /= 3
		}
		at := strings.Index(resp, trimmed)
		if c := trimmed[0]; c == '{' || c == '[' {
			at++
		}
		return resp[:at] + string(ws) + resp[at:]
	}
	ref := "(ref " + tag + ")"
	// Outside fenced code blocks: after the first sentence, or on a line of its own
	// before a response that opens with a fence, or before the first line break.
	inFence := func(at int) bool { return strings.Count(resp[:at], "```")%2 == 1 }
	for from := 0; ; {
		k := strings.Index(resp[from:], ". ")
		if k < 0 {
			break
		}
		k += from
		if k > 0 && !inFence(k) {
			return resp[:k+1] + " " + ref + resp[k+1:]
		}
		from = k + 2
	}
	if strings.HasPrefix(resp, "```") {
		return ref + "\n" + resp
	}
	if k := strings.IndexByte(resp, '\n'); k > 0 && !inFence(k) {
		return resp[:k] + " " + ref + resp[k:]
	}
	return resp + " " + ref
}

// describeTraffic summarises generated message values.
func describeTraffic(values [][]byte) trafficInfo {
	info := trafficInfo{Messages: len(values)}
	models, apps, responses := map[string]bool{}, map[string]bool{}, map[string]bool{}
	info.PromptChars[0], info.ResponseChars[0] = math.MaxInt, math.MaxInt
	var promptSum, respSum int
	for i, v := range values {
		info.Bytes += int64(len(v))
		rec, err := consumer.Decode(v, record.Source{Offset: int64(i)}, time.Time{}, 0)
		if err != nil {
			info.Invalid++
			continue
		}
		info.Valid++
		models[rec.Model], apps[rec.App], responses[rec.Response] = true, true, true
		pc, rc := utf8.RuneCountInString(rec.PromptText()), utf8.RuneCountInString(rec.Response)
		promptSum += pc
		respSum += rc
		info.PromptChars[0], info.PromptChars[2] = min(info.PromptChars[0], pc), max(info.PromptChars[2], pc)
		info.ResponseChars[0], info.ResponseChars[2] = min(info.ResponseChars[0], rc), max(info.ResponseChars[2], rc)
	}
	if info.Valid == 0 {
		info.PromptChars[0], info.ResponseChars[0] = 0, 0
	} else {
		info.PromptChars[1], info.ResponseChars[1] = promptSum/info.Valid, respSum/info.Valid
	}
	info.Models, info.Apps, info.DistinctResponses = len(models), len(apps), len(responses)
	info.DistinctPrompts, info.DistinctPairs = trafficgen.DistinctKeys(values)
	return info
}

// expectedRows returns, per message value, the score rows raterd stores for it: one per
// evaluator that applies to the record, none for a message that does not decode.
func expectedRows(evaluators []*scorer.Evaluator, values [][]byte) []int {
	out := make([]int, len(values))
	for i, v := range values {
		rec, err := consumer.Decode(v, record.Source{Offset: int64(i)}, time.Now(), consumer.DefaultMaxRecordBytes)
		if err != nil {
			continue
		}
		for _, e := range evaluators {
			if e.Applies(rec) {
				out[i]++
			}
		}
	}
	return out
}
