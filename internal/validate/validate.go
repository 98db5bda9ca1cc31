// Package validate holds the syntax checks raterd's config sections share: network
// addresses, SQL identifiers and Kafka topic names. Each is a predicate; the caller
// words the error, naming its own config key or flag. It imports nothing of raterd.
package validate

import "net"

// HostPort reports whether s is a host:port address with neither part empty, as
// net.SplitHostPort splits it ("[::1]:9000" is one; ":9000", "host:" and "host" are not).
// The port is not checked further: a service name is accepted.
func HostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	return err == nil && host != "" && port != ""
}

// SQLIdentifier reports whether s is a plain SQL identifier, safe to splice into a
// statement unquoted: one or more of [A-Za-z0-9_], not starting with a digit (ASCII
// only).
func SQLIdentifier(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// MaxKafkaTopic is the longest Kafka topic name, in bytes.
const MaxKafkaTopic = 249

// KafkaTopic reports whether s is a legal Kafka topic name: 1 to MaxKafkaTopic of
// [a-zA-Z0-9._-], and neither "." nor "..".
func KafkaTopic(s string) bool {
	if s == "" || len(s) > MaxKafkaTopic || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
