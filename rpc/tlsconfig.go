package rpc

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// PeerTLSInfo configures TLS between members, in the spirit of etcd's
// --peer-cert-file, --peer-key-file, --peer-trusted-ca-file and
// --peer-client-cert-auth. A member uses one certificate both to serve its
// peer listener and to dial its peers, so the certificate should allow
// both server and client authentication.
type PeerTLSInfo struct {
	// CertFile and KeyFile are the member's PEM certificate (chain) and
	// private key.
	CertFile, KeyFile string
	// TrustedCAFile is a PEM bundle of the CAs that peer certificates must
	// chain to. Without it the system's roots are trusted.
	TrustedCAFile string
	// ClientCertAuth makes the listener refuse a dialer that presents no
	// certificate signed by a CA of TrustedCAFile. It needs TrustedCAFile.
	ClientCertAuth bool
}

// Empty reports whether no TLS is configured (plain TCP between peers).
func (info PeerTLSInfo) Empty() bool {
	return info.CertFile == "" && info.KeyFile == "" && info.TrustedCAFile == "" && !info.ClientCertAuth
}

// ServerConfig builds the TLS configuration of the peer listener. Every
// error names the file or the setting at fault.
func (info PeerTLSInfo) ServerConfig() (*tls.Config, error) {
	if info.CertFile == "" || info.KeyFile == "" {
		return nil, errors.New("rpc: peer TLS listener needs both a certificate file and a key file")
	}
	if info.ClientCertAuth && info.TrustedCAFile == "" {
		return nil, errors.New("rpc: peer TLS client certificate auth needs a trusted CA file")
	}
	cert, err := peerTLSKeyPair(info.CertFile, info.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if info.TrustedCAFile != "" {
		pool, err := peerTLSCertPool(info.TrustedCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		// A certificate presented without ClientCertAuth must still verify.
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if info.ClientCertAuth {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientConfig builds the TLS configuration a member dials its peers with:
// it trusts TrustedCAFile (or the system's roots without it) and presents
// CertFile/KeyFile when given. The server name to verify is set per dial
// from the peer URL's host.
func (info PeerTLSInfo) ClientConfig() (*tls.Config, error) {
	if (info.CertFile == "") != (info.KeyFile == "") {
		return nil, errors.New("rpc: peer TLS needs both a certificate file and a key file, or neither")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if info.CertFile != "" {
		cert, err := peerTLSKeyPair(info.CertFile, info.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if info.TrustedCAFile != "" {
		pool, err := peerTLSCertPool(info.TrustedCAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// peerTLSKeyPair loads a certificate and its key, checking each file on its
// own first so that the error names the file at fault.
func peerTLSKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := peerTLSReadPEM(certFile, "certificate", "CERTIFICATE")
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := peerTLSReadPEM(keyFile, "key", "PRIVATE KEY")
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("rpc: peer TLS certificate file %s and key file %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// peerTLSCertPool reads a PEM bundle of CA certificates.
func peerTLSCertPool(file string) (*x509.CertPool, error) {
	data, err := peerTLSReadPEM(file, "trusted CA", "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("rpc: peer TLS trusted CA file %s holds no valid certificate", file)
	}
	return pool, nil
}

// peerTLSReadPEM reads file and checks that it holds at least one PEM block
// whose type ends with blockType ("PRIVATE KEY" matches "EC PRIVATE KEY"
// and "RSA PRIVATE KEY" too).
func peerTLSReadPEM(file, what, blockType string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("rpc: peer TLS %s file: %w", what, err)
	}
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("rpc: peer TLS %s file %s holds no PEM %s block", what, file, blockType)
		}
		if strings.HasSuffix(block.Type, blockType) {
			return data, nil
		}
	}
}
