package app

// The unknown-key check of raterd.yaml.
//
// yaml's strict decoding (Decoder.KnownFields) stops at the first unknown key and names
// it by the Go type it was decoded into ("field worker not found in type
// consumer.Config"), which tells an operator neither where the key is nor what was
// meant. checkKeys walks the YAML node tree alongside Config's type instead, using the
// same rules as the yaml decoder (struct tags, ",inline", "-", pointers, slices, maps,
// merge keys and aliases), and reports every key no section has by its key path with a
// hint of the nearest sibling key:
//
//	config: unknown key "kafka.worker" (line 7); did you mean "kafka.workers"?
//
// Values whose keys are free-form are not walked: interfaces, yaml.Node, types with
// their own UnmarshalYAML (except those listed by keyedUnmarshaler, which decode exactly
// their tagged fields) and the inline keys of a channel whose type is not known. The
// strict decode that follows in ParseConfig stays the safety net for those, and for
// everything that is not an unknown key. A mapping given for a struct that otherwise
// reads a scalar (time.Time, through UnmarshalText) is walked as the decoder decodes it:
// every key is unknown.

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"raterd/scorer"
	"raterd/scorer/pool"
	"raterd/sinks/alert"
	"raterd/sinks/alert/notify"
)

// UnknownKeyError is a key of the config file that its section does not have.
type UnknownKeyError struct {
	// Path is the key's full path: section and key names joined by dots, list items by
	// their index, map values by their key, e.g. "kafka.worker",
	// "evaluators[1].sampel_rate" or "judges.prometheus.endpoint".
	Path string
	// Line is the key's line in the file, counting from 1.
	Line int
	// Suggestion is the full path of the nearest known sibling key, or "" when none is
	// close enough to be a likely correction.
	Suggestion string
}

// Error returns, e.g., `unknown key "kafka.worker" (line 7); did you mean "kafka.workers"?`.
func (e *UnknownKeyError) Error() string {
	msg := fmt.Sprintf("unknown key %q (line %d)", e.Path, e.Line)
	if e.Suggestion != "" {
		msg += fmt.Sprintf("; did you mean %q?", e.Suggestion)
	}
	return msg
}

// checkKeys reports every unknown key of the first YAML document in data, each as a
// "config: "-prefixed *UnknownKeyError, joined in file order (errors.Join). Data that is
// not YAML yields nil: the strict decode reports it.
func checkKeys(data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil
	}
	var errs []error
	for _, uk := range unknownKeys(&doc, reflect.TypeFor[Config]()) {
		errs = append(errs, fmt.Errorf("config: %w", uk))
	}
	return errors.Join(errs...)
}

// unknownKeys walks the node n (a document or any node) as a value of type t and returns
// its unknown keys in file order.
func unknownKeys(n *yaml.Node, t reflect.Type) []*UnknownKeyError {
	if n != nil && n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	w := &keyWalker{seen: map[aliasVisit]bool{}, reported: map[*yaml.Node]bool{}, sets: map[reflect.Type]*keySet{}}
	w.walk(n, t, "")
	return w.found
}

// keyWalker holds one walk's state.
type keyWalker struct {
	found []*UnknownKeyError
	// seen is every alias target already walked as a type: each is walked once per
	// type, which bounds the work on alias-heavy input (a "billion laughs" document)
	// and ends alias cycles. A key under an alias is reported at its first path.
	seen map[aliasVisit]bool
	// reported is every unknown key node reported: a key under an anchor that is merged
	// or aliased elsewhere is reported once, at the path where it is written.
	reported map[*yaml.Node]bool
	// sets caches the key set of each struct type.
	sets map[reflect.Type]*keySet
}

// aliasVisit is an alias target walked as a type.
type aliasVisit struct {
	n *yaml.Node
	t reflect.Type
}

// keySet is the keys a mapping decoded into a struct may hold.
type keySet struct {
	// types maps each key to the type its value decodes into.
	types map[string]reflect.Type
	// names are the keys, sorted, for suggestions.
	names []string
	// rest, when set, is the type of every other key's value (an ",inline" map); nil:
	// other keys are unknown.
	rest reflect.Type
}

// obsoleteUnmarshaler is yaml.v2's Unmarshaler, which yaml.v3 still honours.
type obsoleteUnmarshaler interface {
	UnmarshalYAML(unmarshal func(any) error) error
}

// keyedUnmarshaler reports whether t has its own UnmarshalYAML but takes exactly the keys
// of its yaml tags, so that its keys are checked like a plain struct's.
// pool.Breaker records whether health_path is present and decodes the rest plainly.
// scorer.Redaction reads "off" or exactly its types and patterns.
func keyedUnmarshaler(t reflect.Type) bool {
	return t == reflect.TypeFor[pool.Breaker]() || t == reflect.TypeFor[scorer.Redaction]()
}

// channelSettingsType is the settings struct of a channel type (the type's keys, inline
// in the channel besides type and delivery), or nil for a type that is not known. It
// follows notify's registry; TestChannelSettingsFollowTheRegistry keeps them in step.
func channelSettingsType(typ string) reflect.Type {
	switch typ {
	case "webhook":
		return reflect.TypeFor[notify.WebhookConfig]()
	case "slack":
		return reflect.TypeFor[notify.SlackConfig]()
	case "alertmanager":
		return reflect.TypeFor[notify.AlertmanagerConfig]()
	case "kafka":
		return reflect.TypeFor[notify.KafkaChannelConfig]()
	case "clickhouse":
		return reflect.TypeFor[notify.ClickHouseChannelConfig]()
	}
	return nil
}

// freeForm reports whether a value of type t (not a pointer) holds keys the walker does
// not check.
func freeForm(t reflect.Type) bool {
	if t == reflect.TypeFor[yaml.Node]() || t.Kind() == reflect.Interface {
		return true
	}
	if keyedUnmarshaler(t) {
		return false
	}
	pt := reflect.PointerTo(t)
	return pt.Implements(reflect.TypeFor[yaml.Unmarshaler]()) || pt.Implements(reflect.TypeFor[obsoleteUnmarshaler]())
}

// walk checks node n as a value of type t at path.
func (w *keyWalker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n = w.follow(n, t); n == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if freeForm(t) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind == yaml.MappingNode {
			w.walkMapping(n, t, w.keysFor(t, n), path)
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			w.walkMapping(n, t, nil, path)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
}

// follow resolves an alias, returning nil when its target was already walked as t.
func (w *keyWalker) follow(n *yaml.Node, t reflect.Type) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		v := aliasVisit{n.Alias, t}
		if w.seen[v] {
			return nil
		}
		w.seen[v] = true
		n = n.Alias
	}
	return n
}

// walkMapping checks the keys of mapping n, a value of type t: a struct with the keys ks,
// or a map (ks nil), whose keys are names and whose values are checked.
func (w *keyWalker) walkMapping(n *yaml.Node, t reflect.Type, ks *keySet, path string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) && !keyedUnmarshaler(t) { // a keyed unmarshaler refuses "<<"
			w.walkMerge(v, t, ks, path)
			continue
		}
		name, ok := keyName(k)
		if !ok {
			continue
		}
		switch {
		case ks == nil:
			w.walk(v, t.Elem(), joinKey(path, name))
		case ks.types[name] != nil:
			w.walk(v, ks.types[name], joinKey(path, name))
		case ks.rest != nil:
			w.walk(v, ks.rest, joinKey(path, name))
		case w.reported[k]:
		default:
			w.reported[k] = true
			uk := &UnknownKeyError{Path: joinKey(path, name), Line: k.Line}
			if s := nearestKey(name, ks.names); s != "" {
				uk.Suggestion = joinKey(path, s)
			}
			w.found = append(w.found, uk)
		}
	}
}

// walkMerge checks the mappings a merge key ("<<") brings into a mapping of type t: a
// mapping, an alias of one, or a sequence of them, as the yaml decoder accepts.
func (w *keyWalker) walkMerge(v *yaml.Node, t reflect.Type, ks *keySet, path string) {
	if v = w.follow(v, t); v == nil {
		return
	}
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	for _, m := range items {
		if m = w.follow(m, t); m != nil && m.Kind == yaml.MappingNode {
			w.walkMapping(m, t, ks, path)
		}
	}
}

// isMerge reports whether k is the merge key, as the yaml decoder decides it.
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge")
}

// keyName is the string a mapping key decodes to, as the yaml decoder reads a struct's
// keys; ok is false for a key the decoder skips or refuses (null, not a scalar).
func keyName(k *yaml.Node) (name string, ok bool) {
	if k.Kind == yaml.AliasNode {
		if k.Alias == nil {
			return "", false
		}
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
		return "", false // the decoder skips a null key, and refuses a non-scalar one
	}
	if err := k.Decode(&name); err != nil {
		return k.Value, true
	}
	return name, true
}

// joinKey appends a key to a path.
func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// keysFor is the key set of a mapping n decoded into struct t. A channel's key set is
// its own keys plus those of its type's settings, when the type is known.
func (w *keyWalker) keysFor(t reflect.Type, n *yaml.Node) *keySet {
	ks := w.keysOf(t)
	if t != reflect.TypeFor[alert.ChannelConfig]() {
		return ks
	}
	typ, _ := lookupScalar(n, "type", 0)
	st := channelSettingsType(typ)
	if st == nil {
		return ks
	}
	merged := &keySet{types: maps.Clone(ks.types)}
	maps.Copy(merged.types, w.keysOf(st).types)
	merged.names = slices.Sorted(maps.Keys(merged.types))
	return merged
}

// lookupScalar finds key's scalar value in mapping n, or in the mappings it merges (the
// mapping's own keys win, as in the yaml decoder). depth bounds the merges followed.
func lookupScalar(n *yaml.Node, key string, depth int) (string, bool) {
	if n == nil || depth > 8 {
		return "", false
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil && depth <= 8 {
		n, depth = n.Alias, depth+1
	}
	if n.Kind != yaml.MappingNode {
		return "", false
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			merges = append(merges, v)
			continue
		}
		if name, ok := keyName(k); ok && name == key {
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			return v.Value, v.Kind == yaml.ScalarNode
		}
	}
	for _, m := range merges {
		for m.Kind == yaml.AliasNode && m.Alias != nil && depth <= 8 {
			m, depth = m.Alias, depth+1
		}
		items := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			items = m.Content
		}
		for _, it := range items {
			if v, ok := lookupScalar(it, key, depth+1); ok {
				return v, true
			}
		}
	}
	return "", false
}

// keysOf is the key set of struct t, built as the yaml decoder builds a struct's fields.
func (w *keyWalker) keysOf(t reflect.Type) *keySet {
	if ks, ok := w.sets[t]; ok {
		return ks
	}
	ks := &keySet{types: map[string]reflect.Type{}}
	addFields(ks, t)
	ks.names = slices.Sorted(maps.Keys(ks.types))
	w.sets[t] = ks
	return ks
}

// addFields adds the keys of struct t's fields to ks, inlined structs' fields included.
func addFields(ks *keySet, t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.PkgPath != "" && !f.Anonymous {
			continue // unexported
		}
		tag := f.Tag.Get("yaml")
		if tag == "" && !strings.Contains(string(f.Tag), ":") {
			tag = string(f.Tag)
		}
		if tag == "-" {
			continue
		}
		name, flags, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(flags, ","), "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case f.Type.Kind() == reflect.Map:
				ks.rest = f.Type.Elem()
			case ft.Kind() == reflect.Struct && reflect.PointerTo(ft).Implements(reflect.TypeFor[yaml.Unmarshaler]()):
				ks.rest = reflect.TypeFor[any]() // its own decoder takes whatever keys it likes
			case ft.Kind() == reflect.Struct:
				addFields(ks, ft)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		ks.types[name] = f.Type
	}
}

// nearestKey returns the known key closest to name by edit distance (a transposition
// counting as one edit, case ignored), or "" when none is close: at most 1 edit for
// names up to 4 characters, 2 up to 8, 3 beyond, and fewer edits than name has
// characters. Ties go to the first key in sorted order.
func nearestKey(name string, known []string) string {
	limit := 3
	switch n := len([]rune(name)); {
	case n <= 4:
		limit = 1
	case n <= 8:
		limit = 2
	}
	limit = min(limit, len([]rune(name))-1)
	best, bestD := "", limit+1
	lower := strings.ToLower(name)
	for _, k := range known {
		if d := editDistance(lower, strings.ToLower(k), bestD); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b (insertions,
// deletions, substitutions and transpositions of adjacent characters), or any value of
// at least limit once the distance is known to reach it.
func editDistance(a, b string, limit int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d >= limit || -d >= limit {
		return limit
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
