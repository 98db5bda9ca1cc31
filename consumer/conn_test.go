package consumer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
)

// validConn is a Config that passes Validate but for its tls and sasl sections.
func validConn() Config {
	return Config{Brokers: []string{"127.0.0.1:9092"}, Topics: []string{"traffic"}}
}

func TestConnectionValidate(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(notPEM, []byte("no certificate here"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tls  TLSConfig
		sasl SASLConfig
		want string // "" for valid
	}{
		{"plaintext", TLSConfig{}, SASLConfig{}, ""},
		{"tls on", TLSConfig{Enabled: true}, SASLConfig{}, ""},
		{"min 1.3", TLSConfig{MinVersion: "1.3"}, SASLConfig{}, ""},
		{"min 1.1", TLSConfig{MinVersion: "1.1"}, SASLConfig{}, "kafka.tls.min_version"},
		{"missing ca", TLSConfig{CAFile: filepath.Join(dir, "nope.crt")}, SASLConfig{}, "kafka.tls.ca_file"},
		{"ca not pem", TLSConfig{CAFile: notPEM}, SASLConfig{}, "kafka.tls.ca_file"},
		{"cert without key", TLSConfig{CertFile: notPEM}, SASLConfig{}, "kafka.tls.key_file"},
		{"key without cert", TLSConfig{KeyFile: notPEM}, SASLConfig{}, "kafka.tls.cert_file"},
		{"missing cert", TLSConfig{CertFile: filepath.Join(dir, "c"), KeyFile: notPEM}, SASLConfig{}, "kafka.tls.cert_file"},
		{"bad pair", TLSConfig{CertFile: notPEM, KeyFile: notPEM}, SASLConfig{}, "kafka.tls.cert_file"},
		{"scram", TLSConfig{}, SASLConfig{Mechanism: SASLScramSHA512, Username: "u", Password: "s3cret"}, ""},
		{"scram 256 file", TLSConfig{}, SASLConfig{Mechanism: SASLScramSHA256, Username: "u", PasswordFile: pwFile}, ""},
		{"plain over tls", TLSConfig{Enabled: true}, SASLConfig{Mechanism: SASLPlain, Username: "u", Password: "s3cret"}, ""},
		{"plain without tls", TLSConfig{}, SASLConfig{Mechanism: SASLPlain, Username: "u", Password: "s3cret"}, "kafka.sasl.mechanism"},
		{"bad mechanism", TLSConfig{}, SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "s3cret"}, "kafka.sasl.mechanism"},
		{"lower-case mechanism", TLSConfig{}, SASLConfig{Mechanism: "scram-sha-512", Username: "u", Password: "s3cret"}, "kafka.sasl.mechanism"},
		{"no mechanism", TLSConfig{}, SASLConfig{Username: "u", Password: "s3cret"}, "kafka.sasl.mechanism"},
		{"no username", TLSConfig{}, SASLConfig{Mechanism: SASLScramSHA512, Password: "s3cret"}, "kafka.sasl.username"},
		{"no password", TLSConfig{}, SASLConfig{Mechanism: SASLScramSHA512, Username: "u"}, "kafka.sasl.password"},
		{"both passwords", TLSConfig{}, SASLConfig{Mechanism: SASLScramSHA512, Username: "u", Password: "s3cret", PasswordFile: pwFile}, "kafka.sasl.password"},
		{"missing password file", TLSConfig{}, SASLConfig{Mechanism: SASLScramSHA512, Username: "u", PasswordFile: filepath.Join(dir, "x")}, "kafka.sasl.password_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConn()
			c.TLS, c.SASL = tc.tls, tc.sasl
			err := c.Validate("kafka")
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("Validate: %v; want an error naming %s", err, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), "s3cret")) {
				t.Errorf("the password is in the error: %v", err)
			}
			if tc.want == "" {
				d, tr := c.Dialer(), c.Transport()
				if (d.TLS != nil) != tc.tls.on() || (tr.TLS != nil) != tc.tls.on() {
					t.Errorf("TLS on the dialer %v, transport %v; want %v", d.TLS != nil, tr.TLS != nil, tc.tls.on())
				}
				if (d.SASLMechanism != nil) != (tc.sasl.Mechanism != "") || (tr.SASL != nil) != (tc.sasl.Mechanism != "") {
					t.Errorf("SASL on the dialer %v, transport %v; want %v", d.SASLMechanism, tr.SASL, tc.sasl.Mechanism)
				}
			}
		})
	}
}

// TestSecretRedacted: the password shows in no print of the config.
func TestSecretRedacted(t *testing.T) {
	c := validConn()
	c.SASL = SASLConfig{Mechanism: SASLScramSHA512, Username: "u", Password: "s3cret"}
	if err := c.Validate("kafka"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(f, c); strings.Contains(got, "s3cret") {
			t.Errorf("%s of the config shows the password: %s", f, got)
		}
		if got := fmt.Sprintf(f, &c); strings.Contains(got, "s3cret") {
			t.Errorf("%s of *Config shows the password: %s", f, got)
		}
	}
	if b, _ := c.SASL.Password.MarshalText(); string(b) != "[redacted]" {
		t.Errorf("MarshalText: %q", b)
	}
	if c.SASL.Password.Reveal() != "s3cret" {
		t.Error("Reveal lost the password")
	}
}

// fakeSASLError is the error kafka-go's transport returns for a SASLAuthenticate response
// with an error code and message (makeError: "%w: %s").
func fakeSASLError(message string) error {
	return fmt.Errorf("%w: %s", kafka.SASLAuthenticationFailed, message)
}

// TestConnectionErrorBoundsBrokerText: a broker's SASL error message of any size and
// bytes comes back from ConnectionError (a refused login, or an error passed through)
// bounded to MaxBrokerTextBytes and with every non-printable byte escaped.
func TestConnectionErrorBoundsBrokerText(t *testing.T) {
	cfg := Config{SASL: SASLConfig{Mechanism: SASLScramSHA512, Username: "svc"}}
	huge := strings.Repeat("A", 1<<20)
	binary := string([]byte{0x00, 0x1b, '[', '3', '1', 'm', '\n', 0xff, 0xfe, '\r', 0x07}) + "\u2028end"
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"huge_sasl", fakeSASLError(huge)},
		{"binary_sasl", fakeSASLError(binary)},
		{"huge_binary_sasl", fakeSASLError(strings.Repeat(binary, 10000))},
		{"huge_other", fmt.Errorf("%w: %s", kafka.TopicAuthorizationFailed, strings.Repeat(binary, 1000))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := cfg.ConnectionError("kafka", tc.err)
			msg := err.Error()
			if len(msg) > MaxBrokerTextBytes+200 { // the key and reason come on top
				t.Errorf("error text is %d bytes, want about %d at most", len(msg), MaxBrokerTextBytes)
			}
			for i := 0; i < len(msg); {
				r, size := utf8.DecodeRuneInString(msg[i:])
				if r == utf8.RuneError && size == 1 || !unicode.IsPrint(r) {
					t.Fatalf("error text holds %q at %d: %q", r, i, msg)
				}
				i += size
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("errors.Is lost the broker's error: %v", err)
			}
			t.Logf("%d bytes: %.120s…", len(msg), msg)
		})
	}
	var keyErr *ConnectionKeyError
	err := cfg.ConnectionError("kafka", fakeSASLError(binary))
	if !errors.As(err, &keyErr) || keyErr.Key != "kafka.sasl.password" {
		t.Fatalf("%v: want a ConnectionKeyError naming kafka.sasl.password", err)
	}
	if want := `\x00\x1b[31m\n\xff\xfe\r\a\u2028end`; !strings.HasSuffix(err.Error(), want) {
		t.Errorf("error %q does not end in %q", err, want)
	}
	// A short printable error passes through as it is.
	plain := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	if got := cfg.ConnectionError("kafka", plain); got != plain {
		t.Errorf("ConnectionError(%v) = %#v, want it unchanged", plain, got)
	}
}

// FuzzBrokerText: any input comes out valid, printable and at most MaxBrokerTextBytes
// bytes; an input of printable text (no backslash) that fits is unchanged, and a longer
// one is cut with "…" after a prefix of itself.
func FuzzBrokerText(f *testing.F) {
	f.Add("SASL authentication failed: wrong password")
	f.Add(string([]byte{0, 0xff, '\n', '\\'}))
	f.Add(strings.Repeat("é", 400))
	f.Add(strings.Repeat("\x00", 200))
	f.Fuzz(func(t *testing.T, s string) {
		got := BrokerText(s)
		if len(got) > MaxBrokerTextBytes || !utf8.ValidString(got) {
			t.Fatalf("%d bytes, valid %v: %q", len(got), utf8.ValidString(got), got)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) {
				t.Fatalf("holds %q: %q", r, got)
			}
		}
		printable := utf8.ValidString(s) && !strings.ContainsRune(s, '\\') && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
		switch {
		case printable && len(s) <= MaxBrokerTextBytes && got != s:
			t.Fatalf("printable %q became %q", s, got)
		case printable && len(s) > MaxBrokerTextBytes && !(strings.HasSuffix(got, "…") && strings.HasPrefix(s, strings.TrimSuffix(got, "…"))):
			t.Fatalf("long printable text cut wrongly: %q", got)
		}
	})
}
