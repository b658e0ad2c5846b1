package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/testenv"
)

// mailbox is a minimal SMTP server (EHLO, MAIL, RCPT, DATA, QUIT) that keeps
// the messages it receives: the relay staff invitations go through.
type mailbox struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []string
}

func newMailbox(t *testing.T) *mailbox {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb := &mailbox{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go mb.serve(c)
		}
	}()
	return mb
}

func (mb *mailbox) port() string { return strconv.Itoa(mb.ln.Addr().(*net.TCPAddr).Port) }

func (mb *mailbox) serve(c net.Conn) {
	defer c.Close()
	tp := textproto.NewConn(c)
	tp.PrintfLine("220 test ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			tp.PrintfLine("250 test greets you")
		case "MAIL", "RCPT":
			tp.PrintfLine("250 ok")
		case "DATA":
			tp.PrintfLine("354 go ahead")
			b, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			mb.mu.Lock()
			mb.msgs = append(mb.msgs, string(b))
			mb.mu.Unlock()
			tp.PrintfLine("250 queued")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("502 not implemented")
		}
	}
}

var tokenRE = regexp.MustCompile(`isg_[A-Za-z0-9_-]{43}`)

// last returns the newest message to addr and the one-time token in it.
// last returns the latest e-mail to addr among the first n the mailbox
// received, waiting for the n-th (staff e-mail is sent by a job after the
// mutation commits).
func (mb *mailbox) last(t *testing.T, addr string, n int) (msg, token string) {
	t.Helper()
	for i := 0; i < 600; i++ {
		mb.mu.Lock()
		got := len(mb.msgs)
		mb.mu.Unlock()
		if got >= n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if len(mb.msgs) != n {
		t.Fatalf("%d e-mails received, want %d", len(mb.msgs), n)
	}
	for i := len(mb.msgs) - 1; i >= 0; i-- {
		// Undo quoted-printable: soft line breaks and the escaped "=".
		m := strings.NewReplacer("=\r\n", "", "=\n", "", "=3D", "=").Replace(mb.msgs[i])
		if strings.Contains(m, "To: "+addr) {
			return m, tokenRE.FindString(m)
		}
	}
	t.Fatalf("no e-mail to %s among %d", addr, len(mb.msgs))
	return "", ""
}

// operatorPost posts q with a platform operator's key and no tenant header.
func operatorPost(t *testing.T, base, key, q string, vars map[string]any) gqlResponse {
	t.Helper()
	return post(t, base, key, q, vars)
}

func TestTenantsAndStaff(t *testing.T) {
	key := "isop_" + strings.Repeat("cd34", 16)
	h := sha256.Sum256([]byte(key))
	mb := newMailbox(t)
	_, base, _, pool := securityEnv(t, map[string]string{
		"ISPGRAPH_OPERATOR_KEYS":   "ops:" + hex.EncodeToString(h[:]),
		"ISPGRAPH_SMTP_HOST":       "127.0.0.1",
		"ISPGRAPH_SMTP_PORT":       mb.port(),
		"ISPGRAPH_SMTP_STARTTLS":   "false",
		"ISPGRAPH_STAFF_SETUP_URL": "https://staff.example/setup",
	})
	t1Admin := login(t, base, "t1", "admin@t1.example", "bench-pass-1")
	const createTenant = `mutation($in: CreateTenantInput!) { createTenant(input: $in) { tenant { id slug status currency currencyMinorUnit timezone } admin { id email role { name } } } }`
	acmeIn := map[string]any{"name": "Acme ISP", "slug": "acme", "domain": "billing.acme.example", "timezone": "Asia/Dhaka", "currency": "BDT",
		"adminName": "Ada Admin", "adminEmail": "ada@acme.example", "adminPassword": "acme-pass-01"}

	// Only platform operators manage tenants.
	if r := post(t, base, t1Admin, createTenant, map[string]any{"in": acmeIn}); r.code() != "FORBIDDEN" {
		t.Fatalf("tenant admin createTenant: %s %+v", r.Data, r.Errors)
	}
	if r := post(t, base, t1Admin, `{ tenants(first: 10) { totalCount } }`, nil); r.code() != "FORBIDDEN" {
		t.Fatalf("tenant admin tenants: %s %+v", r.Data, r.Errors)
	}
	if r := operatorPost(t, base, key, `{ viewer { kind } }`, nil); r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, auth.OperatorTenantHeader) {
		t.Fatalf("operator without a tenant on a tenant field: %+v", r.Errors)
	}
	var created struct {
		CreateTenant struct {
			Tenant struct {
				ID, Slug, Status, Currency, Timezone string
				CurrencyMinorUnit                    int
			}
			Admin struct {
				ID, Email string
				Role      struct{ Name string }
			}
		}
	}
	data(t, operatorPost(t, base, key, createTenant, map[string]any{"in": acmeIn}), &created)
	acme := created.CreateTenant
	if acme.Tenant.Status != "ACTIVE" || acme.Tenant.Currency != "BDT" || acme.Tenant.CurrencyMinorUnit != 2 || acme.Admin.Role.Name != "admin" {
		t.Fatalf("created: %+v", acme)
	}
	if r := operatorPost(t, base, key, createTenant, map[string]any{"in": acmeIn}); r.code() != "CONFLICT" {
		t.Fatalf("second acme: %+v", r.Errors)
	}
	var roles int
	pool.QueryRow(context.Background(), `SELECT count(*) FROM roles r JOIN tenants t ON t.id = r.tenant_id WHERE t.slug = 'acme' AND r.builtin`).Scan(&roles)
	if roles != 5 {
		t.Fatalf("acme has %d default roles, want 5", roles)
	}
	var list struct {
		Tenants struct {
			TotalCount int
			Edges      []struct{ Node struct{ Slug string } }
		}
	}
	data(t, operatorPost(t, base, key, `{ tenants(first: 10) { totalCount edges { node { slug } } } }`, nil), &list)
	if list.Tenants.TotalCount != 3 || list.Tenants.Edges[0].Node.Slug != "acme" {
		t.Fatalf("tenants: %+v", list.Tenants)
	}

	admin := login(t, base, "acme", "ada@acme.example", "acme-pass-01")

	// Settings: validated, visible, and another tenant's untouched.
	const settings = `mutation($in: TenantSettingsInput!) { updateTenantSettings(input: $in) { currency currencyMinorUnit timezone taxes { name rateBp inclusive } smsProvider { url sender tokenSet } mailSender { name address } } }`
	for _, bad := range []map[string]any{{"timezone": "Mars/Olympus"}, {"currency": "XYZ"},
		{"taxes": []map[string]any{{"name": "VAT", "rateBp": 20000, "inclusive": false}}}} {
		if r := post(t, base, admin, settings, map[string]any{"in": bad}); r.code() != "BAD_USER_INPUT" {
			t.Errorf("settings %v: %s %+v", bad, r.Data, r.Errors)
		}
	}
	var st struct {
		UpdateTenantSettings struct {
			Currency          string
			CurrencyMinorUnit int
			Taxes             []struct {
				Name      string
				RateBp    int
				Inclusive bool
			}
			SmsProvider struct {
				URL      string
				TokenSet bool
			}
			MailSender struct{ Name, Address string }
		}
	}
	data(t, post(t, base, admin, settings, map[string]any{"in": map[string]any{
		"currency": "jpy", "timezone": "Asia/Tokyo",
		"taxes":       []map[string]any{{"name": "VAT", "rateBp": 1500, "inclusive": true}, {"name": "Levy", "rateBp": 100, "inclusive": false}},
		"smsProvider": map[string]any{"url": "https://sms.acme.example/send", "token": "sms-token-1", "sender": "ACME"},
		"mailSender":  map[string]any{"name": "Acme Billing", "address": "billing@acme.example"},
	}}), &st)
	s := st.UpdateTenantSettings
	if s.Currency != "JPY" || s.CurrencyMinorUnit != 0 || len(s.Taxes) != 2 || !s.Taxes[0].Inclusive || !s.SmsProvider.TokenSet || s.MailSender.Address != "billing@acme.example" {
		t.Fatalf("settings: %+v", s)
	}
	if r := mustData(t, base, t1Admin, `{ viewer { tenant { currency timezone smsProvider { url } } } }`, nil); strings.Contains(string(r), "JPY") || strings.Contains(string(r), "acme") {
		t.Fatalf("t1 sees acme's settings: %s", r)
	}

	// Phone calling code and suspension mode (docs/mikrotik.md).
	const routerSettings = `mutation($in: TenantSettingsInput!) { updateTenantSettings(input: $in) { phoneCountryCode suspensionMode } }`
	for _, bad := range []map[string]any{{"phoneCountryCode": "0x"}, {"phoneCountryCode": "8801"}} {
		if r := post(t, base, admin, routerSettings, map[string]any{"in": bad}); r.code() != "BAD_USER_INPUT" {
			t.Errorf("settings %v: %s %+v", bad, r.Data, r.Errors)
		}
	}
	var rs struct {
		UpdateTenantSettings struct {
			PhoneCountryCode *string
			SuspensionMode   string
		}
	}
	data(t, post(t, base, admin, routerSettings, map[string]any{"in": map[string]any{"phoneCountryCode": "+880", "suspensionMode": "ADDRESS_LIST"}}), &rs)
	if p := rs.UpdateTenantSettings.PhoneCountryCode; p == nil || *p != "880" || rs.UpdateTenantSettings.SuspensionMode != "ADDRESS_LIST" {
		t.Fatalf("router settings: %+v", rs.UpdateTenantSettings)
	}
	if r := mustData(t, base, t1Admin, `{ viewer { tenant { suspensionMode } } }`, nil); !strings.Contains(string(r), `"DISABLE"`) {
		t.Fatalf("t1's suspension mode: %s", r)
	}

	// Invite a staff user: e-mail from the tenant's sender, one-time link.
	var opRole struct{ Roles []struct{ ID, Name string } }
	data(t, post(t, base, admin, `{ roles { id name } }`, nil), &opRole)
	var operatorRoleID string
	for _, r := range opRole.Roles {
		if r.Name == "operator" {
			operatorRoleID = r.ID
		}
	}
	const invite = `mutation($in: InviteUserInput!) { inviteUser(input: $in) { id email active setupPending role { name } } }`
	// Another tenant's admin cannot hand out acme's role.
	if r := post(t, base, t1Admin, invite, map[string]any{"in": map[string]any{"name": "X", "email": "x@t1.example", "roleID": operatorRoleID}}); r.code() != "NOT_FOUND" {
		t.Fatalf("t1 inviting with acme's role: %+v", r.Errors)
	}
	var inv struct {
		InviteUser struct {
			ID, Email            string
			Active, SetupPending bool
		}
	}
	data(t, post(t, base, admin, invite, map[string]any{"in": map[string]any{"name": "Olu Operator", "email": "Olu@Acme.example", "roleID": operatorRoleID}}), &inv)
	if inv.InviteUser.Active || !inv.InviteUser.SetupPending || inv.InviteUser.Email != "olu@acme.example" {
		t.Fatalf("invited: %+v", inv.InviteUser)
	}
	msg, token := mb.last(t, "olu@acme.example", 1)
	if token == "" || !strings.Contains(msg, "https://staff.example/setup?token="+token) || !strings.Contains(msg, "Acme Billing") {
		t.Fatalf("invitation e-mail:\n%s", msg)
	}
	const accept = `mutation($t: String!, $p: String!) { acceptInvite(input: {token: $t, password: $p}) { token } }`
	if r := post(t, base, "", accept, map[string]any{"t": token, "p": "short"}); r.code() != "BAD_USER_INPUT" {
		t.Fatalf("short password: %+v", r.Errors)
	}
	var acc struct{ AcceptInvite struct{ Token string } }
	data(t, post(t, base, "", accept, map[string]any{"t": token, "p": "olu-pass-0001"}), &acc)
	if r := post(t, base, "", accept, map[string]any{"t": token, "p": "olu-pass-0002"}); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("the link worked twice: %+v", r.Errors)
	}
	var me struct {
		Viewer struct {
			Role        string
			Permissions []string
		}
	}
	data(t, post(t, base, acc.AcceptInvite.Token, `{ viewer { role permissions } }`, nil), &me)
	if me.Viewer.Role != "operator" || strings.Contains(strings.Join(me.Viewer.Permissions, ","), "staff:manage") {
		t.Fatalf("invited user: %+v", me.Viewer)
	}
	olu := login(t, base, "acme", "olu@acme.example", "olu-pass-0001")

	// Another tenant's admin reaches none of acme's staff.
	for _, q := range []string{
		`mutation($id: ID!) { updateUser(id: $id, input: {active: false}) { id } }`,
		`mutation($id: ID!) { resetUserPassword(id: $id) { id } }`,
	} {
		if r := post(t, base, t1Admin, q, map[string]any{"id": inv.InviteUser.ID}); r.code() != "NOT_FOUND" {
			t.Errorf("t1 on acme's user: %s %+v", q, r.Errors)
		}
	}
	// Staff without staff:manage cannot manage staff; nobody disables themselves.
	if r := post(t, base, olu, `mutation($id: ID!) { updateUser(id: $id, input: {active: false}) { id } }`, map[string]any{"id": acme.Admin.ID}); r.code() != "FORBIDDEN" {
		t.Fatalf("operator disabling the admin: %+v", r.Errors)
	}
	if r := post(t, base, admin, `mutation($id: ID!) { updateUser(id: $id, input: {active: false}) { id } }`, map[string]any{"id": acme.Admin.ID}); r.code() != "FORBIDDEN" {
		t.Fatalf("admin disabling itself: %+v", r.Errors)
	}

	// Password reset: the old password and sessions end, the link sets a new one.
	mustData(t, base, admin, `mutation($id: ID!) { resetUserPassword(id: $id) { id setupPending } }`, map[string]any{"id": inv.InviteUser.ID})
	if r := post(t, base, olu, `{ viewer { kind } }`, nil); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("session after reset: %+v", r.Errors)
	}
	if r := post(t, base, "", `mutation { login(input: {tenant: "acme", email: "olu@acme.example", password: "olu-pass-0001"}) { token } }`, nil); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("old password after reset: %+v", r.Errors)
	}
	_, token = mb.last(t, "olu@acme.example", 2)
	data(t, post(t, base, "", accept, map[string]any{"t": token, "p": "olu-pass-0003"}), &acc)
	olu = login(t, base, "acme", "olu@acme.example", "olu-pass-0003")

	// Own password.
	const change = `mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) }`
	if r := post(t, base, olu, change, map[string]any{"c": "wrong-pass-99", "n": "olu-pass-0004"}); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("change with a wrong password: %+v", r.Errors)
	}
	mustData(t, base, olu, change, map[string]any{"c": "olu-pass-0003", "n": "olu-pass-0004"})
	olu = login(t, base, "acme", "olu@acme.example", "olu-pass-0004")

	// Disabling ends the user's sessions at once.
	mustData(t, base, admin, `mutation($id: ID!) { updateUser(id: $id, input: {active: false}) { active } }`, map[string]any{"id": inv.InviteUser.ID})
	if r := post(t, base, olu, `{ viewer { kind } }`, nil); r.code() != "UNAUTHENTICATED" && r.code() != "FORBIDDEN" {
		t.Fatalf("disabled user's session: %+v", r.Errors)
	}

	// Suspension refuses the tenant's callers with a clear message; t1 is unaffected.
	if r := post(t, base, t1Admin, `mutation($id: ID!) { suspendTenant(id: $id) { status } }`, map[string]any{"id": acme.Tenant.ID}); r.code() != "FORBIDDEN" {
		t.Fatalf("tenant admin suspending a tenant: %+v", r.Errors)
	}
	mustData(t, base, key, `mutation($id: ID!) { suspendTenant(id: $id) { status } }`, map[string]any{"id": acme.Tenant.ID})
	r := post(t, base, admin, `{ viewer { kind } }`, nil)
	if r.code() != "FORBIDDEN" || !strings.Contains(r.Errors[0].Message, "suspended") {
		t.Fatalf("suspended tenant's admin: %+v", r.Errors)
	}
	if r := post(t, base, "", `mutation { login(input: {tenant: "acme", email: "ada@acme.example", password: "acme-pass-01"}) { token } }`, nil); r.code() != "FORBIDDEN" {
		t.Fatalf("login to a suspended tenant: %+v", r.Errors)
	}
	mustData(t, base, t1Admin, `{ viewer { kind } }`, nil)
	mustData(t, base, key, `mutation($id: ID!) { updateTenant(id: $id, input: {status: ACTIVE, name: "Acme Networks"}) { status name } }`, map[string]any{"id": acme.Tenant.ID})
	mustData(t, base, admin, `{ viewer { kind } }`, nil)

	// Everything above is in acme's audit log.
	rows, err := pool.Query(context.Background(), `SELECT a.action FROM audit_logs a JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = 'acme'`)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for rows.Next() {
		var a string
		rows.Scan(&a)
		actions[a]++
	}
	for _, want := range []string{"tenant.created", "tenant.suspended", "tenant.updated", "invite.accepted", "mutation.inviteUser",
		"mutation.updateUser", "mutation.resetUserPassword", "mutation.changePassword", "mutation.updateTenantSettings"} {
		if actions[want] == 0 {
			b, _ := json.Marshal(actions)
			t.Errorf("no %s in acme's audit log: %s", want, b)
		}
	}
	_ = http.StatusOK
}

// TestTenantCommand runs ispgraph tenant create, list, suspend and activate
// against Postgres, and logs in to the tenant it created.
func TestTenantCommand(t *testing.T) {
	dbURL := testenv.PostgresURL(t)
	redisURL, prefix := testenv.RedisURL(t)
	env := map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redisURL, "ISPGRAPH_SECRET_KEY": strings.Repeat("ef", 32),
		"ISPGRAPH_JOB_NAMESPACE": strings.TrimSuffix(prefix, ":"), "ISPGRAPH_LOG_LEVEL": "error"}
	getenv := func(k string) string { return env[k] }
	cli := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, getenv, &out, &errb)
		return code, out.String() + errb.String()
	}
	create := []string{"tenant", "create", "-name", "Beta Net", "-slug", "beta", "-domain", "beta.example", "-currency", "EUR",
		"-admin-name", "Bea", "-admin-email", "bea@beta.example"}
	if code, out := cli(create...); code != 1 || !strings.Contains(out, envAdminPassword) {
		t.Fatalf("create without a password: %d %s", code, out)
	}
	env[envAdminPassword] = "beta-pass-001"
	if code, out := cli(create...); code != 0 || !strings.Contains(out, `created tenant "beta"`) {
		t.Fatalf("create: %d %s", code, out)
	}
	if code, out := cli("tenant", "list"); code != 0 || !strings.Contains(out, "beta") || !strings.Contains(out, "EUR") {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, out := cli("tenant", "suspend", "beta"); code != 0 || !strings.Contains(out, "SUSPENDED") {
		t.Fatalf("suspend: %d %s", code, out)
	}
	_, base := startServer(t, map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": redisURL, "ISPGRAPH_SECRET_KEY": env["ISPGRAPH_SECRET_KEY"],
		"ISPGRAPH_JOB_NAMESPACE": env["ISPGRAPH_JOB_NAMESPACE"], "ISPGRAPH_WORKERS": "false"})
	if r := post(t, base, "", `mutation { login(input: {tenant: "beta", email: "bea@beta.example", password: "beta-pass-001"}) { token } }`, nil); r.code() != "FORBIDDEN" {
		t.Fatalf("login to a suspended tenant: %+v", r.Errors)
	}
	if code, out := cli("tenant", "activate", "beta"); code != 0 || !strings.Contains(out, "ACTIVE") {
		t.Fatalf("activate: %d %s", code, out)
	}
	login(t, base, "beta", "bea@beta.example", "beta-pass-001")
}
