package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
)

// SMTPConfig says how to reach the mail relay.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string // PLAIN auth when set
	Password string
	From     string
	StartTLS bool        // require STARTTLS before AUTH and MAIL
	TLS      *tls.Config // optional; ServerName defaults to Host
}

// Mail is one e-mail with a text and an HTML body.
type Mail struct {
	To      string
	Subject string
	Text    string
	HTML    string
	// MessageID, when set, is sent as Message-ID so a relay or mailbox can
	// recognise a resend of the same message.
	MessageID string
	// Sender, when set, replaces the relay's default sender (a tenant's own
	// sender, see MailSenderFromSettings).
	Sender *MailSender
}

// ErrNoRelay is returned by Send when no SMTP host is configured.
var ErrNoRelay = errors.New("notify: no SMTP relay configured (set ISPGRAPH_SMTP_HOST)")

// Mailer sends e-mail through one SMTP relay.
type Mailer struct {
	Config SMTPConfig
}

// Send delivers m over SMTP. It honours ctx's deadline for the whole exchange.
func (ml *Mailer) Send(ctx context.Context, m Mail) error {
	c := ml.Config
	if c.Host == "" {
		return ErrNoRelay
	}
	from := c.From
	if m.Sender != nil {
		c.From, from = m.Sender.Address, m.Sender.Header()
	}
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("notify: smtp dial %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
	}
	client, err := smtp.NewClient(conn, c.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("notify: smtp greeting: %w", err)
	}
	defer client.Close()
	if c.StartTLS {
		if ok, _ := client.Extension("STARTTLS"); !ok {
			return fmt.Errorf("notify: smtp relay %s does not offer STARTTLS", addr)
		}
		tc := &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}
		if c.TLS != nil {
			tc = c.TLS.Clone()
			if tc.ServerName == "" {
				tc.ServerName = c.Host
			}
		}
		if err := client.StartTLS(tc); err != nil {
			return fmt.Errorf("notify: smtp starttls: %w", err)
		}
	}
	if c.Username != "" {
		if err := client.Auth(smtp.PlainAuth("", c.Username, c.Password, c.Host)); err != nil {
			return fmt.Errorf("notify: smtp auth: %w", err)
		}
	}
	if err := client.Mail(c.From); err != nil {
		return fmt.Errorf("notify: smtp MAIL FROM: %w", err)
	}
	if err := client.Rcpt(m.To); err != nil {
		return fmt.Errorf("notify: smtp RCPT TO: %w", err)
	}
	w, err := client.Data()
	if err != nil {
		return fmt.Errorf("notify: smtp DATA: %w", err)
	}
	raw, err := compose(from, m)
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return fmt.Errorf("notify: smtp write: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("notify: smtp end of data: %w", err)
	}
	return client.Quit()
}

// IsPermanent reports whether err is an SMTP 5xx reply: retrying will not help.
func IsPermanent(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500
}

// compose builds a multipart/alternative message.
func compose(from string, m Mail) ([]byte, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	hdr := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	hdr("From", from)
	hdr("To", m.To)
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	hdr("Date", time.Now().UTC().Format(time.RFC1123Z))
	id := m.MessageID
	if id == "" {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b) + "@ispgraph"
	}
	hdr("Message-ID", "<"+id+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	buf.WriteString("\r\n")
	for _, part := range []struct{ ctype, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.ctype + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qw := quotedprintable.NewWriter(pw)
		if _, err := qw.Write([]byte(part.body)); err != nil {
			return nil, err
		}
		qw.Close()
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

//go:embed templates/*
var templateFS embed.FS

var (
	htmlTemplates = htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/*.html"))
	textTemplates = texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/*.txt"))
)

// InvoiceMailData is what the invoice e-mail templates show.
type InvoiceMailData struct {
	Kind         string // new | reminder | overdue
	TenantName   string
	CustomerName string
	Number       string
	Total        string
	AmountDue    string
	Currency     string
	DueDate      string
	PeriodStart  string
	PeriodEnd    string
}

// InvoiceKinds are the kinds of invoice e-mail.
var InvoiceKinds = []string{"new", "reminder", "overdue"}

// InvoiceMail renders the invoice e-mail of d.Kind for recipient to.
func InvoiceMail(to string, d InvoiceMailData) (Mail, error) {
	var subject string
	switch d.Kind {
	case "new":
		subject = fmt.Sprintf("%s: invoice %s", d.TenantName, d.Number)
	case "reminder":
		subject = fmt.Sprintf("%s: reminder, invoice %s is due %s", d.TenantName, d.Number, d.DueDate)
	case "overdue":
		subject = fmt.Sprintf("%s: invoice %s is overdue", d.TenantName, d.Number)
	default:
		return Mail{}, fmt.Errorf("notify: unknown invoice e-mail kind %q (want %s)", d.Kind, strings.Join(InvoiceKinds, ", "))
	}
	var text, html bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&text, "invoice.txt", d); err != nil {
		return Mail{}, fmt.Errorf("notify: render text: %w", err)
	}
	if err := htmlTemplates.ExecuteTemplate(&html, "invoice.html", d); err != nil {
		return Mail{}, fmt.Errorf("notify: render html: %w", err)
	}
	return Mail{To: to, Subject: subject, Text: text.String(), HTML: html.String()}, nil
}

// MailSender is a tenant's own e-mail sender, kept in the tenant's settings
// under "mail": {"mail": {"name": "Acme ISP", "address": "billing@acme.example"}}.
type MailSender struct {
	Name    string
	Address string
}

// MailSenderFromSettings reads the tenant's sender; ok is false when the
// tenant uses the server's default sender.
func MailSenderFromSettings(settings map[string]any) (MailSender, bool) {
	raw, ok := settings["mail"].(map[string]any)
	if !ok {
		return MailSender{}, false
	}
	name, _ := raw["name"].(string)
	addr, _ := raw["address"].(string)
	if addr == "" {
		return MailSender{}, false
	}
	return MailSender{Name: name, Address: addr}, true
}

// Header returns the sender as a From header value ("Acme ISP <billing@acme.example>").
func (s MailSender) Header() string {
	if s.Name == "" {
		return s.Address
	}
	return (&mail.Address{Name: s.Name, Address: s.Address}).String()
}
