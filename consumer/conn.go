package consumer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"raterd/internal/secret"
	"raterd/internal/tlsfiles"
)

// SASL mechanisms of SASLConfig.Mechanism.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// TLSConfig is the kafka.tls section: TLS to the brokers, and the client certificate of
// mutual TLS.
type TLSConfig struct {
	// Enabled turns TLS on. Setting any other key of the section turns it on too.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM file of the certificate authorities the brokers' certificates are
	// verified against; empty: the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate and its key, for brokers that
	// require mutual TLS (ssl.client.auth=required). Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the brokers' certificates are verified for; empty: each
	// broker's host.
	ServerName string `yaml:"server_name"`
	// MinVersion is the lowest TLS version accepted: "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// on reports whether TLS is used.
func (t TLSConfig) on() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.MinVersion != ""
}

// SASLConfig is the kafka.sasl section: SASL authentication to the brokers.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL. PLAIN sends
	// the password as it is, so it needs kafka.tls.
	Mechanism string `yaml:"mechanism"`
	// Username is the SASL user. Required with a mechanism.
	Username string `yaml:"username"`
	// Password is the user's password. Env override: RATERD_KAFKA_SASL_PASSWORD. Never
	// logged, never in an error, redacted in any print of the config.
	Password secret.Secret `yaml:"password"`
	// PasswordFile is a file that holds the password (a mounted Kubernetes secret; one
	// trailing newline is dropped), read at start. Not with Password.
	PasswordFile string `yaml:"password_file"`
}

// connection is what Validate built of the tls and sasl sections; nil: plaintext, no SASL.
type connection struct {
	tls  *tls.Config
	sasl sasl.Mechanism
}

// validateConnection checks the tls and sasl sections, reads their files and builds the
// connection every Kafka client of the config uses.
func (c *Config) validateConnection(key string) error {
	c.conn = nil
	var conn connection
	if c.TLS.on() {
		t, err := c.TLS.build(key + ".tls")
		if err != nil {
			return err
		}
		conn.tls = t
	}
	m, err := c.SASL.build(key+".sasl", conn.tls != nil, key+".tls")
	if err != nil {
		return err
	}
	conn.sasl = m
	if conn.tls != nil || conn.sasl != nil {
		c.conn = &conn
	}
	return nil
}

// build makes the client TLS config of the section (tlsfiles): the client certificate is
// reloaded when its files change, so a renewed one is presented without a restart. key is
// the section's key, "kafka.tls".
func (t TLSConfig) build(key string) (*tls.Config, error) {
	return tlsfiles.Client{
		CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName, MinVersion: t.MinVersion,
	}.Config(tlsfiles.Nested(key))
}

func (s SASLConfig) build(key string, withTLS bool, tlsKey string) (sasl.Mechanism, error) {
	if s.Mechanism == "" {
		if s.Username != "" || s.Password != "" || s.PasswordFile != "" {
			return nil, fmt.Errorf("%s.mechanism: required with %s.username or a password (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", key, key)
		}
		return nil, nil
	}
	var algo scram.Algorithm
	switch s.Mechanism {
	case SASLPlain:
		if !withTLS {
			return nil, fmt.Errorf("%s.mechanism: PLAIN sends the password unencrypted: set %s.enabled: true (or use SCRAM-SHA-512)", key, tlsKey)
		}
	case SASLScramSHA256:
		algo = scram.SHA256
	case SASLScramSHA512:
		algo = scram.SHA512
	default:
		return nil, fmt.Errorf("%s.mechanism: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", key, s.Mechanism)
	}
	if s.Username == "" {
		return nil, fmt.Errorf("%s.username: required with %s.mechanism", key, key)
	}
	pw, err := secret.Resolve(key+".password", s.Password, "RATERD_KAFKA_SASL_PASSWORD", key+".password_file", s.PasswordFile)
	if err != nil {
		return nil, err
	}
	if pw == "" {
		return nil, fmt.Errorf("%s.password: required with %s.mechanism (or %s.password_file, or RATERD_KAFKA_SASL_PASSWORD)", key, key, key)
	}
	password := pw.Reveal()
	if algo == nil {
		return plain.Mechanism{Username: s.Username, Password: password}, nil
	}
	m, err := scram.Mechanism(algo, s.Username, password)
	if err != nil {
		// The error of SASLprep names no part of the password.
		return nil, fmt.Errorf("%s.password: not a valid SCRAM password (SASLprep): %w", key, err)
	}
	return m, nil
}

// kafkaDialTimeout bounds connecting to one broker, TLS and SASL included.
const kafkaDialTimeout = 10 * time.Second

// Dialer returns a kafka-go dialer that connects as the config says (TLS, SASL); every
// Kafka reader and consumer group of raterd is built with one. Each call returns a new
// dialer.
func (c Config) Dialer() *kafka.Dialer {
	d := &kafka.Dialer{Timeout: kafkaDialTimeout, DualStack: true}
	if c.conn != nil {
		if c.conn.tls != nil {
			d.TLS = c.conn.tls.Clone()
		}
		d.SASLMechanism = c.conn.sasl
	}
	return d
}

// Transport returns a new kafka-go transport that connects as the config says (TLS,
// SASL); every Kafka client and writer of raterd uses one. Close its idle connections
// when done with it.
func (c Config) Transport() *kafka.Transport {
	tr := &kafka.Transport{DialTimeout: kafkaDialTimeout}
	if c.conn != nil {
		if c.conn.tls != nil {
			tr.TLS = c.conn.tls.Clone()
		}
		tr.SASL = c.conn.sasl
	}
	return tr
}

// Secured reports whether the config uses TLS or SASL.
func (c Config) Secured() bool { return c.conn != nil }

// ConnectionKeyError is a failure to connect to Kafka that the config is the cause of:
// Key is the config key to look at (kafka.sasl.password, kafka.tls.ca_file, kafka.tls, …).
type ConnectionKeyError struct {
	// Key is the config key named.
	Key string
	// Reason says what went wrong, in words.
	Reason string
	// Err is kafka-go's or the TLS stack's error.
	Err error
}

// Error returns "KEY: REASON: ERR", with ERR bounded and escaped (see BrokerText): the
// broker's part can be any bytes of any length (a SASLAuthenticate error message).
func (e *ConnectionKeyError) Error() string {
	return e.Key + ": " + e.Reason + ": " + BrokerText(e.Err.Error())
}

// MaxBrokerTextBytes bounds the text of a Kafka connection error that raterd logs or
// returns (see BrokerText).
const MaxBrokerTextBytes = 512

// BrokerText returns s, text that may come from a broker (kafka-go puts a
// SASLAuthenticate response's error message, any bytes of any length, into its error),
// fit for a log line: every byte of invalid UTF-8 becomes \xNN, every non-printable rune
// (control characters, newlines included) its Go escape (\n, \a, \x1b, \u2028, …), a
// backslash \\, and the result is cut to at most MaxBrokerTextBytes bytes, "…" marking the cut. An
// escape is never split.
func BrokerText(s string) string {
	const marker = "…"
	var b strings.Builder
	cut := -1 // the length before the first piece that takes b past the room left for the marker
	for i := 0; i < len(s) && b.Len() <= MaxBrokerTextBytes; {
		r, size := utf8.DecodeRuneInString(s[i:])
		var piece string
		switch {
		case r == utf8.RuneError && size <= 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case r == '\\':
			piece = `\\`
		case !unicode.IsPrint(r):
			q := strconv.QuoteRuneToASCII(r) // '\x07', '\u2028', …
			piece = q[1 : len(q)-1]
		default:
			piece = s[i : i+size]
		}
		if cut < 0 && b.Len()+len(piece) > MaxBrokerTextBytes-len(marker) {
			cut = b.Len()
		}
		b.WriteString(piece)
		i += size
	}
	if b.Len() <= MaxBrokerTextBytes {
		return b.String()
	}
	return b.String()[:cut] + marker
}

// boundedError is an error whose text BrokerText bounds and escapes; it unwraps to the
// error it holds.
type boundedError struct{ err error }

func (e boundedError) Error() string { return BrokerText(e.err.Error()) }
func (e boundedError) Unwrap() error { return e.err }

// Unwrap returns Err.
func (e *ConnectionKeyError) Unwrap() error { return e.Err }

// ConnectionError explains a failure to connect to Kafka by the config key to look at (a
// *ConnectionKeyError): a refused password, a certificate not trusted either way, a TLS
// client on a plaintext listener or a plaintext client on a TLS one. Other errors (a
// broker down or unreachable) come back as they are, except that an error whose text is
// over MaxBrokerTextBytes or holds a byte BrokerText escapes is wrapped so that its text
// is BrokerText's (errors.Is and errors.As still see it). key is the section's key
// ("kafka").
func (c Config) ConnectionError(key string, err error) error {
	var done *ConnectionKeyError
	if err == nil || errors.As(err, &done) {
		return err
	}
	tlsOn := c.conn != nil && c.conn.tls != nil
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		recordHeader     tls.RecordHeaderError
		alert            tls.AlertError
		kerr             kafka.Error
	)
	keyErr := func(k, reason string) error { return &ConnectionKeyError{Key: key + "." + k, Reason: reason, Err: err} }
	switch {
	case errors.As(err, &kerr) && (kerr == kafka.SASLAuthenticationFailed || kerr == kafka.IllegalSASLState):
		return keyErr("sasl.password", fmt.Sprintf("kafka refused the SASL %s login of user %q (wrong username or password?)", c.SASL.Mechanism, c.SASL.Username))
	case errors.As(err, &kerr) && kerr == kafka.UnsupportedSASLMechanism:
		return keyErr("sasl.mechanism", fmt.Sprintf("the broker's listener does not enable %s", c.SASL.Mechanism))
	case errors.As(err, &unknownAuthority):
		return keyErr("tls.ca_file", "the broker's certificate is not signed by an authority of ca_file (or the system's)")
	case errors.As(err, &hostname):
		return keyErr("tls.server_name", "the broker's certificate is not for this name")
	case errors.As(err, &invalid):
		return keyErr("tls.ca_file", "the broker's certificate is not valid")
	case errors.As(err, &recordHeader) || strings.Contains(err.Error(), "first record does not look like a TLS handshake"):
		return keyErr("tls", "the broker does not speak TLS on this port (a plaintext listener?)")
	case errors.As(err, &alert) || strings.Contains(err.Error(), "remote error: tls:") || tlsOn && isClosed(err):
		if c.TLS.CertFile == "" {
			return keyErr("tls.cert_file", "the broker refused or closed the TLS connection: does its listener require a client certificate?")
		}
		return keyErr("tls.cert_file", "the broker refused or closed the TLS connection: is the client certificate signed by an authority it trusts?")
	case !tlsOn && isClosed(err):
		return keyErr("tls", "the broker closed a plaintext connection: is it a TLS or SASL listener (set kafka.tls, kafka.sasl)?")
	}
	if msg := err.Error(); BrokerText(msg) != msg {
		return boundedError{err}
	}
	return err
}

// isClosed reports a connection closed by the broker.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// handshakeClosed reports that a TLS handshake with broker ends in the broker closing the
// connection: it does not speak TLS there (a plaintext listener reads the ClientHello as a
// request, and closes).
func (c Config) handshakeClosed(ctx context.Context, broker string) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cfg := c.conn.tls.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(broker)
	}
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", broker)
	if err == nil {
		_ = conn.Close()
		return false
	}
	return isClosed(err)
}

// CheckConnection connects to the brokers and asks for the metadata of the configured
// topics, within timeout, so that a wrong password, an untrusted certificate or a
// listener of another protocol ends the start in seconds with an error naming the config
// key (see ConnectionError) instead of a group reader retrying quietly.
func (c Config) CheckConnection(ctx context.Context, key string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr := c.Transport()
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Transport: tr}
	_, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: c.Topics})
	if err != nil && c.conn != nil && c.conn.tls != nil && isClosed(err) && c.handshakeClosed(ctx, c.Brokers[0]) {
		err = &ConnectionKeyError{Key: key + ".tls", Reason: "the broker closed the TLS handshake: is it a plaintext listener (or SASL_PLAINTEXT)?", Err: err}
	}
	if err != nil {
		return fmt.Errorf("kafka connection check (%s.brokers %v): %w", key, c.Brokers, c.ConnectionError(key, err))
	}
	return nil
}
