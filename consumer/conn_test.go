package consumer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
