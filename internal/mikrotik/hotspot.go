package mikrotik

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/hotspotuser"
	"github.com/ispgraph/ispgraph/ent/notification"
	"github.com/ispgraph/ispgraph/ent/router"
	"github.com/ispgraph/ispgraph/ent/servicepackage"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// OTP rules of hotspot sign-up.
const (
	OTPDigits      = 6
	OTPTTL         = 10 * time.Minute
	OTPResendAfter = time.Minute
	OTPMaxAttempts = 5
	// OTPPerPhonePerHour and OTPPerAddressPerHour bound sign-up code
	// requests (each an SMS the provider pays for) per phone number and per
	// client address.
	OTPPerPhonePerHour   = 5
	OTPPerAddressPerHour = 20
)

// Tenant settings (Tenant.settings JSON) the router and hotspot code reads.
const (
	// SettingPhoneCountryCode is the country calling code ("880") for phone
	// numbers written without one.
	SettingPhoneCountryCode = "phone_country_code"
	// SettingSuspensionMode is DISABLE (default) or ADDRESS_LIST.
	SettingSuspensionMode = "suspension_mode"
)

// Suspension modes (SettingSuspensionMode).
const (
	SuspendDisable     = "DISABLE"
	SuspendAddressList = "ADDRESS_LIST"
)

// currencyCountryCodes gives a tenant without SettingPhoneCountryCode a
// calling code from its currency, where the currency belongs to one country.
var currencyCountryCodes = map[string]string{"BDT": "880", "INR": "91", "PKR": "92", "NPR": "977", "LKR": "94",
	"MMK": "95", "IDR": "62", "PHP": "63", "NGN": "234", "KES": "254", "GBP": "44"}

// PhoneCountryCode is the calling code a tenant's phone numbers default to:
// its setting, else the one its currency implies, else "" (numbers must then
// carry their own).
func PhoneCountryCode(t *ent.Tenant) string {
	if v, ok := t.Settings[SettingPhoneCountryCode].(string); ok && v != "" {
		return v
	}
	return currencyCountryCodes[strings.ToUpper(t.Currency)]
}

// CheckPhoneCountryCode accepts "" or 1 to 3 digits, e.g. "880" or "+880".
func CheckPhoneCountryCode(cc string) (string, error) {
	cc = strings.TrimPrefix(strings.TrimSpace(cc), "+")
	if len(cc) > 3 || strings.Trim(cc, "0123456789") != "" || strings.HasPrefix(cc, "0") {
		return "", apperr.E(apperr.BadUserInput, "phoneCountryCode must be 1 to 3 digits, e.g. \"880\"")
	}
	return cc, nil
}

// SuspensionModeOf is the tenant's suspension mode.
func SuspensionModeOf(t *ent.Tenant) string {
	if v, _ := t.Settings[SettingSuspensionMode].(string); v == SuspendAddressList {
		return v
	}
	return SuspendDisable
}

// OTPRequest is what requestHotspotOtp answers: when the code expires and
// when another may be asked for.
type OTPRequest struct {
	ExpiresAt   time.Time
	ResendAfter time.Time
}

// SignIn is what a verified hotspot user needs at the captive portal.
type SignIn struct {
	User     *ent.HotspotUser
	Username string
	Password string
}

// NormalizePhone writes a phone number in E.164 (+<country code><number>):
// spaces, dashes, dots and brackets go; "00" in front means "+"; a number
// without either gets countryCode, its national trunk "0" dropped
// ("01912-000777" with "880" is +8801912000777). Without a country code such
// a number is refused.
func NormalizePhone(p, countryCode string) (string, error) {
	p = strings.TrimSpace(p)
	var b strings.Builder
	plus := false
	for i, ch := range p {
		switch {
		case ch >= '0' && ch <= '9':
			b.WriteRune(ch)
		case ch == '+' && i == 0:
			plus = true
		case ch == ' ' || ch == '-' || ch == '(' || ch == ')' || ch == '.':
		default:
			return "", apperr.E(apperr.BadUserInput, "phone number %q has a character that is not a digit", p)
		}
	}
	digits := b.String()
	switch {
	case plus:
	case strings.HasPrefix(digits, "00"):
		digits = digits[2:]
	case countryCode == "":
		return "", apperr.E(apperr.BadUserInput, "write phone number %q with its country code, e.g. +880…", p)
	case strings.HasPrefix(digits, "0"):
		digits = countryCode + digits[1:]
	case strings.HasPrefix(digits, countryCode) && len(digits) >= len(countryCode)+8:
		// Already international, written without the "+".
	default:
		digits = countryCode + digits
	}
	if n := len(digits); n < 8 || n > 15 || strings.HasPrefix(digits, "0") {
		return "", apperr.E(apperr.BadUserInput, "phone number %q must be 8 to 15 digits with its country code", p)
	}
	return "+" + digits, nil
}

// TenantPhone normalises a phone number with the calling code of the tenant
// in ctx (staff creating or changing a hotspot user).
func (s *Service) TenantPhone(ctx context.Context, phone string) (string, error) {
	t, err := s.client(ctx).Tenant.Get(ctx, viewer.FromContext(ctx).TenantID)
	if err != nil {
		return "", fmt.Errorf("mikrotik: phone: %w", err)
	}
	return NormalizePhone(phone, PhoneCountryCode(t))
}

func otpHash(tenantID int, phone, code string) string {
	h := sha256.Sum256([]byte(strconv.Itoa(tenantID) + "|" + phone + "|" + code))
	return hex.EncodeToString(h[:])
}

func randomDigits(n int) (string, error) {
	var b strings.Builder
	for i := 0; i < n; i++ {
		d, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			return "", err
		}
		b.WriteByte(byte('0' + d.Int64()))
	}
	return b.String(), nil
}

func randomPassword() (string, error) {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	var b strings.Builder
	for i := 0; i < 10; i++ {
		d, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b.WriteByte(alphabet[d.Int64()])
	}
	return b.String(), nil
}

// RequestOTP asks for a sign-up code for phone, for the tenant in ctx (the
// caller resolved it from the Host header or the tenant argument); address is
// the client's. A new phone becomes a pending hotspot user of packageID; a
// known one keeps its package unless another is given. Requests are limited:
// one a minute and OTPPerPhonePerHour an hour per phone, OTPPerAddressPerHour
// per address. The code itself is not made here: the request is recorded
// (a request id, valid 10 minutes) with a Notification row and a
// SendHotspotOtp job in the outbox, in the caller's transaction, and the job
// makes the code when it sends the SMS (SendOTP), storing only its hash.
func (s *Service) RequestOTP(ctx context.Context, phone string, packageID *int, address string) (*OTPRequest, error) {
	v := viewer.FromContext(ctx)
	if !v.HasTenant() {
		return nil, apperr.E(apperr.BadUserInput, "tenant is required")
	}
	c := s.client(ctx)
	t, err := c.Tenant.Get(ctx, v.TenantID)
	if err != nil {
		return nil, fmt.Errorf("mikrotik: otp: %w", err)
	}
	if phone, err = NormalizePhone(phone, PhoneCountryCode(t)); err != nil {
		return nil, err
	}
	if err := s.otpLimit(ctx, "address", v.TenantID, address, OTPPerAddressPerHour); err != nil {
		return nil, err
	}
	now := s.now()
	u, err := c.HotspotUser.Query().Where(hotspotuser.Phone(phone)).Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return nil, fmt.Errorf("mikrotik: otp: %w", err)
	}
	if u != nil && u.OtpSentAt != nil && now.Sub(*u.OtpSentAt) < OTPResendAfter {
		wait := OTPResendAfter - now.Sub(*u.OtpSentAt)
		return nil, apperr.E(apperr.RateLimited, "a code was sent moments ago: wait %d seconds before asking again", int(wait.Seconds())+1)
	}
	if err := s.otpLimit(ctx, "phone", v.TenantID, phone, OTPPerPhonePerHour); err != nil {
		return nil, err
	}
	if packageID != nil {
		ok, err := c.ServicePackage.Query().Where(servicepackage.ID(*packageID), servicepackage.StatusEQ(servicepackage.StatusACTIVE)).Exist(ctx)
		if err != nil {
			return nil, fmt.Errorf("mikrotik: otp: %w", err)
		}
		if !ok {
			return nil, apperr.E(apperr.BadUserInput, "package not found or not on sale: pick another package")
		}
	}
	reqID, err := randomDigits(18)
	if err != nil {
		return nil, fmt.Errorf("mikrotik: otp: %w", err)
	}
	expires := now.Add(OTPTTL)
	if u == nil {
		if packageID == nil {
			return nil, apperr.E(apperr.BadUserInput, "choose a package to sign up")
		}
		pw, err := randomPassword()
		if err != nil {
			return nil, fmt.Errorf("mikrotik: otp: %w", err)
		}
		sealed, err := s.seal(pw)
		if err != nil {
			return nil, fmt.Errorf("mikrotik: otp: %w", err)
		}
		u, err = c.HotspotUser.Create().SetPhone(phone).SetUsername(strings.TrimPrefix(phone, "+")).
			SetPassword(sealed).SetPackageID(*packageID).SetStatus(hotspotuser.StatusPENDING).
			SetOtpRequestID(reqID).SetOtpExpiresAt(expires).SetOtpAttempts(0).SetOtpSentAt(now).
			Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("mikrotik: otp: %w", err)
		}
	} else {
		up := c.HotspotUser.UpdateOne(u).SetOtpRequestID(reqID).ClearOtpHash().SetOtpExpiresAt(expires).
			SetOtpAttempts(0).SetOtpSentAt(now)
		if packageID != nil {
			up.SetPackageID(*packageID)
		}
		if u, err = up.Save(ctx); err != nil {
			return nil, fmt.Errorf("mikrotik: otp: %w", err)
		}
	}
	n, err := c.Notification.Create().SetChannel(notification.ChannelSMS).SetKind("otp").SetRecipient(phone).
		SetBody(otpText("••••••")).SetBatchID("otp-" + reqID).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("mikrotik: otp: %w", err)
	}
	if err := outbox.Enqueue(ctx, c, jobs.SendHotspotOtpArgs{TenantID: v.TenantID, HotspotUserID: u.ID, NotificationID: n.ID, RequestID: reqID}); err != nil {
		return nil, err
	}
	return &OTPRequest{ExpiresAt: expires, ResendAfter: now.Add(OTPResendAfter)}, nil
}

// otpText is the sign-up SMS; the stored notification shows it masked.
func otpText(code string) string {
	return fmt.Sprintf("Your sign-in code is %s. It expires in %d minutes.", code, int(OTPTTL.Minutes()))
}

// otpLimit counts a sign-up code request against an hourly limit on key.
// Without an answer from Redis it refuses (every request costs an SMS).
func (s *Service) otpLimit(ctx context.Context, kind string, tenantID int, key string, limit int) error {
	if s.OTPLimiter == nil {
		return fmt.Errorf("mikrotik: otp: no limiter configured")
	}
	if key == "" {
		return nil
	}
	h := sha256.Sum256([]byte(key))
	res, err := s.OTPLimiter.Hit(ctx, fmt.Sprintf("hotspot-otp:%s:%d:%s", kind, tenantID, hex.EncodeToString(h[:12])), limit)
	if err != nil {
		return apperr.E(apperr.RateLimited, "sign-up codes are temporarily unavailable: try again in a minute")
	}
	if !res.Allowed {
		what := "this phone number"
		if kind == "address" {
			what = "your network address"
		}
		return apperr.E(apperr.RateLimited, "too many sign-up codes for %s: try again in %d minutes", what, int(res.RetryAfter.Minutes())+1)
	}
	return nil
}

// SMSSender sends one SMS through the tenant's provider and returns the
// provider's reference.
type SMSSender func(ctx context.Context, to, text string) (ref string, err error)

// SendOTP is the SendHotspotOtp job: it makes the sign-up code of request
// a.RequestID at the moment it is sent, stores only its hash, and sends it.
// The code is made only while the request is pending (not verified, not
// replaced by a newer request, not expired): a retried job after a code was
// used sends nothing, and a retry after a failed send makes a new code,
// which replaces the one that may not have arrived — a code is never sent
// twice. The notification row keeps the masked text.
func (s *Service) SendOTP(ctx context.Context, a jobs.SendHotspotOtpArgs, send SMSSender) error {
	ctx = viewer.ForTenant(ctx, a.TenantID)
	n, err := s.Client.Notification.Get(ctx, a.NotificationID)
	if ent.IsNotFound(err) {
		return permanent("sign-up SMS %d not found", a.NotificationID)
	}
	if err != nil {
		return fmt.Errorf("mikrotik: otp sms: %w", err)
	}
	if n.Status != notification.StatusQUEUED {
		return nil // sent, or given up, by an earlier run
	}
	c, err := notify.Claim(ctx, s.Client, n.ID)
	if err != nil || c == nil {
		return err
	}
	defer c.Release() // a no-op once Sent or Failed ended the claim
	n = c.N
	// The code's hash is written in the claim's transaction: it commits
	// with the SENT (or FAILED) mark, and a crash mid-send rolls both back.
	client := c.Client()
	u, err := client.HotspotUser.Query().Where(hotspotuser.ID(a.HotspotUserID)).Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return fmt.Errorf("mikrotik: otp sms: %w", err)
	}
	code, err := randomDigits(OTPDigits)
	if err != nil {
		return fmt.Errorf("mikrotik: otp sms: %w", err)
	}
	now := s.now()
	pending := 0
	if u != nil {
		pending, err = client.HotspotUser.Update().
			Where(hotspotuser.ID(u.ID), hotspotuser.OtpRequestID(a.RequestID), hotspotuser.OtpExpiresAtGT(now)).
			SetOtpHash(otpHash(a.TenantID, u.Phone, code)).SetOtpAttempts(0).Save(ctx)
		if err != nil {
			return fmt.Errorf("mikrotik: otp sms: %w", err)
		}
	}
	if pending == 0 {
		return c.Failed(ctx, errors.New("not sent: the sign-up request was used, replaced or expired first"), true)
	}
	ref, err := send(ctx, n.Recipient, otpText(code))
	if err != nil {
		var se *notify.SMSError
		if ferr := c.Failed(ctx, err, errors.As(err, &se) && se.Permanent); ferr != nil || (se != nil && se.Permanent) {
			return ferr
		}
		return err
	}
	return c.Sent(ctx, ref, now)
}

// VerifyOTP checks a sign-up code. A right code activates the hotspot user
// with its package's validity (expiry = the later of now and the current
// expiry, plus the validity days), clears the code and enqueues its creation
// on the tenant's active routers (/ip/hotspot/user/add). A wrong code counts
// an attempt — written outside the caller's transaction, so the failure that
// rolls the request back does not undo it; after 5 the code is void. The API
// runs it outside the mutation transaction (see internal/server): SQLite
// allows one writer, so a write beside an open transaction would wait.
func (s *Service) VerifyOTP(ctx context.Context, phone, code string) (*SignIn, error) {
	v := viewer.FromContext(ctx)
	if !v.HasTenant() {
		return nil, apperr.E(apperr.BadUserInput, "tenant is required")
	}
	c := s.client(ctx)
	t, err := c.Tenant.Get(ctx, v.TenantID)
	if err != nil {
		return nil, fmt.Errorf("mikrotik: verify otp: %w", err)
	}
	if phone, err = NormalizePhone(phone, PhoneCountryCode(t)); err != nil {
		return nil, err
	}
	now := s.now()
	u, err := c.HotspotUser.Query().Where(hotspotuser.Phone(phone)).WithPackage().Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.E(apperr.BadUserInput, "no code was requested for this phone: request one first")
	}
	if err != nil {
		return nil, fmt.Errorf("mikrotik: verify otp: %w", err)
	}
	if u.OtpExpiresAt == nil || now.After(*u.OtpExpiresAt) {
		return nil, apperr.E(apperr.BadUserInput, "the code has expired: request a new one")
	}
	if u.OtpHash == nil {
		return nil, apperr.E(apperr.BadUserInput, "the code has not been sent yet: wait for the SMS")
	}
	if u.OtpAttempts >= OTPMaxAttempts {
		return nil, apperr.E(apperr.RateLimited, "too many wrong codes: request a new one")
	}
	if subtle.ConstantTimeCompare([]byte(otpHash(v.TenantID, phone, strings.TrimSpace(code))), []byte(*u.OtpHash)) != 1 {
		// The root client: this write must outlive the request's rollback.
		if err := s.Client.HotspotUser.UpdateOneID(u.ID).AddOtpAttempts(1).Exec(context.WithoutCancel(ctx)); err != nil {
			return nil, fmt.Errorf("mikrotik: verify otp: %w", err)
		}
		left := OTPMaxAttempts - u.OtpAttempts - 1
		if left <= 0 {
			return nil, apperr.E(apperr.RateLimited, "wrong code, and no attempts left: request a new one")
		}
		return nil, apperr.E(apperr.BadUserInput, "wrong code: %d attempts left", left)
	}
	if u.Edges.Package == nil {
		return nil, apperr.E(apperr.BadUserInput, "this hotspot user has no package: ask the provider")
	}
	base := now
	if u.ExpiresAt != nil && u.ExpiresAt.After(now) {
		base = *u.ExpiresAt
	}
	expires := base.AddDate(0, 0, u.Edges.Package.ValidityDays)
	err = s.withTx(ctx, func(ctx context.Context, c *ent.Client) error {
		var err error
		u, err = c.HotspotUser.UpdateOne(u).SetVerified(true).SetStatus(hotspotuser.StatusACTIVE).SetExpiresAt(expires).
			ClearOtpHash().ClearOtpExpiresAt().ClearOtpRequestID().SetOtpAttempts(0).Save(ctx)
		if err != nil {
			return fmt.Errorf("mikrotik: verify otp: %w", err)
		}
		return s.enqueueHotspot(ctx, c, u)
	})
	if err != nil {
		return nil, err
	}
	pw, err := s.open(u.Password)
	if err != nil {
		return nil, fmt.Errorf("mikrotik: verify otp: %w", err)
	}
	return &SignIn{User: u, Username: u.Username, Password: pw}, nil
}

// enqueueHotspot writes one HotspotProvision job per active router of the
// user's tenant: a hotspot user may sign in at any of the provider's hotspots.
func (s *Service) enqueueHotspot(ctx context.Context, c *ent.Client, u *ent.HotspotUser) error {
	ctx = viewer.ForTenant(ctx, u.TenantID)
	ids, err := c.Router.Query().Where(router.StatusEQ(router.StatusACTIVE)).IDs(ctx)
	if err != nil {
		return fmt.Errorf("mikrotik: hotspot routers: %w", err)
	}
	for _, id := range ids {
		if err := outbox.Enqueue(ctx, c, jobs.HotspotProvisionArgs{TenantID: u.TenantID, HotspotUserID: u.ID, RouterID: id}); err != nil {
			return err
		}
	}
	return nil
}

// ApplyHotspot carries a hotspot user's state to one router (the
// HotspotProvision job): /ip/hotspot/user added or set with the package's
// profile, uptime and data limits and the user's MAC binding while active,
// disabled and its live session removed otherwise, removed once the user is
// deleted (a.Username). Only an item ispgraph created is changed.
func (s *Service) ApplyHotspot(ctx context.Context, a jobs.HotspotProvisionArgs) error {
	ctx = viewer.ForTenant(ctx, a.TenantID)
	u, err := s.Client.HotspotUser.Query().Where(hotspotuser.ID(a.HotspotUserID)).WithPackage().Only(ctx)
	switch {
	case ent.IsNotFound(err) && a.Username == "":
		return permanent("hotspot user %d not found", a.HotspotUserID)
	case ent.IsNotFound(err):
		u, err = nil, nil // deleted: its item is removed below
	}
	if err != nil {
		return fmt.Errorf("mikrotik: load hotspot user %d: %w", a.HotspotUserID, err)
	}
	r, err := s.loadRouter(ctx, a.RouterID)
	if err != nil {
		return err
	}
	if r.Status == router.StatusINACTIVE {
		return permanent("router %q is inactive", r.Name)
	}
	c, err := s.conn(r)
	if err != nil {
		return err
	}
	if u == nil {
		err = removeHotspotUser(ctx, c, a.HotspotUserID, a.Username)
	} else {
		err = s.upsertHotspotUser(ctx, c, u)
	}
	s.noteRouterError(ctx, r, err)
	return err
}

func (s *Service) upsertHotspotUser(ctx context.Context, c *Conn, u *ent.HotspotUser) error {
	w, err := s.hotspotWant(u)
	if err != nil {
		return err
	}
	active := u.Status == hotspotuser.StatusACTIVE
	rows, err := c.Run(ctx, MenuHotspotUser+"/print", "?name="+u.Username)
	if err != nil {
		return err
	}
	var attrs []string
	for _, k := range sortedAttrKeys(w.attrs) {
		attrs = append(attrs, "="+k+"="+w.attrs[k])
	}
	switch {
	case len(rows) == 0 && !active:
		return nil // nothing on the router to disable
	case len(rows) == 0:
		_, err = c.Run(ctx, append([]string{MenuHotspotUser + "/add", "=name=" + u.Username, "=comment=" + w.marker}, attrs...)...)
	case !owned(rows[0]["comment"]):
		return permanent("name clash on the router: hotspot user %q was not created by ispgraph (comment %q)", u.Username, rows[0]["comment"])
	default:
		if _, err = c.Run(ctx, append([]string{MenuHotspotUser + "/set", "=.id=" + rows[0][".id"]}, attrs...)...); err != nil {
			return err
		}
		for _, k := range w.unset {
			if present(rows[0][k]) {
				if _, err = c.Run(ctx, MenuHotspotUser+"/unset", "=numbers="+rows[0][".id"], "=value-name="+k); err != nil {
					return err
				}
			}
		}
	}
	if err != nil || active {
		return err
	}
	return kickHotspot(ctx, c, u.Username)
}

// removeHotspotUser removes a deleted hotspot user's item (only if it
// carries that user's marker) and ends its sessions.
func removeHotspotUser(ctx context.Context, c *Conn, id int, username string) error {
	rows, err := c.Run(ctx, MenuHotspotUser+"/print", "?name="+username, "=.proplist=.id,comment")
	if err != nil {
		return err
	}
	for _, r := range rows {
		if markerOf(r["comment"]) != hotspotMarker(id) {
			continue // not that user's (the operator's, or a newer user of that name)
		}
		if _, err := c.Run(ctx, MenuHotspotUser+"/remove", "=.id="+r[".id"]); err != nil {
			return err
		}
	}
	return kickHotspot(ctx, c, username)
}

// DeleteHotspotUser deletes a hotspot user of the tenant in ctx, in the
// caller's transaction: the row goes (its past sessions stay, unlinked) and
// a HotspotProvision job per active router removes it there and ends its
// session.
func (s *Service) DeleteHotspotUser(ctx context.Context, id int) error {
	c := s.client(ctx)
	u, err := c.HotspotUser.Get(ctx, id)
	if ent.IsNotFound(err) {
		return apperr.E(apperr.NotFound, "hotspot user not found")
	}
	if err != nil {
		return fmt.Errorf("mikrotik: delete hotspot user %d: %w", id, err)
	}
	if err := c.HotspotUser.DeleteOne(u).Exec(ctx); err != nil {
		return fmt.Errorf("mikrotik: delete hotspot user %d: %w", id, err)
	}
	ids, err := c.Router.Query().Where(router.StatusEQ(router.StatusACTIVE)).IDs(ctx)
	if err != nil {
		return fmt.Errorf("mikrotik: hotspot routers: %w", err)
	}
	for _, rid := range ids {
		if err := outbox.Enqueue(ctx, c, jobs.HotspotProvisionArgs{TenantID: u.TenantID, HotspotUserID: u.ID, RouterID: rid, Username: u.Username}); err != nil {
			return err
		}
	}
	return nil
}

// ExpireHotspotUsers marks the tenant's active hotspot users whose time has
// run out as expired and enqueues disabling them on the routers, in one
// transaction. It returns how many expired. The expiry schedule calls it for
// every tenant (ExpireAllHotspotUsers).
func (s *Service) ExpireHotspotUsers(ctx context.Context, tenantID int) (int, error) {
	ctx = viewer.ForTenant(ctx, tenantID)
	tx, err := s.Client.Tx(ctx)
	if err != nil {
		return 0, fmt.Errorf("mikrotik: expire hotspot users: %w", err)
	}
	c := tx.Client()
	us, err := c.HotspotUser.Query().Where(hotspotuser.StatusEQ(hotspotuser.StatusACTIVE), hotspotuser.ExpiresAtLTE(s.now())).All(ctx)
	if err == nil {
		for _, u := range us {
			if err = c.HotspotUser.UpdateOne(u).SetStatus(hotspotuser.StatusEXPIRED).Exec(ctx); err != nil {
				break
			}
			u.Status = hotspotuser.StatusEXPIRED
			if err = s.enqueueHotspot(ctx, c, u); err != nil {
				break
			}
		}
	}
	if err != nil {
		_ = tx.Rollback()
		return 0, fmt.Errorf("mikrotik: expire hotspot users: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("mikrotik: expire hotspot users: %w", err)
	}
	return len(us), nil
}

// ExpireAllHotspotUsers runs ExpireHotspotUsers for every tenant that has an
// expired active hotspot user.
func (s *Service) ExpireAllHotspotUsers(ctx context.Context) (int, error) {
	tenants, err := s.Client.HotspotUser.Query().Where(hotspotuser.StatusEQ(hotspotuser.StatusACTIVE), hotspotuser.ExpiresAtLTE(s.now())).
		Unique(true).Select(hotspotuser.FieldTenantID).Ints(tenancy.Bypass(ctx))
	if err != nil {
		return 0, fmt.Errorf("mikrotik: expire hotspot users: %w", err)
	}
	total := 0
	for _, t := range tenants {
		n, err := s.ExpireHotspotUsers(ctx, t)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
