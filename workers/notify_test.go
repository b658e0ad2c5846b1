package workers_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocraft/work"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/notification"
	"github.com/ispgraph/ispgraph/ent/outboxjob"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/workers"
)

// smtpServer is a minimal SMTP server speaking RFC 5321 (EHLO, AUTH PLAIN,
// MAIL, RCPT, DATA, QUIT) that keeps what it receives.
type smtpServer struct {
	tls *tls.Config // when set, STARTTLS is offered and required before MAIL
	// hold, when set, keeps each DATA unanswered until it is closed; data
	// gets a value when a DATA has been read.
	hold chan struct{}
	data chan struct{}
	ln   net.Listener
	mu   sync.Mutex
	msgs []smtpMessage
	auth []string
}

type smtpMessage struct {
	from string
	to   []string
	data string
}

func newSMTPServer(t *testing.T) *smtpServer { return newSMTPServerTLS(t, nil) }

func newSMTPServerTLS(t *testing.T, cfg *tls.Config) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, tls: cfg}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	tp := textproto.NewConn(c)
	tp.PrintfLine("220 test ESMTP")
	var m smtpMessage
	secure := false
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			tp.PrintfLine("250-test greets you")
			if s.tls != nil && !secure {
				tp.PrintfLine("250-STARTTLS")
			}
			tp.PrintfLine("250 AUTH PLAIN")
		case "STARTTLS":
			tp.PrintfLine("220 go ahead")
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, secure = tc, true
			tp = textproto.NewConn(tc)
		case "AUTH":
			_, b64, _ := strings.Cut(arg, " ")
			raw, _ := base64.StdEncoding.DecodeString(b64)
			s.mu.Lock()
			s.auth = append(s.auth, string(raw))
			s.mu.Unlock()
			tp.PrintfLine("235 ok")
		case "MAIL":
			if s.tls != nil && !secure {
				tp.PrintfLine("530 must issue STARTTLS first")
				continue
			}
			m = smtpMessage{from: arg}
			tp.PrintfLine("250 ok")
		case "RCPT":
			m.to = append(m.to, arg)
			tp.PrintfLine("250 ok")
		case "DATA":
			tp.PrintfLine("354 go ahead")
			b, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			m.data = string(b)
			if s.hold != nil {
				s.data <- struct{}{}
				<-s.hold
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			tp.PrintfLine("250 queued")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("502 not implemented")
		}
	}
}

func (s *smtpServer) messages() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMessage(nil), s.msgs...)
}

func TestSendInvoiceEmail(t *testing.T) {
	e := newEnv(t)
	srv := newSMTPServer(t)
	inv := e.invoice("25.50")
	for _, kind := range []string{"new", "new", "overdue"} { // "new" twice: deduplicated by the outbox
		if err := notify.EnqueueInvoiceEmail(e.ctx, e.client, e.tenantID, inv.ID, kind); err != nil {
			t.Fatal(err)
		}
	}
	mailer := &notify.Mailer{Config: notify.SMTPConfig{Host: "127.0.0.1", Port: srv.port(), From: "billing@acme.example",
		Username: "mailer", Password: "s3cret"}}
	o := e.options()
	o.Mailer = mailer
	e.start(o)
	eventually(t, 20*time.Second, "two e-mails", func() bool {
		return e.client.Notification.Query().Where(notification.StatusEQ(notification.StatusSENT)).CountX(e.ctx) == 2
	})
	msgs := srv.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages delivered, want 2", len(msgs))
	}
	m := msgs[0]
	if m.from != "FROM:<billing@acme.example>" || len(m.to) != 1 || m.to[0] != "TO:<alice@example.net>" {
		t.Errorf("envelope %q %q", m.from, m.to)
	}
	for _, want := range []string{"Subject: Acme Net: invoice " + inv.Number, "multipart/alternative", "text/plain", "text/html", "25.50", "Alice Doe"} {
		found := false
		for _, mm := range msgs {
			found = found || strings.Contains(mm.data, want)
		}
		if !found {
			t.Errorf("no message contains %q:\n%s", want, m.data)
		}
	}
	if a := srv.auth; len(a) == 0 || a[0] != "\x00mailer\x00s3cret" {
		t.Errorf("AUTH PLAIN: %q", a)
	}

	// Run the job again directly: nothing more is sent.
	h := &workers.InvoiceEmailHandler{Client: e.client, Mailer: mailer, Logger: e.logger()}
	args, _ := jobs.ToMap(jobs.SendInvoiceEmailArgs{TenantID: e.tenantID, InvoiceID: inv.ID, EmailKind: "new"})
	if err := h.Send(&work.Job{Name: jobs.SendInvoiceEmail, ID: "again", Args: args}); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.messages()); n != 2 {
		t.Fatalf("a second run sent again: %d messages", n)
	}
	ns := e.client.Notification.Query().AllX(e.ctx)
	if len(ns) != 2 {
		t.Fatalf("%d notification rows, want 2", len(ns))
	}
	for _, n := range ns {
		if n.Recipient != "alice@example.net" || n.InvoiceID == nil || *n.InvoiceID != inv.ID || n.SentAt == nil || n.Attempts != 1 {
			t.Errorf("notification %+v", n)
		}
	}
}

// TestInvoiceEmailTenantSender sends from the tenant's own sender when its
// settings name one, through the server's relay.
func TestInvoiceEmailTenantSender(t *testing.T) {
	e := newEnv(t)
	srv := newSMTPServer(t)
	inv := e.invoice("10.00")
	if err := e.client.Tenant.UpdateOneID(e.tenantID).SetSettings(map[string]any{
		"mail": map[string]any{"name": "Acme Billing", "address": "billing@acme-isp.example"},
	}).Exec(tenancy.Bypass(e.ctx)); err != nil { // updateTenantSettings does this over the API
		t.Fatal(err)
	}
	mailer := &notify.Mailer{Config: notify.SMTPConfig{Host: "127.0.0.1", Port: srv.port(), From: "noreply@platform.example"}}
	h := &workers.InvoiceEmailHandler{Client: e.client, Mailer: mailer, Logger: e.logger()}
	args, _ := jobs.ToMap(jobs.SendInvoiceEmailArgs{TenantID: e.tenantID, InvoiceID: inv.ID, EmailKind: "new"})
	if err := h.Send(&work.Job{Name: jobs.SendInvoiceEmail, ID: "sender", Args: args}); err != nil {
		t.Fatal(err)
	}
	msgs := srv.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	if m := msgs[0]; m.from != "FROM:<billing@acme-isp.example>" || !strings.Contains(m.data, "From: \"Acme Billing\" <billing@acme-isp.example>") &&
		!strings.Contains(m.data, "From: Acme Billing <billing@acme-isp.example>") {
		t.Errorf("envelope %q, message:\n%s", m.from, m.data)
	}
}

// TestInvoiceEmailSTARTTLS sends through a relay that requires STARTTLS.
func TestInvoiceEmailSTARTTLS(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS() // only for its self-signed certificate (valid for 127.0.0.1)
	defer ts.Close()
	srv := newSMTPServerTLS(t, &tls.Config{Certificates: ts.TLS.Certificates})
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	mailer := &notify.Mailer{Config: notify.SMTPConfig{Host: "127.0.0.1", Port: srv.port(), From: "billing@acme.example",
		Username: "mailer", Password: "s3cret", StartTLS: true, TLS: &tls.Config{RootCAs: roots}}}
	h := &workers.InvoiceEmailHandler{Client: e.client, Mailer: mailer, Logger: e.logger()}
	inv := e.invoice("9.99")
	args, _ := jobs.ToMap(jobs.SendInvoiceEmailArgs{TenantID: e.tenantID, InvoiceID: inv.ID, EmailKind: "reminder"})
	if err := h.Send(&work.Job{Name: jobs.SendInvoiceEmail, ID: "1", Args: args}); err != nil {
		t.Fatal(err)
	}
	if msgs := srv.messages(); len(msgs) != 1 || !strings.Contains(msgs[0].data, "reminder") {
		t.Fatalf("messages: %+v", msgs)
	}
	// Without STARTTLS support on the relay the mailer refuses to send in clear.
	plain := newSMTPServer(t)
	mailer.Config.Port = plain.port()
	inv2 := e.invoice("9.99")
	args, _ = jobs.ToMap(jobs.SendInvoiceEmailArgs{TenantID: e.tenantID, InvoiceID: inv2.ID, EmailKind: "new"})
	if err := h.Send(&work.Job{Name: jobs.SendInvoiceEmail, ID: "2", Args: args}); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("want a STARTTLS error, got %v", err)
	}
	if len(plain.messages()) != 0 {
		t.Fatal("sent in clear")
	}
}

// smsProvider plays a generic HTTP SMS gateway: it accepts messages, refuses
// one number for good (400) and is unavailable (503) for another the first
// time it is asked.
type smsProvider struct {
	mu       sync.Mutex
	received map[string]int
	flaky    map[string]bool
	srv      *httptest.Server
}

func newSMSProvider(t *testing.T) *smsProvider {
	p := &smsProvider{received: map[string]int{}, flaky: map[string]bool{"+8801700000003": true}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ To, Message, Sender string }
		json.NewDecoder(r.Body).Decode(&in)
		if r.Header.Get("Authorization") != "Bearer sms-token" || in.Sender != "ACME" || in.Message == "" {
			w.WriteHeader(401)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		switch {
		case in.To == "invalid":
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid number"}`)
		case p.flaky[in.To]:
			p.flaky[in.To] = false
			w.WriteHeader(503)
		default:
			p.received[in.To]++
			fmt.Fprintf(w, `{"id":"msg-%s-%d"}`, in.To, p.received[in.To])
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func TestSendBulkSms(t *testing.T) {
	e := newEnv(t)
	prov := newSMSProvider(t)
	e.client.Tenant.UpdateOneID(e.tenantID).SetSettings(map[string]any{
		"sms": map[string]any{"url": prov.srv.URL, "token": "sms-token", "sender": "ACME"},
	}).ExecX(tenancy.Bypass(e.ctx))
	// Subscribers: alice (active, from newEnv) and two more.
	e.client.NetworkUser.Create().SetUsername("bob").SetPhone("+8801700000002").SaveX(e.ctx)
	e.client.NetworkUser.Create().SetUsername("carol").SetPhone("+8801700000003").SaveX(e.ctx)
	e.client.NetworkUser.Create().SetUsername("dave").SetPhone("+8801700000004").SetStatus(networkuser.StatusSUSPENDED).SaveX(e.ctx)

	active := networkuser.StatusACTIVE
	batch, n, err := notify.RequestBulkSms(e.ctx, e.client, notify.BulkSmsRequest{Message: "Maintenance tonight", Status: &active})
	if err != nil || n != 3 {
		t.Fatalf("filter request: %d, %v", n, err)
	}
	list, n2, err := notify.RequestBulkSms(e.ctx, e.client, notify.BulkSmsRequest{Message: "Hello", Phones: []string{"+8801700000009", "invalid", "+8801700000009"}})
	if err != nil || n2 != 2 {
		t.Fatalf("list request: %d, %v", n2, err)
	}
	o := e.options()
	o.SMSBatchSize, o.SMSRate = 2, 1000
	e.start(o)
	eventually(t, 20*time.Second, "every message settled", func() bool {
		return e.client.Notification.Query().Where(notification.StatusEQ(notification.StatusQUEUED)).CountX(e.ctx) == 0
	})
	// carol's first attempt met a 503: the retry sent hers and nobody else's again.
	prov.mu.Lock()
	for _, to := range []string{"+8801700000001", "+8801700000002", "+8801700000003", "+8801700000009"} {
		if prov.received[to] != 1 {
			t.Errorf("%s received %d messages, want 1", to, prov.received[to])
		}
	}
	if prov.received["+8801700000004"] != 0 {
		t.Error("a suspended subscriber got the message")
	}
	prov.mu.Unlock()
	sent := e.client.Notification.Query().Where(notification.BatchID(batch), notification.StatusEQ(notification.StatusSENT)).CountX(e.ctx)
	if sent != 3 {
		t.Errorf("batch: %d sent, want 3", sent)
	}
	bad := e.client.Notification.Query().Where(notification.BatchID(list), notification.Recipient("invalid")).OnlyX(e.ctx)
	if bad.Status != notification.StatusFAILED || bad.Error == nil {
		t.Errorf("invalid number: %+v", bad)
	}
	// Running the batch again sends nothing.
	h := &workers.BulkSmsHandler{Client: e.client, HTTP: http.DefaultClient, BatchSize: 2, Rate: 1000, Logger: e.logger()}
	args, _ := jobs.ToMap(jobs.SendBulkSmsArgs{TenantID: e.tenantID, BatchID: batch})
	if err := h.Send(&work.Job{Name: jobs.SendBulkSms, ID: "again", Args: args}); err != nil {
		t.Fatal(err)
	}
	prov.mu.Lock()
	defer prov.mu.Unlock()
	if prov.received["+8801700000001"] != 1 {
		t.Error("a second run resent")
	}
}

// TestStaffInvitationThroughOutbox: inviting a staff user with the mail relay
// down succeeds (nothing is sent inside the transaction) and leaves a
// SendStaffEmail job; the job, once the relay answers, sends a link whose
// token is the one the database holds the hash of.
func TestStaffInvitationThroughOutbox(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // the relay is down
	a := &auth.Service{Client: e.client, Logger: e.logger(),
		Mailer: &notify.Mailer{Config: notify.SMTPConfig{Host: "127.0.0.1", Port: downPort, From: "noreply@platform.example"}}}
	tx, err := e.client.Tx(e.ctx)
	u, err := a.InviteUser(ent.NewTxContext(e.ctx, tx), auth.InviteInput{Name: "Nia", Email: "nia@acme.example"})
	if err != nil {
		tx.Rollback()
		t.Fatalf("invite with the relay down: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	rows := e.client.OutboxJob.Query().Where(outboxjob.JobName(jobs.SendStaffEmail)).AllX(tenancy.Bypass(e.ctx))
	if len(rows) != 1 {
		t.Fatalf("%d SendStaffEmail outbox rows, want 1", len(rows))
	}

	srv := newSMTPServer(t)
	a.Mailer = &notify.Mailer{Config: notify.SMTPConfig{Host: "127.0.0.1", Port: srv.port(), From: "noreply@platform.example"}}
	h := &workers.StaffEmailHandler{Auth: a}
	job := &work.Job{Name: jobs.SendStaffEmail, ID: "invite", Args: rows[0].Args}
	if err := h.Send(job); err != nil {
		t.Fatal(err)
	}
	msgs := srv.messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].data, "nia@acme.example") {
		t.Fatalf("%d messages: %+v", len(msgs), msgs)
	}
	m := regexp.MustCompile(`isg_[A-Za-z0-9_-]+`).FindString(strings.NewReplacer("=\r\n", "", "=\n", "", "=3D", "=").Replace(msgs[0].data))
	stored := e.client.User.GetX(e.ctx, u.ID)
	if m == "" || stored.SetupTokenHash == nil || !bytes.Equal(*stored.SetupTokenHash, auth.HashToken(m)) {
		t.Fatalf("the e-mailed token %q is not the one stored", m)
	}
}

// TestInvoiceEmailTwoJobsOneMail: two jobs for the same e-mail (a duplicate
// enqueue, an outbox row reopened) while the first is still sending: the
// second waits for the first's claim and then finds the e-mail SENT, so the
// relay gets it once.
func TestInvoiceEmailTwoJobsOneMail(t *testing.T) {
	e := newEnv(t)
	srv := newSMTPServer(t)
	srv.hold, srv.data = make(chan struct{}), make(chan struct{}, 2)
	inv := e.invoice("25.50")
	mailer := &notify.Mailer{Config: notify.SMTPConfig{Host: "127.0.0.1", Port: srv.port(), From: "billing@acme.example"}}
	h := &workers.InvoiceEmailHandler{Client: e.client, Mailer: mailer, Logger: e.logger()}
	args, _ := jobs.ToMap(jobs.SendInvoiceEmailArgs{TenantID: e.tenantID, InvoiceID: inv.ID, EmailKind: "overdue"})
	done := make(chan error, 2)
	run := func(id string) { done <- h.Send(&work.Job{Name: jobs.SendInvoiceEmail, ID: id, Args: args}) }
	go run("first")
	<-srv.data // the first job is mid-send, its claim taken
	go run("second")
	// Give the second job time to reach the relay if it wrongly claims the
	// row too (with the row locked it waits instead).
	select {
	case <-srv.data:
		close(srv.hold)
		t.Fatal("a second job sent the e-mail while the first was sending it")
	case <-time.After(time.Second):
	}
	close(srv.hold)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.messages()); n != 1 {
		t.Fatalf("%d messages delivered, want 1", n)
	}
	n := e.client.Notification.Query().OnlyX(e.ctx)
	if n.Status != notification.StatusSENT || n.Attempts != 1 {
		t.Fatalf("notification %s after %d attempts", n.Status, n.Attempts)
	}
}

// TestBulkSmsTwoRunsOneMessage: two runs of one batch (a duplicate job, an
// outbox row reopened) never send a message twice. The first run is held in
// the provider mid-send; the second reads the same QUEUED rows and must wait
// for the first's claim instead of claiming the row again (a compare-and-set
// on attempts let it through: it read the row after the first claim).
func TestBulkSmsTwoRunsOneMessage(t *testing.T) {
	e := newEnv(t)
	var (
		mu       sync.Mutex
		received = map[string]int{}
		first    = make(chan struct{})
		hold     = make(chan struct{})
		once     sync.Once
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ To string }
		json.NewDecoder(r.Body).Decode(&in)
		mu.Lock()
		received[in.To]++
		n := received[in.To]
		mu.Unlock()
		held := false
		once.Do(func() { held = true })
		if held {
			close(first)
			<-hold
		}
		fmt.Fprintf(w, `{"id":"msg-%s-%d"}`, in.To, n)
	}))
	t.Cleanup(srv.Close)
	e.client.Tenant.UpdateOneID(e.tenantID).SetSettings(map[string]any{
		"sms": map[string]any{"url": srv.URL, "token": "sms-token", "sender": "ACME"},
	}).ExecX(tenancy.Bypass(e.ctx))
	e.client.NetworkUser.Create().SetUsername("bob").SetPhone("+8801700000002").SaveX(e.ctx)
	active := networkuser.StatusACTIVE
	batch, n, err := notify.RequestBulkSms(e.ctx, e.client, notify.BulkSmsRequest{Message: "Maintenance tonight", Status: &active})
	if err != nil || n != 2 {
		t.Fatalf("request: %d, %v", n, err)
	}
	h := &workers.BulkSmsHandler{Client: e.client, HTTP: http.DefaultClient, BatchSize: 10, Rate: 1000, Logger: e.logger()}
	args, _ := jobs.ToMap(jobs.SendBulkSmsArgs{TenantID: e.tenantID, BatchID: batch})
	done := make(chan error, 2)
	run := func(id string) { done <- h.Send(&work.Job{Name: jobs.SendBulkSms, ID: id, Args: args}) }
	go run("first")
	<-first // the first run is mid-send, its claim taken
	go run("second")
	// Give the second run time to send the held message again if it wrongly
	// claims the row too (with the row locked it waits instead).
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		twice := false
		for _, c := range received {
			twice = twice || c > 1
		}
		mu.Unlock()
		if twice {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(hold)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(received) != 2 {
		t.Fatalf("messages went to %v, want 2 recipients", received)
	}
	for to, c := range received {
		if c != 1 {
			t.Errorf("%s received %d messages, want 1", to, c)
		}
	}
	for _, row := range e.client.Notification.Query().Where(notification.BatchID(batch)).AllX(e.ctx) {
		if row.Status != notification.StatusSENT || row.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts, want SENT after 1", row.Recipient, row.Status, row.Attempts)
		}
	}
}
