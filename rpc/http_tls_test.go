package rpc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testPKI is a CA and certificates it signed, written as PEM files.
type testPKI struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "raftkv test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	p := &testPKI{dir: t.TempDir(), caCert: cert, caKey: key, serial: 1}
	writePEM(t, filepath.Join(p.dir, "ca.pem"), "CERTIFICATE", der)
	return p
}

func (p *testPKI) caFile() string { return filepath.Join(p.dir, "ca.pem") }

// issue signs a certificate for name (a server for 127.0.0.1, or a client)
// and returns its certificate and key files.
func (p *testPKI) issue(t *testing.T, name string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, file, kind string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600))
}

// serveTLS runs a fake member's API with TLS on a loopback port.
func serveTLS(t *testing.T, info ClientTLSInfo) string {
	t.Helper()
	cfg, err := info.ServerConfig()
	require.NoError(t, err)
	api, err := NewAPI(newFakeBackend(t), APIOptions{})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- api.Serve(l, cfg) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, api.Shutdown(ctx))
		assert.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return "https://" + l.Addr().String()
}

func tlsGet(t *testing.T, url string, info ClientTLSInfo) (string, error) {
	t.Helper()
	cfg, err := info.ClientConfig()
	require.NoError(t, err)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url + "/version")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestClientTLS(t *testing.T) {
	pki := newTestPKI(t)
	serverCert, serverKey := pki.issue(t, "server", true)
	clientCert, clientKey := pki.issue(t, "client", false)
	other := newTestPKI(t)
	strangerCert, strangerKey := other.issue(t, "stranger", false)
	const version = `{"etcdserver":"3.5.33","etcdcluster":"3.5.0"}`

	t.Run("server certificate only", func(t *testing.T) {
		url := serveTLS(t, ClientTLSInfo{CertFile: serverCert, KeyFile: serverKey})
		got, err := tlsGet(t, url, ClientTLSInfo{TrustedCAFile: pki.caFile()})
		require.NoError(t, err)
		assert.Equal(t, version, got)
		// A client that does not trust the server's CA refuses it.
		_, err = tlsGet(t, url, ClientTLSInfo{TrustedCAFile: other.caFile()})
		assert.Error(t, err)
	})
	t.Run("client certificate auth", func(t *testing.T) {
		url := serveTLS(t, ClientTLSInfo{CertFile: serverCert, KeyFile: serverKey, TrustedCAFile: pki.caFile(), ClientCertAuth: true})
		got, err := tlsGet(t, url, ClientTLSInfo{CertFile: clientCert, KeyFile: clientKey, TrustedCAFile: pki.caFile()})
		require.NoError(t, err)
		assert.Equal(t, version, got)
		_, err = tlsGet(t, url, ClientTLSInfo{TrustedCAFile: pki.caFile()})
		assert.Error(t, err, "no client certificate")
		_, err = tlsGet(t, url, ClientTLSInfo{CertFile: strangerCert, KeyFile: strangerKey, TrustedCAFile: pki.caFile()})
		assert.Error(t, err, "a client certificate from an untrusted CA")
	})
	t.Run("trusted CA without client certificate auth", func(t *testing.T) {
		url := serveTLS(t, ClientTLSInfo{CertFile: serverCert, KeyFile: serverKey, TrustedCAFile: pki.caFile()})
		_, err := tlsGet(t, url, ClientTLSInfo{TrustedCAFile: pki.caFile()})
		require.NoError(t, err, "a client without a certificate may connect")
		_, err = tlsGet(t, url, ClientTLSInfo{CertFile: strangerCert, KeyFile: strangerKey, TrustedCAFile: pki.caFile()})
		assert.Error(t, err, "a certificate given must verify")
	})
}

func TestClientTLSConfigErrors(t *testing.T) {
	pki := newTestPKI(t)
	serverCert, serverKey := pki.issue(t, "server", true)
	notPEM := filepath.Join(pki.dir, "garbage.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	missing := filepath.Join(pki.dir, "missing.pem")
	tests := []struct {
		name string
		info ClientTLSInfo
		want string
	}{
		{"no key", ClientTLSInfo{CertFile: serverCert}, "needs both a certificate file and a key file"},
		{"missing certificate file", ClientTLSInfo{CertFile: missing, KeyFile: serverKey}, "load certificate " + missing},
		{"key does not match", ClientTLSInfo{CertFile: serverCert, KeyFile: notPEM}, "key " + notPEM},
		{"client cert auth without CA", ClientTLSInfo{CertFile: serverCert, KeyFile: serverKey, ClientCertAuth: true}, "needs a trusted CA file"},
		{"missing CA file", ClientTLSInfo{CertFile: serverCert, KeyFile: serverKey, TrustedCAFile: missing}, missing},
		{"CA file without PEM", ClientTLSInfo{CertFile: serverCert, KeyFile: serverKey, TrustedCAFile: notPEM}, "trusted CA file " + notPEM + " holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.info.ServerConfig()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	cfg, err := ClientTLSInfo{CertFile: serverCert, KeyFile: serverKey}.ServerConfig()
	require.NoError(t, err)
	assert.Equal(t, tls.NoClientCert, cfg.ClientAuth)
	assert.True(t, ClientTLSInfo{}.Empty())
	_, err = ClientTLSInfo{CertFile: serverCert}.ClientConfig()
	assert.Error(t, err)
}
