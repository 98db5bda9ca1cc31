// Package conversation assembles the records of one conversation (or of one agent run,
// an OTel trace) into a transcript record that evaluators of scope conversation (or
// trace) judge as a whole. It owns the open segments, their bounds and their close rules;
// the consumer's pipeline owns the Kafka offsets, which an open segment holds back (see
// Hold and docs/conversations.md).
package conversation

import (
	"fmt"
	"time"

	"raterd/record"
)

// Config bounds the open segments of one scope and says when a segment closes. The
// conversations and traces sections of the config file are each a Config; their
// defaults differ (see Defaults).
type Config struct {
	// InactivityTimeout closes a segment when no record of it arrived for this long
	// (wall-clock time at the consumer). Default 5m for conversations, 30s for traces.
	InactivityTimeout time.Duration `yaml:"inactivity_timeout"`
	// Gap starts a new segment when a record's event time lies more than this after its
	// segment's last record, so that a backlog read in seconds is cut where the live
	// stream was. Default: InactivityTimeout.
	Gap time.Duration `yaml:"gap"`
	// MaxDuration closes a segment that has been open this long, however active: the
	// offsets it holds back are committed at most this much (plus the timeout) behind.
	// Default 1h for conversations, 10m for traces.
	MaxDuration time.Duration `yaml:"max_duration"`
	// MaxOpen bounds the open segments; at the bound the least recently active one is
	// judged early (close reason evicted). Default 10000.
	MaxOpen int `yaml:"max_open"`
	// MaxTurns bounds the records of one segment; the segment that reaches it is judged
	// (close reason max_turns) and the next record opens the next version. Default 100
	// for conversations, 200 for traces.
	MaxTurns int `yaml:"max_turns"`
	// MaxBytes bounds the text one segment keeps (prompts, answers, tool calls); a record
	// that would pass it closes the segment first (close reason max_bytes), and one
	// record's text is clipped to it. Default 256 KiB.
	MaxBytes int `yaml:"max_bytes"`
	// EndMarker is the metadata key that ends a conversation: a record whose
	// metadata[EndMarker] is "true" or "1" closes its segment at once (close reason
	// end_marker). Default "conversation.end". Traces end at their root span instead.
	EndMarker string `yaml:"end_marker"`
	// CheckInterval is how often open segments are checked against the inactivity
	// timeout and the longest duration. Default 1s.
	CheckInterval time.Duration `yaml:"check_interval"`
}

// DefaultEndMarker is the metadata key of Config.EndMarker's default.
const DefaultEndMarker = "conversation.end"

// Defaults returns the default Config of a scope (record.ScopeConversation or
// record.ScopeTrace).
func Defaults(scope string) Config {
	c := Config{
		InactivityTimeout: 5 * time.Minute,
		MaxDuration:       time.Hour,
		MaxOpen:           10000,
		MaxTurns:          100,
		MaxBytes:          256 << 10,
		EndMarker:         DefaultEndMarker,
		CheckInterval:     time.Second,
	}
	if scope == record.ScopeTrace {
		c.InactivityTimeout = 30 * time.Second
		c.MaxDuration = 10 * time.Minute
		c.MaxTurns = 200
	}
	return c
}

// Validate fills the scope's defaults into zero fields and rejects bad values, naming
// the key (e.g. "conversations.max_open").
func (c *Config) Validate(key, scope string) error {
	if scope != record.ScopeConversation && scope != record.ScopeTrace {
		return fmt.Errorf("%s: unknown scope %q", key, scope)
	}
	d := Defaults(scope)
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"inactivity_timeout", &c.InactivityTimeout, d.InactivityTimeout},
		{"max_duration", &c.MaxDuration, d.MaxDuration},
		{"check_interval", &c.CheckInterval, d.CheckInterval},
	}
	for _, f := range durations {
		if *f.v < 0 {
			return fmt.Errorf("%s.%s: %v is negative", key, f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.Gap < 0 {
		return fmt.Errorf("%s.gap: %v is negative", key, c.Gap)
	}
	if c.Gap == 0 {
		c.Gap = c.InactivityTimeout
	}
	ints := []struct {
		name string
		v    *int
		def  int
	}{
		{"max_open", &c.MaxOpen, d.MaxOpen},
		{"max_turns", &c.MaxTurns, d.MaxTurns},
		{"max_bytes", &c.MaxBytes, d.MaxBytes},
	}
	for _, f := range ints {
		if *f.v < 0 {
			return fmt.Errorf("%s.%s: %d is negative", key, f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.MaxDuration < c.InactivityTimeout {
		return fmt.Errorf("%s.max_duration: %v is shorter than %s.inactivity_timeout (%v)", key, c.MaxDuration, key, c.InactivityTimeout)
	}
	if c.MaxBytes < 1024 {
		return fmt.Errorf("%s.max_bytes: %d is under 1024: a judge needs room for at least a turn", key, c.MaxBytes)
	}
	if c.EndMarker == "" {
		c.EndMarker = d.EndMarker
	}
	return nil
}
