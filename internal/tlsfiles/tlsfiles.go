// Package tlsfiles builds the *tls.Config of raterd's connections from PEM files named
// in the config (a CA, a certificate and its key), with errors that name the config key
// of the file at fault, and reloads the certificate and key when their files change on
// disk, so that a certificate renewed during a run (cert-manager, a mounted Kubernetes
// secret, a Vault agent) is presented from the next handshake on, without a restart.
//
// The certificate and key are checked with one stat of each file per handshake: when
// either file's modification time or size changed, the pair is read again. A pair that
// no longer loads (a half-written file, a key that does not match) or a certificate that
// has expired fails the handshake with an error naming the keys and saying why; the
// warning is logged once per change of the files. The CA file is read once, when the
// config is built: a changed CA takes a restart.
//
// It imports nothing of raterd, so every package may use it.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Keys are the full config keys of a TLS section's settings, for errors: e.g.
// "kafka.tls.ca_file" or "redis.tls_ca_file". An empty key names a setting the section
// does not have.
type Keys struct {
	// Section is the key that turns TLS on or holds the settings ("kafka.tls", "redis.tls").
	Section string
	// CAFile, CertFile, KeyFile, ServerName and MinVersion name the settings.
	CAFile, CertFile, KeyFile, ServerName, MinVersion string
}

// Nested returns the keys of a section whose settings are its children:
// Nested("kafka.tls") gives kafka.tls.ca_file, kafka.tls.cert_file and so on.
func Nested(section string) Keys {
	return Keys{
		Section: section, CAFile: section + ".ca_file", CertFile: section + ".cert_file",
		KeyFile: section + ".key_file", ServerName: section + ".server_name", MinVersion: section + ".min_version",
	}
}

// Prefixed returns the keys of a section whose settings are tls_-prefixed siblings:
// Prefixed("redis") gives redis.tls, redis.tls_ca_file, redis.tls_cert_file and so on.
func Prefixed(section string) Keys {
	return Keys{
		Section: section + ".tls", CAFile: section + ".tls_ca_file", CertFile: section + ".tls_cert_file",
		KeyFile: section + ".tls_key_file", ServerName: section + ".tls_server_name", MinVersion: section + ".tls_min_version",
	}
}

// Client is the TLS of a connection raterd makes: what Config builds a *tls.Config of.
type Client struct {
	// CAFile is a PEM file of the authorities the server's certificate is verified
	// against; empty: the system's roots. Read once, by Config.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key, for servers that
	// require one (mutual TLS); both or neither. Reloaded when they change.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate is verified for; empty: the host
	// dialled.
	ServerName string
	// MinVersion is the lowest TLS version: "1.2" (default, also "") or "1.3".
	MinVersion string
	// InsecureSkipVerify accepts any server certificate; only for callers whose config
	// allows it (tests).
	InsecureSkipVerify bool
	// Logger gets the warning when a changed certificate or key does not load; nil:
	// slog.Default().
	Logger *slog.Logger
}

// Config checks the files and builds the client config; keys name the settings in
// errors. The client certificate, if any, is loaded now (an error if it does not load or
// has expired) and again at a handshake after its files change.
func (c Client) Config(keys Keys) (*tls.Config, error) {
	minVersion, err := parseMinVersion(keys.MinVersion, c.MinVersion)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: minVersion, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pool, err := readCAs(keys.CAFile, c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	pair, err := newPair(keys, c.CertFile, c.KeyFile, c.Logger)
	if err != nil || pair == nil {
		return cfg, err
	}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return pair.get() }
	return cfg, nil
}

// Server is the TLS of a port raterd serves (the admin port): what Config builds a
// *tls.Config of.
type Server struct {
	// CertFile and KeyFile are the server's PEM certificate and key. Required. Reloaded
	// when they change.
	CertFile, KeyFile string
	// ClientCAFile is a PEM file of the authorities client certificates are verified
	// against; empty: client certificates are not asked for. Read once, by Config.
	ClientCAFile string
	// RequireClientCert requires a verified client certificate at the handshake; without
	// it a client certificate is verified when one is sent. Only with ClientCAFile.
	RequireClientCert bool
	// MinVersion is the lowest TLS version: "1.2" (default, also "") or "1.3".
	MinVersion string
	// Logger gets the warning when a changed certificate or key does not load; nil:
	// slog.Default().
	Logger *slog.Logger
}

// ServerKeys are the config keys of a Server's settings, for errors.
type ServerKeys struct {
	// Section is the section's key ("admin.tls").
	Section string
	// CertFile, KeyFile, ClientCAFile and MinVersion name the settings.
	CertFile, KeyFile, ClientCAFile, MinVersion string
}

// Config checks the files and builds the server config; keys name the settings in
// errors. The certificate is loaded now (an error if it does not load or has expired)
// and again at a handshake after its files change.
func (s Server) Config(keys ServerKeys) (*tls.Config, error) {
	if s.CertFile == "" {
		return nil, fmt.Errorf("%s: required with %s", keys.CertFile, keys.Section)
	}
	if s.KeyFile == "" {
		return nil, fmt.Errorf("%s: required with %s", keys.KeyFile, keys.Section)
	}
	minVersion, err := parseMinVersion(keys.MinVersion, s.MinVersion)
	if err != nil {
		return nil, err
	}
	pair, err := newPair(Keys{Section: keys.Section, CertFile: keys.CertFile, KeyFile: keys.KeyFile}, s.CertFile, s.KeyFile, s.Logger)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: minVersion}
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return pair.get() }
	if s.ClientCAFile != "" {
		pool, err := readCAs(keys.ClientCAFile, s.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if s.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, nil
}

// parseMinVersion reads a min_version setting: "" or "1.2" (TLS 1.2), "1.3".
func parseMinVersion(key, v string) (uint16, error) {
	switch v {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	if key == "" {
		key = "min_version"
	}
	return 0, fmt.Errorf("%s: %q is not 1.2 or 1.3", key, v)
}

// readCAs reads a PEM file of certificate authorities; key names it in errors.
func readCAs(key, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", key, path)
	}
	return pool, nil
}

// ErrExpired marks a certificate past its NotAfter (errors.Is).
var ErrExpired = errors.New("certificate expired")

// fileStamp is what tells that a file changed: its modification time and size.
type fileStamp struct {
	mod  time.Time
	size int64
}

// pair is a certificate and key loaded from files, reloaded when either file changes.
type pair struct {
	keys                Keys
	certPath, keyPath   string
	logger              *slog.Logger
	now                 func() time.Time
	mu                  sync.Mutex
	certStamp, keyStamp fileStamp
	cert                *tls.Certificate
	err                 error // the load error of the current stamps; nil with cert
	expiredWarned       bool  // the expiry of cert was logged
}

// newPair loads the pair at certPath and keyPath (both or neither: nil, nil for
// neither). An error names the keys.
func newPair(keys Keys, certPath, keyPath string, logger *slog.Logger) (*pair, error) {
	switch {
	case certPath == "" && keyPath == "":
		return nil, nil
	case certPath == "":
		return nil, fmt.Errorf("%s: required with %s", keys.CertFile, keys.KeyFile)
	case keyPath == "":
		return nil, fmt.Errorf("%s: required with %s", keys.KeyFile, keys.CertFile)
	}
	if logger == nil {
		logger = slog.Default()
	}
	p := &pair{keys: keys, certPath: certPath, keyPath: keyPath, logger: logger, now: time.Now}
	cs, ks, err := p.stat()
	if err != nil {
		return nil, err
	}
	p.certStamp, p.keyStamp = cs, ks
	p.cert, p.err = p.load()
	if p.err != nil {
		return nil, p.err
	}
	return p, nil
}

// stat returns the stamps of both files; an error names the key of the file.
func (p *pair) stat() (fileStamp, fileStamp, error) {
	var out [2]fileStamp
	for i, f := range []struct{ key, path string }{{p.keys.CertFile, p.certPath}, {p.keys.KeyFile, p.keyPath}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			return fileStamp{}, fileStamp{}, fmt.Errorf("%s: %w", f.key, err)
		}
		out[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return out[0], out[1], nil
}

// load reads and parses the pair and checks the certificate is not expired.
func (p *pair) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(p.certPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.keys.CertFile, err)
	}
	keyPEM, err := os.ReadFile(p.keyPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.keys.KeyFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %s and %s do not load as a certificate and its key: %w",
			p.keys.CertFile, p.keys.KeyFile, p.certPath, p.keyPath, err)
	}
	if err := p.checkExpiry(&cert); err != nil {
		return nil, err
	}
	return &cert, nil
}

// checkExpiry returns ErrExpired, wrapped with the key and the time, for a certificate
// past its NotAfter.
func (p *pair) checkExpiry(cert *tls.Certificate) error {
	if cert.Leaf == nil {
		return nil
	}
	if na := cert.Leaf.NotAfter; p.now().After(na) {
		return fmt.Errorf("%s: the certificate in %s expired at %s: %w", p.keys.CertFile, p.certPath, na.UTC().Format(time.RFC3339), ErrExpired)
	}
	return nil
}

// get returns the pair for a handshake: the loaded one while its files are unchanged,
// else the pair read again. A pair that does not load, or has expired, is an error; the
// warning of a failed reload is logged once per change of the files.
func (p *pair) get() (*tls.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs, ks, err := p.stat()
	if err != nil {
		if p.err == nil || p.err.Error() != err.Error() {
			p.logger.Warn("TLS certificate files unreadable; handshakes fail until they are fixed", "key", p.keys.Section, "err", err)
		}
		p.cert, p.err, p.certStamp, p.keyStamp = nil, err, fileStamp{}, fileStamp{}
		return nil, err
	}
	if cs != p.certStamp || ks != p.keyStamp {
		p.certStamp, p.keyStamp = cs, ks
		p.cert, p.err = p.load()
		p.expiredWarned = false
		if p.err != nil {
			p.logger.Warn("TLS certificate files changed but do not load; handshakes fail until they are fixed", "key", p.keys.Section, "err", p.err)
		} else if p.cert.Leaf != nil {
			p.logger.Info("TLS certificate reloaded", "key", p.keys.CertFile, "not_after", p.cert.Leaf.NotAfter)
		} else {
			p.logger.Info("TLS certificate reloaded", "key", p.keys.CertFile)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	if err := p.checkExpiry(p.cert); err != nil {
		if !p.expiredWarned {
			p.expiredWarned = true
			p.logger.Warn("TLS certificate expired; handshakes fail until it is renewed", "key", p.keys.CertFile, "err", err)
		}
		return nil, err
	}
	return p.cert, nil
}
