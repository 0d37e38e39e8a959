package rpc

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ClientTLSInfo configures TLS on the client listener, in the spirit of
// etcd's --cert-file, --key-file, --trusted-ca-file and --client-cert-auth.
type ClientTLSInfo struct {
	// CertFile and KeyFile are the PEM certificate (chain) and private key
	// the server presents.
	CertFile, KeyFile string
	// TrustedCAFile is a PEM bundle of the CAs client certificates must
	// chain to. Without ClientCertAuth a client may still connect without a
	// certificate, but one it presents must verify.
	TrustedCAFile string
	// ClientCertAuth refuses clients that present no certificate signed by
	// a trusted CA. It needs TrustedCAFile.
	ClientCertAuth bool
}

// Empty reports whether no TLS is configured (plain HTTP).
func (info ClientTLSInfo) Empty() bool {
	return info.CertFile == "" && info.KeyFile == "" && info.TrustedCAFile == "" && !info.ClientCertAuth
}

// ServerConfig builds the listener's TLS configuration. Every error names
// the file or the setting at fault.
func (info ClientTLSInfo) ServerConfig() (*tls.Config, error) {
	if info.CertFile == "" || info.KeyFile == "" {
		return nil, errors.New("rpc: client TLS needs both a certificate file and a key file")
	}
	if info.ClientCertAuth && info.TrustedCAFile == "" {
		return nil, errors.New("rpc: client TLS: client certificate auth needs a trusted CA file")
	}
	cert, err := tls.LoadX509KeyPair(info.CertFile, info.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("rpc: client TLS: load certificate %s and key %s: %w", info.CertFile, info.KeyFile, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// HTTP/1.1 only: watches are long-lived chunked responses, which
		// every etcd v2 client reads over HTTP/1.1.
		NextProtos: []string{"http/1.1"},
	}
	if info.TrustedCAFile != "" {
		pool, err := loadCertPool(info.TrustedCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if info.ClientCertAuth {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientConfig builds the TLS configuration of a client of such a
// listener: it trusts TrustedCAFile (or the system's roots without it) and
// presents CertFile/KeyFile when given.
func (info ClientTLSInfo) ClientConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if (info.CertFile == "") != (info.KeyFile == "") {
		return nil, errors.New("rpc: client TLS needs both a certificate file and a key file, or neither")
	}
	if info.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(info.CertFile, info.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("rpc: client TLS: load certificate %s and key %s: %w", info.CertFile, info.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if info.TrustedCAFile != "" {
		pool, err := loadCertPool(info.TrustedCAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// loadCertPool reads a PEM bundle of CA certificates.
func loadCertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("rpc: client TLS: read trusted CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("rpc: client TLS: trusted CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}
