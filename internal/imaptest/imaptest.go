// Package imaptest runs a real IMAP server for tests: Debian's dovecot-imapd
// on a free loopback port, with a throwaway configuration, mail directory
// and plaintext test user, so it never touches the machine's own Dovecot
// (/etc/dovecot, /var/run/dovecot). A missing Dovecot skips the test
// locally and fails it in CI (internal/testpeer).
package imaptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"

	"github.com/vigia-noc/vigia/internal/testpeer"
)

// The test user.
const (
	User     = "intake@vigia.test"
	Password = "imap-test-password"
)

// Server is a running Dovecot with one user.
type Server struct {
	Addr     string // 127.0.0.1:port: IMAP, with STARTTLS when started by StartTLS
	User     string
	Password string
	// With StartTLS: the implicit-TLS (imaps) address, and the pool that
	// trusts the server's self-signed certificate (for 127.0.0.1).
	TLSAddr string
	CA      *x509.CertPool
}

// config is a complete dovecot.conf: nothing is read from /etc/dovecot.
const config = `base_dir = {{dir}}/run
state_dir = {{dir}}/state
log_path = {{dir}}/dovecot.log
protocols = imap
listen = 127.0.0.1
{{ssl}}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{{dir}}/mail/%u
{{users}}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {{dir}}/passwd
}
userdb {
  driver = static
  args = uid={{uid}} gid={{gid}} home={{dir}}/home/%u
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = {{port}}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = {{tlsport}}
  }
}
service anvil {
  chroot =
}
`

// Start runs Dovecot without TLS until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartTLS runs Dovecot with a self-signed certificate made here: STARTTLS
// on Addr and implicit TLS on TLSAddr.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

func start(t testing.TB, withTLS bool) *Server {
	t.Helper()
	bin := testpeer.Command(t, "dovecot", "dovecot-imapd")
	if _, err := os.Stat("/usr/lib/dovecot/imap"); err != nil {
		testpeer.Missing(t, "dovecot's IMAP server", "apt-get install dovecot-imapd")
	}
	dir := t.TempDir()
	for _, d := range []string{"run", "state", "mail", "home"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// Dovecot refuses to access mail as root: as root the mail belongs to
	// nobody, who must be able to reach it through the 0700 temporary
	// directories.
	mailUID, mailGID := me.Uid, me.Gid
	if me.Uid == "0" {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("imaptest: as root the mail needs the user nobody: %v", err)
		}
		mailUID, mailGID = nobody.Uid, nobody.Gid
		uid, _ := strconv.Atoi(mailUID)
		gid, _ := strconv.Atoi(mailGID)
		for _, d := range []string{dir, filepath.Dir(dir)} {
			os.Chmod(d, 0o711)
		}
		for _, d := range []string{"mail", "home"} {
			if err := os.Chown(filepath.Join(dir, d), uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	// As root Dovecot drops its helpers to its own users (created by the
	// Debian package): authentication stays root to read the test's 0700
	// temporary directory. As anyone else every service runs as that user.
	users := "service auth {\n  user = root\n}\nservice auth-worker {\n  user = root\n}"
	if me.Uid != "0" {
		users = "default_internal_user = " + me.Username + "\ndefault_login_user = " + me.Username
	}
	port := testpeer.FreePort(t)
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), User: User, Password: Password}
	ssl, tlsPort := "ssl = no", "0"
	if withTLS {
		tlsPort = strconv.Itoa(testpeer.FreePort(t))
		s.TLSAddr = "127.0.0.1:" + tlsPort
		s.CA = selfSigned(t, dir)
		ssl = "ssl = yes\nssl_cert = <" + filepath.Join(dir, "cert.pem") + "\nssl_key = <" + filepath.Join(dir, "key.pem")
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{uid}}", mailUID, "{{gid}}", mailGID, "{{port}}", strconv.Itoa(port), "{{users}}", users,
		"{{ssl}}", ssl, "{{tlsport}}", tlsPort).Replace(config)
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(s.User+":{PLAIN}"+s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cf := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	testpeer.Start(t, port, bin, "-F", "-c", cf)
	t.Cleanup(func() {
		if t.Failed() {
			time.Sleep(200 * time.Millisecond) // the imap process's last words
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("dovecot log:\n%s", log)
		}
	})
	return s
}

// selfSigned writes a certificate and key for 127.0.0.1 into dir and
// returns a pool that trusts it.
func selfSigned(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "imaptest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// Dial logs the test user in; the connection is closed when the test ends.
func (s *Server) Dial(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.Dial(s.Addr)
	if err != nil {
		t.Fatalf("imaptest: dial %s: %v", s.Addr, err)
	}
	t.Cleanup(func() { c.Logout() })
	c.Timeout = 30 * time.Second
	if err := c.Login(s.User, s.Password); err != nil {
		t.Fatalf("imaptest: login: %v", err)
	}
	return c
}

// Append delivers raw into mailbox (created if missing) with date as its
// INTERNALDATE, the server's receipt instant.
func (s *Server) Append(t testing.TB, mailbox string, date time.Time, raw []byte) {
	t.Helper()
	c := s.Dial(t)
	if mailbox != "INBOX" {
		c.Create(mailbox) // already there is fine
	}
	if err := c.Append(mailbox, nil, date, bytes.NewBuffer(raw)); err != nil {
		t.Fatalf("imaptest: append to %s: %v", mailbox, err)
	}
	c.Logout()
}

// Count returns how many messages mailbox holds, and how many of them are
// flagged \Seen (0, 0 for a mailbox that does not exist).
func (s *Server) Count(t testing.TB, mailbox string) (total, seen int) {
	t.Helper()
	c := s.Dial(t)
	defer c.Logout()
	st, err := c.Status(mailbox, []imap.StatusItem{imap.StatusMessages, imap.StatusUnseen})
	if err != nil {
		return 0, 0
	}
	return int(st.Messages), int(st.Messages - st.Unseen)
}

func (s *Server) String() string { return fmt.Sprintf("dovecot at %s (user %s)", s.Addr, s.User) }
