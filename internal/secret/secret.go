// Package secret holds configuration values that must never be shown (passwords, webhook
// URLs with tokens, signing keys) and reads them from files the way Kubernetes mounts
// secrets. It imports nothing of raterd, so every package may use it.
package secret

import (
	"fmt"
	"os"
	"strings"
)

// Redacted is what a non-empty Secret prints as.
const Redacted = "[redacted]"

// Secret is a configuration value that must never be shown: it prints, formats and
// marshals as "[redacted]" (or "" when empty). Reveal returns the value itself.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer, redacted.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString implements fmt.GoStringer (%#v), redacted.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// Format implements fmt.Formatter, so that every verb (%s, %v, %q, %x, %d…) prints the
// redacted form and none reaches the underlying string.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, s.String())
	case 'q':
		fmt.Fprintf(f, "%q", s.String())
	default:
		fmt.Fprint(f, s.String())
	}
}

// MarshalYAML implements yaml.Marshaler, redacted, so that a config dump never holds it.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText implements encoding.TextMarshaler (JSON and others), redacted.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Resolve returns the secret of a key that may also be given as a file: value (from the
// config or the environment, env naming the variable, "" when there is none) or the
// contents of file, read now with one trailing newline (LF or CRLF) dropped. key is the
// full config key of the value ("redis.password"), fileKey that of the file
// ("redis.password_file"). Both set, an unreadable file or an empty one is an error that
// names the keys and the file's path, never the value.
func Resolve(key string, value Secret, env, fileKey, file string) (Secret, error) {
	switch {
	case value != "" && file != "":
		if env != "" {
			return "", fmt.Errorf("%s (or %s) and %s are both set: set one", key, env, fileKey)
		}
		return "", fmt.Errorf("%s and %s are both set: set one", key, fileKey)
	case file == "":
		return value, nil
	}
	v, err := ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", fileKey, err)
	}
	return v, nil
}

// ReadFile reads a secret from path, dropping one trailing newline (LF or CRLF). An empty
// file is an error. Errors name the path, never the contents.
func ReadFile(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// *fs.PathError names the operation, the path and the cause: no contents.
		return "", err
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return Secret(v), nil
}
