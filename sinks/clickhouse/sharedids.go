package clickhouse

// SharedIDsQuery lists the record ids that messages at more than one source offset
// carried within one hour, model and app — the scope in which scores collapses rows — from
// the record_sources view (migration 7). Their rows collapsed into one per evaluator in
// scores FINAL: a producer's retry or a dead letter replayed to its topic (the same
// request, rightly one row), or different requests a producer gave one id (rows lost).
// n_offsets counts the distinct offsets (n_offsets − 1 records collapsed into the one
// kept), first_offset and last_offset are the smallest and largest (topic, partition,
// offset), so the messages can be read back and compared. A replay of the same offset is
// not counted. It is not part of Cookbook(): it reads a view, not scores.
func SharedIDsQuery() CookbookQuery {
	return CookbookQuery{
		Name:  "shared_record_ids",
		Title: "Record ids carried by more than one message",
		Explanation: "For the hours [`from`, `to`) of event time: every record id that messages at more than one " +
			"source offset carried within one hour, model and app, with the number of offsets and the first and last.",
		SQL: `SELECT
    hour,
    model,
    app,
    record_id,
    uniqExactMerge(sources) AS n_offsets,
    minMerge(first_source) AS first_offset,
    maxMerge(last_source) AS last_offset
FROM {db}.record_sources
WHERE hour >= {from:DateTime}
    AND hour < {to:DateTime}
GROUP BY hour, model, app, record_id
HAVING n_offsets > 1
ORDER BY hour, model, app, record_id`,
		Params: []string{"from", "to"},
	}
}
