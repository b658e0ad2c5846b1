package auth

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/authtoken"
	"github.com/ispgraph/ispgraph/ent/user"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/audit"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/notify"
	"github.com/ispgraph/ispgraph/internal/outbox"
	"github.com/ispgraph/ispgraph/internal/tenancy"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// MinPasswordLen is the shortest password a staff user may choose.
const MinPasswordLen = 10

// SetupTTL is how long an invitation or password-reset link works.
const SetupTTL = 72 * time.Hour

// CheckNewPassword refuses a password a staff user may not choose.
func CheckNewPassword(pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return apperr.E(apperr.BadUserInput, "the password must have at least %d characters", MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return apperr.E(apperr.BadUserInput, "the password must have at most %d characters", MaxPasswordLen)
	}
	return nil
}

// CheckEmail normalizes a staff e-mail address or refuses it.
func CheckEmail(email string) (string, error) {
	e := NormalizeEmail(email)
	if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
		return "", apperr.E(apperr.BadUserInput, "%q is not an e-mail address", email)
	}
	return e, nil
}

// InviteInput is what a tenant admin gives a new staff user.
type InviteInput struct {
	Name   string
	Email  string
	RoleID *int
}

// InviteUser creates a disabled staff user in the viewer's tenant and e-mails
// it a one-time link to set its password (AcceptInvite). The user's role may
// grant only permissions the inviter holds. The e-mail goes through the
// outbox (SendStaffEmail) once the mutation commits, and is retried there:
// the mutation never waits on, or fails with, the mail relay.
func (s *Service) InviteUser(ctx context.Context, in InviteInput) (*ent.User, error) {
	v, err := RequirePermission(ctx, authz.StaffManage)
	if err != nil {
		return nil, err
	}
	c := s.client(ctx)
	if in.RoleID != nil {
		if err := s.checkRoleGrant(ctx, c, v, *in.RoleID); err != nil {
			return nil, err
		}
	}
	email, err := CheckEmail(in.Email)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(in.Name)
	if name == "" {
		return nil, apperr.E(apperr.BadUserInput, "the user's name is required")
	}
	// Nobody knows this password: the user sets one through the link.
	placeholder, _, err := NewToken()
	if err != nil {
		return nil, err
	}
	hash, err := s.hashPassword(ctx, v.TenantID, placeholder)
	if err != nil {
		return nil, err
	}
	if err := s.canMail(); err != nil {
		return nil, err
	}
	// A hash of a token nobody holds marks the invitation pending; the
	// e-mail job replaces it with the hash of the token it sends.
	_, tokenHash, err := NewToken()
	if err != nil {
		return nil, err
	}
	u, err := c.User.Create().
		SetName(name).
		SetEmail(email).
		SetPasswordHash(hash).
		SetNillableRoleID(in.RoleID).
		SetActive(false).
		SetSetupTokenHash(tokenHash).
		SetSetupExpiresAt(s.now().Add(SetupTTL)).
		Save(ctx)
	if ent.IsConstraintError(err) {
		return nil, apperr.E(apperr.Conflict, "a staff user with e-mail %s already exists", email)
	}
	if err != nil {
		return nil, err
	}
	if err := outbox.Enqueue(ctx, c, jobs.SendStaffEmailArgs{TenantID: v.TenantID, UserID: u.ID, EmailKind: "invite"}); err != nil {
		return nil, err
	}
	return u, nil
}

// ResetUserPassword ends a staff user's password and sessions and e-mails it
// a one-time link to choose a new one.
func (s *Service) ResetUserPassword(ctx context.Context, id int) (*ent.User, error) {
	v, err := RequirePermission(ctx, authz.StaffManage)
	if err != nil {
		return nil, err
	}
	c := s.client(ctx)
	u, err := c.User.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	placeholder, _, err := NewToken()
	if err != nil {
		return nil, err
	}
	hash, err := s.hashPassword(ctx, v.TenantID, placeholder)
	if err != nil {
		return nil, err
	}
	if err := s.canMail(); err != nil {
		return nil, err
	}
	_, tokenHash, err := NewToken() // see InviteUser
	if err != nil {
		return nil, err
	}
	u, err = c.User.UpdateOne(u).
		SetPasswordHash(hash).
		SetSetupTokenHash(tokenHash).
		SetSetupExpiresAt(s.now().Add(SetupTTL)).
		Save(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.revokeSessions(ctx, c, u.ID, 0); err != nil {
		return nil, err
	}
	if err := outbox.Enqueue(ctx, c, jobs.SendStaffEmailArgs{TenantID: v.TenantID, UserID: u.ID, EmailKind: "reset"}); err != nil {
		return nil, err
	}
	return u, nil
}

// canMail refuses an invitation or reset the server could never deliver.
func (s *Service) canMail() error {
	if s.Mailer == nil || s.Mailer.Config.Host == "" {
		return apperr.E(apperr.Internal, "staff e-mail cannot be sent: the server has no mail relay (set ISPGRAPH_SMTP_HOST)")
	}
	return nil
}

// SendSetupEmail is the SendStaffEmail job: it gives the user a fresh
// one-time token (only its hash is stored, so any earlier link stops
// working) and e-mails the link, from the tenant's own sender when it has
// one. A user whose setup is no longer pending (the link was used) gets
// nothing. ctx must carry the tenant.
func (s *Service) SendSetupEmail(ctx context.Context, tenantID, userID int, kind string) error {
	if err := s.canMail(); err != nil {
		return err
	}
	u, err := s.Client.User.Get(ctx, userID)
	if ent.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("auth: user of %s e-mail: %w", kind, err)
	}
	if u.SetupTokenHash == nil {
		return nil // accepted meanwhile
	}
	token, tokenHash, err := NewToken()
	if err != nil {
		return err
	}
	if u, err = s.Client.User.UpdateOne(u).SetSetupTokenHash(tokenHash).SetSetupExpiresAt(s.now().Add(SetupTTL)).Save(ctx); err != nil {
		return fmt.Errorf("auth: store setup token: %w", err)
	}
	return s.sendSetup(ctx, s.Client, tenantID, u, token, kind)
}

// sendSetup e-mails u the one-time link of an invitation or password reset,
// from the tenant's own sender when it has one.
func (s *Service) sendSetup(ctx context.Context, c *ent.Client, tenantID int, u *ent.User, token, kind string) error {
	t, err := c.Tenant.Get(viewer.ForTenant(ctx, tenantID), tenantID)
	if err != nil {
		return fmt.Errorf("auth: tenant of invitation: %w", err)
	}
	link := "acceptInvite(input: {token: \"" + token + "\", password: \"…\"})"
	if s.SetupURL != "" {
		sep := "?"
		if strings.Contains(s.SetupURL, "?") {
			sep = "&"
		}
		link = s.SetupURL + sep + "token=" + url.QueryEscape(token)
	}
	subject := fmt.Sprintf("You are invited to %s", t.Name)
	intro := fmt.Sprintf("%s invites you to sign in as %s.", t.Name, u.Email)
	if kind == "reset" {
		subject = fmt.Sprintf("Set a new password for %s", t.Name)
		intro = fmt.Sprintf("Your password for %s (%s) was reset by an administrator.", t.Name, u.Email)
	}
	text := fmt.Sprintf("Hello %s,\n\n%s\n\nSet your password here (the link works once, for %d hours):\n\n%s\n\nTenant: %s\n",
		u.Name, intro, int(SetupTTL.Hours()), link, t.Slug)
	esc := html.EscapeString
	body := fmt.Sprintf("<p>Hello %s,</p><p>%s</p><p>Set your password here (the link works once, for %d hours):</p><p><code>%s</code></p><p>Tenant: %s</p>",
		esc(u.Name), esc(intro), int(SetupTTL.Hours()), esc(link), esc(t.Slug))
	if s.SetupURL != "" {
		body = strings.Replace(body, "<code>"+esc(link)+"</code>", `<a href="`+esc(link)+`">`+esc(link)+"</a>", 1)
	}
	m := notify.Mail{To: u.Email, Subject: subject, Text: text, HTML: body}
	if snd, ok := notify.MailSenderFromSettings(t.Settings); ok {
		m.Sender = &snd
	}
	if err := s.Mailer.Send(ctx, m); err != nil {
		s.logger().ErrorContext(ctx, "staff e-mail failed", "kind", kind, "user_id", u.ID, "error", err)
		return fmt.Errorf("auth: %s e-mail to user %d: %w", kind, u.ID, err)
	}
	return nil
}

// AcceptInvite sets the password of the user whose invitation or reset token
// this is, enables it, ends the token and logs the user in.
func (s *Service) AcceptInvite(ctx context.Context, token, password, address string) (string, time.Time, error) {
	if err := CheckNewPassword(password); err != nil {
		return "", time.Time{}, err
	}
	invalid := apperr.E(apperr.Unauthenticated, "this invitation link is invalid, used or expired: ask your administrator for a new one")
	if !wellFormedToken(token) {
		return "", time.Time{}, invalid
	}
	c := s.client(ctx)
	// The token decides the tenant, so finding it cannot wait for one.
	u, err := c.User.Query().Where(user.SetupTokenHashEQ(HashToken(token))).Only(tenancy.Bypass(ctx))
	switch {
	case ent.IsNotFound(err):
		return "", time.Time{}, invalid
	case err != nil:
		return "", time.Time{}, fmt.Errorf("auth: find invitation: %w", err)
	case u.SetupExpiresAt == nil || !s.now().Before(*u.SetupExpiresAt):
		return "", time.Time{}, invalid
	}
	t, err := s.tenant(ctx, u.TenantID)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := checkTenant(t); err != nil {
		return "", time.Time{}, err
	}
	hash, err := s.hashPassword(ctx, u.TenantID, password)
	if err != nil {
		return "", time.Time{}, err
	}
	uctx := viewer.NewContext(ctx, &viewer.Viewer{Kind: viewer.Staff, TenantID: u.TenantID, UserID: u.ID})
	if err := c.User.UpdateOne(u).SetPasswordHash(hash).SetActive(true).
		ClearSetupTokenHash().ClearSetupExpiresAt().SetLastLoginAt(s.now()).Exec(uctx); err != nil {
		return "", time.Time{}, fmt.Errorf("auth: accept invitation: %w", err)
	}
	tok, exp, _, err := s.issue(uctx, c, u.TenantID, authtoken.KindSTAFF, &u.ID, nil, address)
	if err != nil {
		return "", time.Time{}, err
	}
	s.audit(ctx, audit.Entry{TenantID: u.TenantID, ActorKind: "staff", ActorID: &u.ID, ActorLabel: u.Email,
		Action: "invite.accepted", EntityType: "User", EntityID: &u.ID, Outcome: "ok"})
	return tok, exp, nil
}

// StaffUserUpdate is what a tenant admin may change of a staff user.
type StaffUserUpdate struct {
	Name   *string
	RoleID *int
	Active *bool
}

// UpdateStaffUser renames a user of the viewer's tenant, assigns it a role
// (holding only permissions the editor holds) or disables or enables it. A
// disabled user's sessions end at once; nobody disables themselves.
func (s *Service) UpdateStaffUser(ctx context.Context, id int, in StaffUserUpdate) (*ent.User, error) {
	v, err := RequirePermission(ctx, authz.StaffManage)
	if err != nil {
		return nil, err
	}
	c := s.client(ctx)
	u, err := c.User.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	upd := c.User.UpdateOne(u)
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if name == "" {
			return nil, apperr.E(apperr.BadUserInput, "the user's name must not be empty")
		}
		upd.SetName(name)
	}
	if in.RoleID != nil {
		if u.ID == v.UserID {
			return nil, apperr.E(apperr.Forbidden, "you cannot change your own role: ask another administrator")
		}
		if err := s.checkRoleGrant(ctx, c, v, *in.RoleID); err != nil {
			return nil, err
		}
		upd.SetRoleID(*in.RoleID)
	}
	if in.Active != nil {
		if !*in.Active && u.ID == v.UserID {
			return nil, apperr.E(apperr.Forbidden, "you cannot disable yourself: ask another administrator")
		}
		upd.SetActive(*in.Active)
	}
	u, err = upd.Save(ctx)
	if err != nil {
		return nil, err
	}
	if in.Active != nil && !*in.Active {
		if err := s.revokeSessions(ctx, c, u.ID, 0); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// checkRoleGrant refuses a role of another tenant (not found) or one holding
// a permission the viewer does not hold.
func (s *Service) checkRoleGrant(ctx context.Context, c *ent.Client, v *viewer.Viewer, roleID int) error {
	r, err := c.Role.Get(ctx, roleID)
	if err != nil {
		return err
	}
	return authz.CheckGrant(v, authz.RolePermissions(r.Name, r.Builtin, r.Permissions))
}

// ChangePassword changes the calling staff user's own password after checking
// the current one; the user's other sessions end.
func (s *Service) ChangePassword(ctx context.Context, current, next string) error {
	v, err := Require(ctx)
	if err != nil {
		return err
	}
	if v.Kind == viewer.Customer && v.NetworkUserID > 0 {
		return s.changePortalPassword(ctx, v, current, next)
	}
	if v.Kind != viewer.Staff || v.UserID == 0 {
		return apperr.E(apperr.Forbidden, "only staff users and portal customers have a password to change here")
	}
	if err := CheckNewPassword(next); err != nil {
		return err
	}
	c := s.client(ctx)
	u, err := c.User.Get(ctx, v.UserID)
	if err != nil {
		return err
	}
	ok, err := s.verifyPassword(ctx, v.TenantID, u.PasswordHash, current)
	if err != nil && !errors.Is(err, errMalformedHash) {
		return err
	}
	if !ok {
		return apperr.E(apperr.Unauthenticated, "the current password is wrong")
	}
	hash, err := s.hashPassword(ctx, v.TenantID, next)
	if err != nil {
		return err
	}
	if err := c.User.UpdateOne(u).SetPasswordHash(hash).Exec(ctx); err != nil {
		return err
	}
	return s.revokeSessions(ctx, c, u.ID, v.TokenID)
}

// revokeSessions revokes every live token of staff user userID except keep.
func (s *Service) revokeSessions(ctx context.Context, c *ent.Client, userID, keep int) error {
	err := c.AuthToken.Update().
		Where(authtoken.UserIDEQ(userID), authtoken.RevokedAtIsNil(), authtoken.IDNEQ(keep)).
		SetRevokedAt(s.now()).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("auth: end sessions: %w", err)
	}
	return nil
}
