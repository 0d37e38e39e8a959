package client_test

import (
	"context"
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

	"github.com/raftkv/raftkv/client"
	"github.com/raftkv/raftkv/embed"
	"github.com/raftkv/raftkv/rpc"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files in a directory.
type testPKI struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "raftkv test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	p := testPKI{caFile: filepath.Join(dir, "ca.pem")}
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (certFile, keyFile string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
		return certFile, keyFile
	}
	p.serverCert, p.serverKey = issue("server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = issue("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func writePEM(t *testing.T, file, kind string, der []byte) {
	require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600))
}

func TestTLSWithAClientCertificate(t *testing.T) {
	pki := newTestPKI(t)
	m, err := embed.Start(embed.Config{
		DataDir: t.TempDir(), ListenClientURLs: []string{"https://127.0.0.1:0"}, ListenPeerURLs: []string{"http://127.0.0.1:0"},
		ClientTLS: rpc.ClientTLSInfo{
			CertFile: pki.serverCert, KeyFile: pki.serverKey, TrustedCAFile: pki.caFile, ClientCertAuth: true,
		},
		HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.Stop()) })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	tlsConfig, err := client.NewTLSConfig(pki.caFile, pki.clientCert, pki.clientKey)
	require.NoError(t, err)
	c, err := client.New(client.Config{Endpoints: m.ClientURLs(), TLS: tlsConfig})
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool {
		_, err := c.Set(ctx, "/secure", "yes", nil)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	resp, err := c.Get(ctx, "/secure", nil)
	require.NoError(t, err)
	assert.Equal(t, "yes", resp.Node.Value)

	noCert, err := client.NewTLSConfig(pki.caFile, "", "")
	require.NoError(t, err)
	anonymous, err := client.New(client.Config{Endpoints: m.ClientURLs(), TLS: noCert})
	require.NoError(t, err)
	_, err = anonymous.Get(ctx, "/secure", nil)
	assert.Error(t, err, "the server asks for a client certificate")

	_, err = client.NewTLSConfig(pki.caFile, pki.clientCert, "")
	assert.Error(t, err)
	_, err = client.NewTLSConfig(filepath.Join(t.TempDir(), "missing.pem"), "", "")
	assert.Error(t, err)
}
