// smtp.go owns e-mail notifications: smtp:// URLs and the legacy --notification-email-* flags,
// STARTTLS when the server offers it, authentication only over TLS, and the message itself.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"slices"
	"strings"
	"time"
)

// smtpURL takes smtp://[user:password@]host[:port]/?from=a@b&to=c@d[,e@f][&encryption=…&subject=…].
func (b destinationBuilder) smtpURL(u *url.URL) (destination, error) {
	q := u.Query()
	s := &smtpSender{host: u.Hostname(), port: firstOf(u.Port(), "25"), subject: firstOf(q.Get("subject"), q.Get("title")),
		encryption: firstOf(strings.ToLower(q.Get("encryption")), "auto"), roots: b.ep.roots}
	if u.User != nil {
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
	}
	if s.encryption == "auto" && q.Get("usestarttls") != "" && !yes(q.Get("usestarttls")) {
		s.encryption = "none"
	}
	switch s.encryption {
	case "auto", "none", "explicittls", "implicittls":
	default:
		return destination{}, errors.New("encryption must be auto, none, explicittls or implicittls")
	}
	if s.host == "" {
		return destination{}, errors.New("want smtp://[user:password@]host[:port]/?from=address&to=address[,address]")
	}
	if err := s.addresses(firstOf(q.Get("from"), q.Get("fromaddress")), firstOf(q.Get("to"), q.Get("toaddresses"))); err != nil {
		return destination{}, err
	}
	return s.destination(), nil
}

// smtpSender sends one mail per message, with STARTTLS whenever the server offers it.
type smtpSender struct {
	host, port     string
	user, password string
	from           *mail.Address
	to             []*mail.Address
	subject        string // replaces the title when set
	encryption     string // auto, none, explicittls, implicittls
	skipVerify     bool
	roots          *x509.CertPool
}

func (s *smtpSender) addresses(from, to string) error {
	var err error
	if s.from, err = mail.ParseAddress(from); err != nil {
		return fmt.Errorf("sender address %q: %v", from, err)
	}
	if s.to, err = mail.ParseAddressList(to); err != nil {
		return fmt.Errorf("recipient addresses %q: %v", to, err)
	}
	return nil
}

func (s *smtpSender) destination() destination {
	if s.encryption == "auto" && s.port == "465" {
		s.encryption = "implicittls" // the submissions port speaks TLS from the start
	}
	return destination{service: "smtp", host: net.JoinHostPort(s.host, s.port), secrets: []string{s.password}, send: s.send}
}

func (s *smtpSender) send(ctx context.Context, m message) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(s.host, s.port))
	if err != nil {
		return err
	}
	defer conn.Close()
	// net/smtp knows no contexts: the deadline and a cancel both end the connection.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	err = s.converse(ctx, conn, m)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("smtp: %w", ctx.Err())
	}
	return err
}

func (s *smtpSender) converse(ctx context.Context, conn net.Conn, m message) error {
	tlsConf := &tls.Config{ServerName: s.host, RootCAs: s.roots, InsecureSkipVerify: s.skipVerify, MinVersion: tls.VersionTLS12}
	if s.encryption == "implicittls" {
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("smtp tls: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return fmt.Errorf("smtp greeting: %w", err)
	}
	defer c.Close()
	if s.encryption == "auto" || s.encryption == "explicittls" {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConf); err != nil {
				return fmt.Errorf("smtp starttls: %w", err)
			}
		} else if s.encryption == "explicittls" {
			return errors.New("smtp: the server offers no STARTTLS")
		}
	}
	if s.user != "" {
		if err := s.authenticate(c); err != nil {
			return err
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("smtp sender: %w", err)
	}
	for _, to := range s.to {
		if err := c.Rcpt(to.Address); err != nil {
			return fmt.Errorf("smtp recipient %s: %w", to.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if _, err := w.Write(s.mail(m, time.Now())); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	return c.Quit()
}

// authenticate uses PLAIN, which net/smtp sends only over TLS or to localhost, else CRAM-MD5.
func (s *smtpSender) authenticate(c *smtp.Client) error {
	ok, mechs := c.Extension("AUTH")
	var auth smtp.Auth
	switch {
	case !ok:
		return errors.New("smtp: the server offers no authentication; drop the user name")
	case slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN"):
		auth = smtp.PlainAuth("", s.user, s.password, s.host)
	case slices.Contains(strings.Fields(strings.ToUpper(mechs)), "CRAM-MD5"):
		auth = smtp.CRAMMD5Auth(s.user, s.password)
	default:
		return fmt.Errorf("smtp: the server offers only %s authentication", mechs)
	}
	if err := c.Auth(auth); err != nil {
		return fmt.Errorf("smtp auth: %w", err)
	}
	return nil
}

// mail is the message in RFC 5322 form: quoted-printable UTF-8 text, an encoded subject.
func (s *smtpSender) mail(m message, date time.Time) []byte {
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", s.from.String())
	to := make([]string, len(s.to))
	for i, a := range s.to {
		to[i] = a.String()
	}
	header("To", strings.Join(to, ", "))
	if subject := firstOf(s.subject, m.title); subject != "" {
		header("Subject", mime.QEncoding.Encode("utf-8", oneLine(subject)))
	}
	header("Date", date.Format(time.RFC1123Z))
	header("MIME-Version", "1.0")
	header("Content-Type", `text/plain; charset="utf-8"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(m.body))
	_ = qp.Close()
	return b.Bytes()
}
