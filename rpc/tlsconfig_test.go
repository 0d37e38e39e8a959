package rpc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/raftkv/raft"
)

// peerTestCA is a certificate authority made for a test.
type peerTestCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// file is the CA certificate as a PEM file.
	file string
}

var peerTestSerial = big.NewInt(1)

func newPeerTestCA(t testing.TB, dir, name string) *peerTestCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	peerTestSerial.Add(peerTestSerial, big.NewInt(1))
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).Set(peerTestSerial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &peerTestCA{cert: cert, key: key, file: filepath.Join(dir, name+"-ca.pem")}
	peerWritePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue makes a member certificate for 127.0.0.1 and localhost, good for
// serving and for dialing, and returns its certificate and key files.
func (ca *peerTestCA) issue(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	peerTestSerial.Add(peerTestSerial, big.NewInt(1))
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).Set(peerTestSerial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	peerWritePEM(t, certFile, "CERTIFICATE", der)
	peerWritePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func peerWritePEM(t testing.TB, file, blockType string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// withPeerTLS configures a test transport from info, listening at https.
func withPeerTLS(t testing.TB, info PeerTLSInfo) func(*PeerTransportOptions) {
	t.Helper()
	server, err := info.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	client, err := info.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	return func(o *PeerTransportOptions) { o.ServerTLS, o.ClientTLS = server, client }
}

func TestPeerTransportTLS(t *testing.T) {
	checkPeerGoroutines(t)
	dir := t.TempDir()
	ca := newPeerTestCA(t, dir, "cluster")
	cert1, key1 := ca.issue(t, dir, "member1")
	cert2, key2 := ca.issue(t, dir, "member2")
	a := newTestPeer(t, 1, "https://127.0.0.1:0", withPeerTLS(t, PeerTLSInfo{CertFile: cert1, KeyFile: key1, TrustedCAFile: ca.file, ClientCertAuth: true}))
	b := newTestPeer(t, 2, "https://127.0.0.1:0", withPeerTLS(t, PeerTLSInfo{CertFile: cert2, KeyFile: key2, TrustedCAFile: ca.file, ClientCertAuth: true}))
	connectPeers(t, a, b)
	const n = 1000
	for seq := uint64(1); seq <= n; seq++ {
		a.Send([]raft.Message{appMessage(1, 2, seq, 2, 256)})
		b.Send([]raft.Message{{Type: raft.MsgAppResp, From: 2, To: 1, Term: 1, Index: seq}})
	}
	waitUntil(t, 10*time.Second, "every message over TLS", func() bool { return a.inbox.len() == n && b.inbox.len() == n })
	for i, m := range b.inbox.all() {
		if m.Index != uint64(i+1) || len(m.Entries) != 2 {
			t.Fatalf("message %d: %s", i, m)
		}
	}
	if s := a.Stats(); s.RefusedStreams != 0 || s.Peers[0].SendFailures != 0 {
		t.Fatalf("stats: %s", describePeerStats(s))
	}
}

// peerTLSRefusal runs a dialer configured by dialer against an acceptor
// configured by acceptor and checks that no message crosses, that the
// dialer's error mentions want, and (if acceptorRefuses) that the acceptor
// counted the refusal.
func peerTLSRefusal(t *testing.T, dialer, acceptor func(*PeerTransportOptions), acceptorURL, want string, acceptorRefuses bool) {
	t.Helper()
	a := newTestPeer(t, 1, "", dialer)
	b := newTestPeer(t, 2, acceptorURL, acceptor)
	dialURL := b.url
	if a.opts.ClientTLS == nil {
		dialURL = strings.TrimPrefix(dialURL, "https://")
	}
	if err := a.AddPeer(2, []string{dialURL}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the dial to fail", func() bool {
		a.Send([]raft.Message{{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 1}})
		return peerStats(t, a.PeerTransport, 2).SendFailures > 0
	})
	s := peerStats(t, a.PeerTransport, 2)
	if !strings.Contains(s.LastError, want) || s.Connected {
		t.Fatalf("the dialer's last error %q does not mention %q", s.LastError, want)
	}
	t.Logf("the dialer says: %s", s.LastError)
	if acceptorRefuses {
		waitUntil(t, 5*time.Second, "the acceptor to count the refusal", func() bool { return b.Stats().RefusedStreams > 0 })
	}
	waitUntil(t, 5*time.Second, "an unreachable report", func() bool { return a.reports.count(2) > 0 })
	if b.inbox.len() != 0 {
		t.Fatal("a message crossed")
	}
}

func TestPeerTransportTLSRefusals(t *testing.T) {
	dir := t.TempDir()
	ca := newPeerTestCA(t, dir, "cluster")
	other := newPeerTestCA(t, dir, "other")
	cert1, key1 := ca.issue(t, dir, "member1")
	cert2, key2 := ca.issue(t, dir, "member2")
	stranger, strangerKey := other.issue(t, dir, "stranger")
	member2 := PeerTLSInfo{CertFile: cert2, KeyFile: key2, TrustedCAFile: ca.file, ClientCertAuth: true}

	t.Run("client certificate from another CA", func(t *testing.T) {
		checkPeerGoroutines(t)
		client, err := PeerTLSInfo{CertFile: stranger, KeyFile: strangerKey, TrustedCAFile: ca.file}.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		// Present the certificate even though the listener asks for
		// another CA's (Go's client would otherwise send none).
		client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &client.Certificates[0], nil
		}
		dialer := func(o *PeerTransportOptions) { o.ClientTLS = client }
		peerTLSRefusal(t, dialer, withPeerTLS(t, member2), "https://127.0.0.1:0", "tls: unknown certificate authority", true)
	})
	t.Run("no client certificate", func(t *testing.T) {
		checkPeerGoroutines(t)
		client, err := PeerTLSInfo{TrustedCAFile: ca.file}.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		dialer := func(o *PeerTransportOptions) { o.ClientTLS = client }
		peerTLSRefusal(t, dialer, withPeerTLS(t, member2), "https://127.0.0.1:0", "certificate required", true)
	})
	t.Run("server certificate from another CA", func(t *testing.T) {
		checkPeerGoroutines(t)
		dialer := PeerTLSInfo{CertFile: cert1, KeyFile: key1, TrustedCAFile: ca.file}
		acceptor := PeerTLSInfo{CertFile: stranger, KeyFile: strangerKey, TrustedCAFile: other.file}
		peerTLSRefusal(t, withPeerTLS(t, dialer), withPeerTLS(t, acceptor), "https://127.0.0.1:0", "unknown authority", true)
	})
	t.Run("TLS to a plain listener", func(t *testing.T) {
		checkPeerGoroutines(t)
		dialer := withPeerTLS(t, PeerTLSInfo{CertFile: cert1, KeyFile: key1, TrustedCAFile: ca.file})
		a := newTestPeer(t, 1, "", dialer)
		b := newTestPeer(t, 2, "", nil)
		if err := a.AddPeer(2, []string{"https://" + b.url}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 5*time.Second, "the acceptor to refuse", func() bool { return b.Stats().RefusedStreams > 0 })
		if peerStats(t, a.PeerTransport, 2).Connected || b.inbox.len() != 0 {
			t.Fatal("TLS reached a plain listener")
		}
	})
	t.Run("plain TCP to a TLS listener", func(t *testing.T) {
		checkPeerGoroutines(t)
		peerTLSRefusal(t, nil, withPeerTLS(t, member2), "https://127.0.0.1:0", "https listener given an http peer URL", true)
	})
}

func TestPeerTLSInfoErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	ca := newPeerTestCA(t, dir, "cluster")
	cert, key := ca.issue(t, dir, "member1")
	otherCert, _ := ca.issue(t, dir, "member2")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a PEM file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		info PeerTLSInfo
		// client says to build the dialer's configuration, else the
		// listener's.
		client bool
		want   []string
	}{
		{"missing certificate", PeerTLSInfo{CertFile: missing, KeyFile: key}, false, []string{"certificate file", missing}},
		{"missing key", PeerTLSInfo{CertFile: cert, KeyFile: missing}, false, []string{"key file", missing}},
		{"missing CA", PeerTLSInfo{CertFile: cert, KeyFile: key, TrustedCAFile: missing}, true, []string{"trusted CA file", missing}},
		{"garbage certificate", PeerTLSInfo{CertFile: garbage, KeyFile: key}, true, []string{"certificate file", garbage, "no PEM"}},
		{"key given as certificate", PeerTLSInfo{CertFile: key, KeyFile: key}, false, []string{"certificate file", key}},
		{"certificate given as key", PeerTLSInfo{CertFile: cert, KeyFile: cert}, false, []string{"key file", cert}},
		{"garbage CA", PeerTLSInfo{CertFile: cert, KeyFile: key, TrustedCAFile: garbage}, false, []string{"trusted CA file", garbage}},
		{"key of another certificate", PeerTLSInfo{CertFile: otherCert, KeyFile: key}, false, []string{otherCert, key}},
		{"listener without a key", PeerTLSInfo{CertFile: cert}, false, []string{"key file"}},
		{"dialer without a key", PeerTLSInfo{CertFile: cert}, true, []string{"key file"}},
		{"client cert auth without a CA", PeerTLSInfo{CertFile: cert, KeyFile: key, ClientCertAuth: true}, false, []string{"trusted CA"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.client {
				_, err = tt.info.ClientConfig()
			} else {
				_, err = tt.info.ServerConfig()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: does not mention %q", err, w)
				}
			}
		})
	}

	cfg, err := PeerTLSInfo{CertFile: cert, KeyFile: key, TrustedCAFile: ca.file, ClientCertAuth: true}.ServerConfig()
	if err != nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil || len(cfg.Certificates) != 1 {
		t.Fatalf("server config %+v, %v", cfg, err)
	}
	if !(PeerTLSInfo{}).Empty() || (PeerTLSInfo{TrustedCAFile: ca.file}).Empty() {
		t.Fatal("Empty is wrong")
	}
}
