package mikrotik

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
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
)

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

// NormalizePhone keeps a phone number's digits and a leading "+"; it refuses
// anything that cannot be a phone number.
func NormalizePhone(p string) (string, error) {
	p = strings.TrimSpace(p)
	var b strings.Builder
	for i, ch := range p {
		switch {
		case ch >= '0' && ch <= '9':
			b.WriteRune(ch)
		case ch == '+' && i == 0:
			b.WriteRune(ch)
		case ch == ' ' || ch == '-' || ch == '(' || ch == ')' || ch == '.':
		default:
			return "", apperr.E(apperr.BadUserInput, "phone number %q has a character that is not a digit", p)
		}
	}
	out := b.String()
	if n := len(strings.TrimPrefix(out, "+")); n < 6 || n > 15 {
		return "", apperr.E(apperr.BadUserInput, "phone number %q must have 6 to 15 digits", p)
	}
	return out, nil
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

// RequestOTP sends a sign-up code to phone for the tenant in ctx (the caller
// resolved it from the Host header or the tenant argument). A new phone
// becomes a pending hotspot user of packageID; a known one keeps its package
// unless another is given. The code (6 digits) is stored only as a hash, is
// valid for 10 minutes, and another is sent at most once a minute. The SMS is
// a Notification row plus a SendBulkSms job (a batch of one) in the outbox,
// written in the caller's transaction.
func (s *Service) RequestOTP(ctx context.Context, phone string, packageID *int) (*OTPRequest, error) {
	v := viewer.FromContext(ctx)
	if !v.HasTenant() {
		return nil, apperr.E(apperr.BadUserInput, "tenant is required")
	}
	phone, err := NormalizePhone(phone)
	if err != nil {
		return nil, err
	}
	c := s.client(ctx)
	now := s.now()
	u, err := c.HotspotUser.Query().Where(hotspotuser.Phone(phone)).Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return nil, fmt.Errorf("mikrotik: otp: %w", err)
	}
	if u != nil && u.OtpSentAt != nil && now.Sub(*u.OtpSentAt) < OTPResendAfter {
		wait := OTPResendAfter - now.Sub(*u.OtpSentAt)
		return nil, apperr.E(apperr.RateLimited, "a code was sent moments ago: wait %d seconds before asking again", int(wait.Seconds())+1)
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
	code, err := randomDigits(OTPDigits)
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
			SetOtpHash(otpHash(v.TenantID, phone, code)).SetOtpExpiresAt(expires).SetOtpAttempts(0).SetOtpSentAt(now).
			Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("mikrotik: otp: %w", err)
		}
	} else {
		up := c.HotspotUser.UpdateOne(u).SetOtpHash(otpHash(v.TenantID, phone, code)).SetOtpExpiresAt(expires).
			SetOtpAttempts(0).SetOtpSentAt(now)
		if packageID != nil {
			up.SetPackageID(*packageID)
		}
		if u, err = up.Save(ctx); err != nil {
			return nil, fmt.Errorf("mikrotik: otp: %w", err)
		}
	}
	batch := fmt.Sprintf("otp-%d-%d", u.ID, now.UnixNano())
	if err := c.Notification.Create().SetChannel(notification.ChannelSMS).SetKind("otp").SetRecipient(phone).
		SetBody(fmt.Sprintf("Your sign-in code is %s. It expires in %d minutes.", code, int(OTPTTL.Minutes()))).
		SetBatchID(batch).Exec(ctx); err != nil {
		return nil, fmt.Errorf("mikrotik: otp: %w", err)
	}
	if err := outbox.Enqueue(ctx, c, jobs.SendBulkSmsArgs{TenantID: v.TenantID, BatchID: batch}, outbox.DedupKey("sms:"+batch)); err != nil {
		return nil, err
	}
	return &OTPRequest{ExpiresAt: expires, ResendAfter: now.Add(OTPResendAfter)}, nil
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
	phone, err := NormalizePhone(phone)
	if err != nil {
		return nil, err
	}
	c := s.client(ctx)
	now := s.now()
	u, err := c.HotspotUser.Query().Where(hotspotuser.Phone(phone)).WithPackage().Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.E(apperr.BadUserInput, "no code was requested for this phone: request one first")
	}
	if err != nil {
		return nil, fmt.Errorf("mikrotik: verify otp: %w", err)
	}
	if u.OtpHash == nil || u.OtpExpiresAt == nil || now.After(*u.OtpExpiresAt) {
		return nil, apperr.E(apperr.BadUserInput, "the code has expired: request a new one")
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
			ClearOtpHash().ClearOtpExpiresAt().SetOtpAttempts(0).Save(ctx)
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
// profile while active, disabled and its live session removed otherwise.
func (s *Service) ApplyHotspot(ctx context.Context, a jobs.HotspotProvisionArgs) error {
	ctx = viewer.ForTenant(ctx, a.TenantID)
	u, err := s.Client.HotspotUser.Query().Where(hotspotuser.ID(a.HotspotUserID)).WithPackage().Only(ctx)
	if ent.IsNotFound(err) {
		return permanent("hotspot user %d not found", a.HotspotUserID)
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
	err = s.upsertHotspotUser(ctx, c, u)
	s.noteRouterError(ctx, r, err)
	return err
}

func (s *Service) upsertHotspotUser(ctx context.Context, c *Conn, u *ent.HotspotUser) error {
	pw, err := s.open(u.Password)
	if err != nil {
		return permanent("hotspot user %q: cannot read its password: %v", u.Username, err)
	}
	profile := "default"
	if p := u.Edges.Package; p != nil && p.RouterProfile != "" {
		profile = p.RouterProfile
	}
	active := u.Status == hotspotuser.StatusACTIVE
	disabled := "yes"
	if active {
		disabled = "no"
	}
	attrs := []string{"=password=" + pw, "=profile=" + profile, "=disabled=" + disabled, "=comment=ispgraph:hotspot:" + strconv.Itoa(u.ID)}
	rows, err := c.Run(ctx, "/ip/hotspot/user/print", "?name="+u.Username, "=.proplist=.id")
	if err != nil {
		return err
	}
	switch {
	case len(rows) == 0 && !active:
		return nil // nothing on the router to disable
	case len(rows) == 0:
		_, err = c.Run(ctx, append([]string{"/ip/hotspot/user/add", "=name=" + u.Username}, attrs...)...)
	default:
		_, err = c.Run(ctx, append([]string{"/ip/hotspot/user/set", "=.id=" + rows[0][".id"]}, attrs...)...)
	}
	if err != nil || active {
		return err
	}
	live, err := c.Run(ctx, "/ip/hotspot/active/print", "?user="+u.Username, "=.proplist=.id")
	if err != nil {
		return err
	}
	for _, l := range live {
		if _, err := c.Run(ctx, "/ip/hotspot/active/remove", "=.id="+l[".id"]); err != nil {
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
