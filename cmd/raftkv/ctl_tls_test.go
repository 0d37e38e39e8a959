package main

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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/embed"
	"github.com/raftkv/raftkv/rpc"
)

// ctlPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate as PEM files in dir.
type ctlPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newCtlPKI(t *testing.T) ctlPKI {
	dir := t.TempDir()
	write := func(name, kind string, der []byte) string {
		file := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600))
		return file
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	validity := func(c *x509.Certificate) *x509.Certificate {
		c.NotBefore, c.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		return c
	}
	caTmpl := validity(&x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign})
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	p := ctlPKI{ca: write("ca.pem", "CERTIFICATE", caDER)}
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := validity(&x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}})
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", keyDER)
	}
	p.serverCert, p.serverKey = issue("server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = issue("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

// TestCtlOverTLS runs key commands, cluster-health and bench against a
// member that requires client certificates.
func TestCtlOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a member")
	}
	pki := newCtlPKI(t)
	m, err := embed.Start(embed.Config{
		DataDir: t.TempDir(), ListenClientURLs: []string{"https://127.0.0.1:0"}, ListenPeerURLs: []string{"http://127.0.0.1:0"},
		ClientTLS:         rpc.ClientTLSInfo{CertFile: pki.serverCert, KeyFile: pki.serverKey, TrustedCAFile: pki.ca, ClientCertAuth: true},
		HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.Stop()) })
	eps := m.ClientURLs()
	tlsFlags := []string{"--cacert", pki.ca, "--cert", pki.clientCert, "--key", pki.clientKey}

	require.Eventually(t, func() bool {
		return ctl(t, eps, append([]string{"set", "/secure", "yes"}, tlsFlags...)...).code == 0
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "yes\n", ctlOK(t, eps, append([]string{"get", "/secure"}, tlsFlags...)...))
	assert.Contains(t, ctlOK(t, eps, append([]string{"cluster-health"}, tlsFlags...)...), "cluster is healthy\n")
	assert.Contains(t, ctlOK(t, eps, append([]string{"bench", "--clients", "2", "--duration", "200ms", "--warmup", "0s"}, tlsFlags...)...),
		" 0 failed\n")

	r := ctl(t, eps, "get", "/secure", "--cacert", pki.ca)
	assert.NotZero(t, r.code, "no client certificate")
	r = ctl(t, eps, "get", "/secure", "--cert", pki.clientCert)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "needs both a certificate file and a key file")
}
