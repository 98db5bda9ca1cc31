// Package tlstest makes throwaway certificate authorities and certificates for tests of
// TLS connections: PEM files in a test's temporary directory.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throwaway self-signed certificate authority.
type CA struct {
	// Cert is the CA's certificate.
	Cert *x509.Certificate
	// Key is its private key.
	Key *ecdsa.PrivateKey
	// PEM is Cert, PEM-encoded.
	PEM []byte
}

// NewCA makes a CA named name, valid from an hour ago for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Leaf describes a certificate Issue makes.
type Leaf struct {
	// Serial is the certificate's serial number; 0: a random one.
	Serial int64
	// NotAfter is when it expires; zero: an hour from now. It is valid from an hour
	// before NotAfter or from an hour ago, whichever is earlier.
	NotAfter time.Time
	// Name is its common name and a DNS name; "" means "localhost". It is for server and
	// client authentication alike.
	Name string
	// NoIP leaves out the IP SANs 127.0.0.1 and ::1 it otherwise carries, so that only
	// Name verifies.
	NoIP bool
}

// Issue returns a certificate signed by ca and its key, both PEM.
func (ca *CA) Issue(t testing.TB, l Leaf) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if l.Name == "" {
		l.Name = "localhost"
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = time.Now().Add(time.Hour)
	}
	serial := big.NewInt(l.Serial)
	if l.Serial == 0 {
		if serial, err = rand.Int(rand.Reader, big.NewInt(1<<62)); err != nil {
			t.Fatal(err)
		}
	}
	notBefore := time.Now().Add(-time.Hour)
	if nb := l.NotAfter.Add(-time.Hour); nb.Before(notBefore) {
		notBefore = nb
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: l.Name},
		NotBefore: notBefore, NotAfter: l.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{l.Name},
	}
	if !l.NoIP {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// WriteFile writes data to dir/name and returns the path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Files are the paths of a CA file and a certificate and key issued by it.
type Files struct {
	// CA, Cert and Key are the paths.
	CA, Cert, Key string
}

// WriteFiles issues a certificate of ca as l says and writes the CA, the certificate and
// its key to dir as ca.pem, <prefix>.crt and <prefix>.key.
func (ca *CA) WriteFiles(t testing.TB, dir, prefix string, l Leaf) Files {
	t.Helper()
	c, k := ca.Issue(t, l)
	return Files{CA: WriteFile(t, dir, "ca.pem", ca.PEM), Cert: WriteFile(t, dir, prefix+".crt", c), Key: WriteFile(t, dir, prefix+".key", k)}
}
