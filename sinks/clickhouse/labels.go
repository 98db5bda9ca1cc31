package clickhouse

import "sort"

// sortedLabels splits a label map into parallel key and value arrays sorted by key, the
// storage form that works on every ClickHouse version (Map needs 21.1+).
func sortedLabels(m map[string]string) ([]string, []string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = m[k]
	}
	return keys, values
}
