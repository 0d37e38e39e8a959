package embed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/raftkv/raftkv/rpc"
)

// testPKI is a CA and the files of certificates it signed, written to a
// temporary directory.
type testPKI struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "raftkv test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	p := &testPKI{dir: t.TempDir(), caCert: cert, caKey: key}
	p.caFile = filepath.Join(p.dir, "ca.pem")
	require.NoError(t, os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return p
}

// issue writes a certificate for 127.0.0.1 good for both server and client
// use, and returns its certificate and key files.
func (p *testPKI) issue(t *testing.T, name string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

// TestTLSCluster runs a 3-member cluster with TLS and client-certificate
// authentication on both client and peer listeners: members replicate over
// mutual TLS, a client with a certificate from the cluster's CA is served,
// one without a certificate is refused.
func TestTLSCluster(t *testing.T) {
	pki := newTestPKI(t)
	var initial []string
	peers := make([]string, 3)
	for i := range peers {
		peers[i] = "https://" + freeAddr(t)
		initial = append(initial, fmt.Sprintf("m%d=%s", i+1, peers[i]))
	}
	var members []*Member
	for i := range peers {
		cert, key := pki.issue(t, fmt.Sprintf("m%d", i+1), int64(i+2))
		m, err := Start(Config{
			Name: fmt.Sprintf("m%d", i+1), DataDir: t.TempDir(),
			ListenClientURLs: []string{"https://127.0.0.1:0"}, ListenPeerURLs: []string{peers[i]},
			InitialCluster:    strings.Join(initial, ","),
			HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
			ClientTLS: rpc.ClientTLSInfo{CertFile: cert, KeyFile: key, TrustedCAFile: pki.caFile, ClientCertAuth: true},
			PeerTLS:   rpc.PeerTLSInfo{CertFile: cert, KeyFile: key, TrustedCAFile: pki.caFile, ClientCertAuth: true},
		})
		require.NoError(t, err)
		members = append(members, m)
	}
	t.Cleanup(func() {
		for _, m := range members {
			assert.NoError(t, m.Stop())
		}
	})
	clientCert, clientKey := pki.issue(t, "client", 10)
	pair, err := tls.LoadX509KeyPair(clientCert, clientKey)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(pki.caCert)
	withCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
	var body string
	require.Eventually(t, func() bool {
		code, b, err := put(withCert, members[2].ClientURLs()[0]+"/v2/keys/secure", url.Values{"value": {"yes"}})
		body = b
		return err == nil && (code == http.StatusCreated || code == http.StatusOK)
	}, 10*time.Second, 50*time.Millisecond, "last answer: %s", body)
	resp, err := withCert.Get(members[0].ClientURLs()[0] + "/v2/keys/secure")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "replicated over mutual TLS")

	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots}}}
	_, err = noCert.Get(members[0].ClientURLs()[0] + "/v2/keys/secure")
	assert.Error(t, err, "a client without a certificate is refused")
}
