package scorer

// How the openai and reward judges reach their endpoints: the API key (from the config,
// the environment or a file), extra request headers, and TLS to https endpoints (a
// private CA, a client certificate, a server name), with the client certificate reloaded
// when its files change.

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"raterd/internal/secret"
	"raterd/internal/tlsfiles"
	"raterd/scorer/pool"
)

// JudgeTLSConfig is judges.<name>.tls: TLS to a judge's https endpoints. Plain http
// endpoints do not use it.
type JudgeTLSConfig struct {
	// CAFile is a PEM file of the authorities the endpoints' certificates are verified
	// against (a private CA); empty: the system roots. Read at start: a changed CA takes
	// a restart.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate and key, for endpoints (or a
	// gateway in front of them) that require one. Both or neither. Reloaded when their
	// files change, so a renewed certificate is presented on the next connection.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the endpoints' certificates are verified for; empty: each
	// endpoint's host. Set it for endpoints found by dns, which are dialled by IP.
	ServerName string `yaml:"server_name"`
	// MinVersion is the lowest TLS version: "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// JudgeAPIKeyEnv is the environment variable that overrides judges.<name>.api_key:
// RATERD_JUDGE_<NAME>_API_KEY, NAME upper-cased with every run of other characters as one
// "_" ("pool-a" → RATERD_JUDGE_POOL_A_API_KEY).
func JudgeAPIKeyEnv(name string) string {
	var b strings.Builder
	lastUnderscore := true
	for _, r := range strings.ToUpper(name) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			lastUnderscore = false
		} else if !lastUnderscore {
			b.WriteByte('_')
			lastUnderscore = true
		}
	}
	return "RATERD_JUDGE_" + strings.TrimSuffix(b.String(), "_") + "_API_KEY"
}

// reservedHeader reports whether canon (canonical form) is a request header raterd sets
// itself or the HTTP client owns: judges.<name>.headers may not set it.
func reservedHeader(canon string) bool {
	switch canon {
	case "Connection", "Content-Length", "Content-Type", "Host", "Transfer-Encoding":
		return true
	}
	return false
}

// resolveAPIKey reads api_key_file into APIKey (secret.Resolve: not both). key is the
// judge's config path, "judges.<name>".
func (c *OpenAIConfig) resolveAPIKey(key string) error {
	env := ""
	if name, ok := strings.CutPrefix(key, "judges."); ok {
		env = JudgeAPIKeyEnv(name)
	}
	k, err := secret.Resolve(key+".api_key", c.APIKey, env, key+".api_key_file", c.APIKeyFile)
	if err != nil {
		return err
	}
	c.APIKey, c.APIKeyFile = k, ""
	return nil
}

// validateAccess resolves api_key_file into APIKey and checks the API key, the headers
// and the tls section. key is the judge's config path, "judges.<name>".
func (c *OpenAIConfig) validateAccess(key string) error {
	if err := c.resolveAPIKey(key); err != nil {
		return err
	}
	if strings.ContainsAny(c.APIKey.Reveal(), "\r\n") {
		return fmt.Errorf("%s.api_key: contains a line break", key)
	}
	if err := validateHeaders(key, c.Headers, c.APIKey != ""); err != nil {
		return err
	}
	if c.TLS != nil {
		if _, err := c.TLS.build(key+".tls", nil); err != nil {
			return err
		}
		if !anyHTTPS(c.Config) {
			return fmt.Errorf("%s.tls: set, but no endpoint is https (endpoints[].url https://…, or dns.scheme: https)", key)
		}
	}
	return nil
}

// validateHeaders checks judges.<name>.headers: names are HTTP tokens, unique regardless
// of case and not one raterd sets; values hold no line break or NUL; Authorization not
// together with an API key. Errors name judges.<name>.headers.<Header>, never the value.
func validateHeaders(key string, headers map[string]secret.Secret, withAPIKey bool) error {
	seen := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		hk := key + ".headers." + name
		if !validHeaderName(name) {
			return fmt.Errorf("%s: %q is not a valid HTTP header name (letters, digits and !#$%%&'*+-.^_`|~)", hk, name)
		}
		canon := http.CanonicalHeaderKey(name)
		if prev, ok := seen[canon]; ok {
			return fmt.Errorf("%s: the same header as %s.headers.%s (header names ignore case)", hk, key, prev)
		}
		seen[canon] = name
		if reservedHeader(canon) {
			return fmt.Errorf("%s: raterd sets this header itself", hk)
		}
		if canon == "Authorization" && withAPIKey {
			return fmt.Errorf("%s: set together with %s.api_key (sent as Authorization: Bearer …): set one", hk, key)
		}
		if strings.ContainsAny(headers[name].Reveal(), "\r\n\x00") {
			return fmt.Errorf("%s: the value contains a line break or NUL", hk)
		}
	}
	return nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// anyHTTPS reports whether the pool reaches any endpoint over https.
func anyHTTPS(c pool.Config) bool {
	if c.DNS != nil && c.DNS.Scheme == "https" {
		return true
	}
	for _, ep := range c.Endpoints {
		if strings.HasPrefix(strings.ToLower(ep.URL), "https://") {
			return true
		}
	}
	return false
}

// build makes the client TLS config; key is "judges.<name>.tls"; logger gets the warning
// of a renewed certificate that does not load (nil: slog.Default()).
func (t *JudgeTLSConfig) build(key string, logger *slog.Logger) (*tls.Config, error) {
	return tlsfiles.Client{
		CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName, MinVersion: t.MinVersion,
		Logger: logger,
	}.Config(tlsfiles.Nested(key))
}

// requestHeader is the header every request and health probe of a judge carries: the
// configured headers, and Authorization: Bearer with an API key. Nil when there is none.
func requestHeader(apiKey secret.Secret, headers map[string]secret.Secret) http.Header {
	if apiKey == "" && len(headers) == 0 {
		return nil
	}
	h := make(http.Header, len(headers)+1)
	for name, v := range headers {
		h.Set(name, v.Reveal())
	}
	if apiKey != "" {
		h.Set("Authorization", "Bearer "+apiKey.Reveal())
	}
	return h
}

// judgeHTTPClient returns the client of a judge: client (set.HTTPClient), or a client
// whose transport keeps an idle connection for every in-flight slot the pool may use.
// With tlsCfg, the transport (a clone of client's, which must then be an
// *http.Transport, or of http.DefaultTransport: proxies from the environment and the
// other settings are kept) uses it for https. Per-request timeouts come from contexts.
func judgeHTTPClient(client *http.Client, cfg pool.Config, tlsCfg *tls.Config) (*http.Client, error) {
	if client != nil && tlsCfg == nil {
		return client, nil
	}
	var base http.RoundTripper = http.DefaultTransport
	if client != nil && client.Transport != nil {
		base = client.Transport
	}
	var tr *http.Transport
	if bt, ok := base.(*http.Transport); ok {
		tr = bt.Clone()
	} else if client != nil {
		return nil, fmt.Errorf("tls: the HTTP client's transport is a %T, not an *http.Transport the TLS settings can be applied to", base)
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg
	}
	if client != nil {
		c := *client
		c.Transport = tr
		return &c, nil
	}
	total := 0
	for _, ep := range cfg.Endpoints {
		total += ep.MaxInFlight
	}
	if cfg.DNS != nil {
		total += 8 * cfg.DNS.MaxInFlight
	}
	tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, total)
	tr.MaxIdleConns = max(tr.MaxIdleConns, total)
	return &http.Client{Transport: tr}, nil
}

// judgeAccess builds what a judge's requests need: the HTTP client (TLS applied) and the
// request header. key is the judge's config path, logger gets certificate reload
// warnings.
func judgeAccess(key string, client *http.Client, cfg pool.Config, apiKey secret.Secret, headers map[string]secret.Secret, t *JudgeTLSConfig, logger *slog.Logger) (*http.Client, http.Header, error) {
	var tlsCfg *tls.Config
	if t != nil {
		var err error
		if tlsCfg, err = t.build(key+".tls", logger); err != nil {
			return nil, nil, err
		}
	}
	c, err := judgeHTTPClient(client, cfg, tlsCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s.%w", key, err)
	}
	return c, requestHeader(apiKey, headers), nil
}
