package mikrotik

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/jobs"
	"github.com/ispgraph/ispgraph/internal/outbox"

	"github.com/ispgraph/ispgraph/ent/networkuser"
)

// ImportResult says what importRouterSecrets did.
type ImportResult struct {
	// Created counts the new subscribers.
	Created int
	// Skipped lists usernames that already belong to a subscriber.
	Skipped []string
	// UnmatchedProfiles lists router profiles no package has as its router
	// profile (or name); their subscribers were created without a package.
	UnmatchedProfiles []string
}

// ImportSecrets creates a subscriber for every PPP secret of a router that no
// subscriber has yet: username, password and remote address from the secret,
// package from its profile (a package whose router profile, else name, equals
// the profile), status ACTIVE or — for a disabled secret — SUSPENDED. The
// router is read first, with the usual timeouts and outside any transaction
// (a router that is down fails the request quickly and holds no lock); the
// subscribers are then created in one transaction, recorded as in step with
// the router (nothing is pushed back).
func (s *Service) ImportSecrets(ctx context.Context, routerID int) (*ImportResult, error) {
	r, err := s.client(ctx).Router.Get(ctx, routerID)
	if err != nil {
		return nil, err
	}
	conn, err := s.conn(r)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Run(ctx, "/ppp/secret/print")
	s.recordReachability(ctx, r, 0, err, false)
	var de *DeviceError
	switch {
	case errors.As(err, &de):
		return nil, apperr.Wrap(apperr.BadUserInput, err, "router %q refused to list its PPP secrets: %s", r.Name, de.Message)
	case err != nil:
		return nil, apperr.Wrap(apperr.BadUserInput, err,
			"router %q did not answer: check that it is up and its API service is reachable, then try again", r.Name)
	}
	res := &ImportResult{Skipped: []string{}, UnmatchedProfiles: []string{}}
	err = s.withTx(ctx, func(ctx context.Context, c *ent.Client) error {
		if err := s.importRows(ctx, c, r, rows, res); err != nil {
			return err
		}
		// The next reconciliation adopts the imported secrets (marks them as
		// ispgraph's): queue it with the import.
		return outbox.Enqueue(ctx, c, jobs.ReconcileRouterArgs{TenantID: r.TenantID, RouterID: r.ID})
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (s *Service) importRows(ctx context.Context, c *ent.Client, r *ent.Router, rows []Row, res *ImportResult) error {
	pkgs, err := c.ServicePackage.Query().All(ctx)
	if err != nil {
		return fmt.Errorf("mikrotik: import: %w", err)
	}
	byProfile := map[string]int{}
	for _, p := range pkgs {
		if _, ok := byProfile[strings.ToLower(p.Name)]; !ok {
			byProfile[strings.ToLower(p.Name)] = p.ID
		}
	}
	for _, p := range pkgs { // the router profile wins over a name
		if p.RouterProfile != "" {
			byProfile[strings.ToLower(p.RouterProfile)] = p.ID
		}
	}
	names := make([]string, 0, len(rows))
	for _, row := range rows {
		names = append(names, row["name"])
	}
	existing, err := c.NetworkUser.Query().Where(networkuser.UsernameIn(names...)).Select(networkuser.FieldUsername).Strings(ctx)
	if err != nil {
		return fmt.Errorf("mikrotik: import: %w", err)
	}
	have := map[string]bool{}
	for _, n := range existing {
		have[n] = true
	}
	unmatched := map[string]bool{}
	now := s.now()
	for _, row := range rows {
		name := row["name"]
		if name == "" || have[name] {
			if name != "" {
				res.Skipped = append(res.Skipped, name)
			}
			continue
		}
		have[name] = true
		if svc := row["service"]; svc != "" && svc != "any" && svc != "pppoe" {
			res.Skipped = append(res.Skipped, name)
			continue
		}
		pw, err := s.seal(row["password"])
		if err != nil {
			return fmt.Errorf("mikrotik: import: %w", err)
		}
		cr := c.NetworkUser.Create().SetUsername(name).SetServicePassword(pw).SetFullName(row["comment"]).
			SetServiceType(networkuser.ServiceTypePPPOE).SetRouterID(r.ID).SetRouterSyncedAt(now)
		if row["disabled"] == "true" || row["disabled"] == "yes" {
			cr.SetStatus(networkuser.StatusSUSPENDED).SetSuspensionReason("disabled on the router at import")
		}
		if ip := row["remote-address"]; ip != "" {
			cr.SetStaticIP(ip)
		}
		if prof := row["profile"]; prof != "" {
			if id, ok := byProfile[strings.ToLower(prof)]; ok {
				cr.SetPackageID(id)
			} else if !unmatched[prof] {
				unmatched[prof] = true
				res.UnmatchedProfiles = append(res.UnmatchedProfiles, prof)
			}
		}
		if err := cr.Exec(ctx); err != nil {
			return fmt.Errorf("mikrotik: import %q: %w", name, err)
		}
		res.Created++
	}
	return nil
}
