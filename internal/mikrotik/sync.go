package mikrotik

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/hotspotuser"
	"github.com/ispgraph/ispgraph/ent/networksession"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/router"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// SyncResult counts what one sync changed.
type SyncResult struct {
	Started, Updated, Closed, Unknown int
}

// liveSession is one entry of /ppp/active or /ip/hotspot/active.
type liveSession struct {
	kind     networksession.Kind
	id       string
	username string
	address  string
	callerID string
	uptime   time.Duration
	bytesIn  int64
	bytesOut int64
}

// Sync reads a router's active PPP and hotspot sessions (all of them, or one
// username's), upserts NetworkSession rows matched to subscribers and hotspot
// users, closes the rows whose session has gone and records the sync time.
// Sessions of usernames ispgraph does not know are stored too, unmatched, so
// staff see who is on the router.
func (s *Service) Sync(ctx context.Context, tenantID, routerID int, username string) (*SyncResult, error) {
	ctx = viewer.ForTenant(ctx, tenantID)
	r, err := s.loadRouter(ctx, routerID)
	if err != nil {
		return nil, err
	}
	if r.Status == router.StatusINACTIVE {
		return &SyncResult{}, nil
	}
	c, err := s.conn(r)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	live, err := s.readSessions(ctx, c, username)
	elapsed := time.Since(start)
	if err != nil {
		s.recordReachability(ctx, r, elapsed, err, false)
		return nil, err
	}
	res, err := s.storeSessions(ctx, r, username, live)
	if err != nil {
		return nil, err
	}
	s.recordReachability(ctx, r, elapsed, nil, true)
	return res, nil
}

func (s *Service) readSessions(ctx context.Context, c *Conn, username string) ([]liveSession, error) {
	ppp := []string{"/ppp/active/print"}
	hs := []string{"/ip/hotspot/active/print"}
	if username != "" {
		ppp = append(ppp, "?name="+username)
		hs = append(hs, "?user="+username)
	}
	var out []liveSession
	rows, err := c.Run(ctx, ppp...)
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		out = append(out, liveSession{kind: networksession.KindPPPOE, id: row[".id"], username: row["name"],
			address: row["address"], callerID: row["caller-id"], uptime: parseUptime(row["uptime"])})
	}
	if len(out) > 0 {
		if err := pppBytes(ctx, c, username, out); err != nil {
			return nil, err
		}
	}
	rows, err = c.Run(ctx, hs...)
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		out = append(out, liveSession{kind: networksession.KindHOTSPOT, id: row[".id"], username: row["user"],
			address: row["address"], callerID: row["mac-address"], uptime: parseUptime(row["uptime"]),
			bytesIn: parseInt(row["bytes-in"]), bytesOut: parseInt(row["bytes-out"])})
	}
	return out, nil
}

// pppInterface is the dynamic interface (and dynamic queue) RouterOS creates
// for a PPPoE session.
func pppInterface(username string) string { return "<pppoe-" + username + ">" }

// pppBytes fills the byte counts of PPPoE sessions: /ppp/active has none, so
// they come from the session's dynamic interface (rx-byte: from the
// subscriber, bytesIn; tx-byte: to the subscriber, bytesOut) or, where the
// interface shows none, from its dynamic simple queue (bytes=upload/download).
func pppBytes(ctx context.Context, c *Conn, username string, live []liveSession) error {
	ifq := []string{"/interface/print", "?type=pppoe-in", "=.proplist=name,rx-byte,tx-byte"}
	qq := []string{"/queue/simple/print", "=.proplist=name,bytes"}
	if username != "" {
		ifq = append(ifq, "?name="+pppInterface(username))
		qq = append(qq, "?name="+pppInterface(username))
	}
	rows, err := c.Run(ctx, ifq...)
	if err != nil {
		return err
	}
	type counts struct{ in, out int64 }
	byName := map[string]counts{}
	for _, r := range rows {
		if r["rx-byte"] != "" || r["tx-byte"] != "" {
			byName[r["name"]] = counts{parseInt(r["rx-byte"]), parseInt(r["tx-byte"])}
		}
	}
	missing := false
	for _, l := range live {
		if _, ok := byName[pppInterface(l.username)]; !ok {
			missing = true
		}
	}
	if missing {
		rows, err := c.Run(ctx, qq...)
		if err != nil {
			return err
		}
		for _, r := range rows {
			up, down, ok := strings.Cut(r["bytes"], "/")
			if _, seen := byName[r["name"]]; ok && !seen {
				byName[r["name"]] = counts{parseInt(up), parseInt(down)}
			}
		}
	}
	for i := range live {
		if c, ok := byName[pppInterface(live[i].username)]; ok {
			live[i].bytesIn, live[i].bytesOut = c.in, c.out
		}
	}
	return nil
}

func (s *Service) storeSessions(ctx context.Context, r *ent.Router, username string, live []liveSession) (*SyncResult, error) {
	tx, err := s.Client.Tx(ctx)
	if err != nil {
		return nil, fmt.Errorf("mikrotik: sync: %w", err)
	}
	res, err := storeSessionsTx(ctx, tx.Client(), r, username, live, s.now())
	if err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("mikrotik: sync router %d: %w", r.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("mikrotik: sync router %d: %w", r.ID, err)
	}
	return res, nil
}

func storeSessionsTx(ctx context.Context, c *ent.Client, r *ent.Router, username string, live []liveSession, now time.Time) (*SyncResult, error) {
	var pppNames, hsNames []string
	for _, l := range live {
		if l.kind == networksession.KindPPPOE {
			pppNames = append(pppNames, l.username)
		} else {
			hsNames = append(hsNames, l.username)
		}
	}
	subs := map[string]int{}
	if len(pppNames) > 0 {
		us, err := c.NetworkUser.Query().Where(networkuser.UsernameIn(pppNames...)).
			Select(networkuser.FieldID, networkuser.FieldUsername).All(ctx)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			subs[u.Username] = u.ID
		}
	}
	hotspot := map[string]int{}
	if len(hsNames) > 0 {
		us, err := c.HotspotUser.Query().Where(hotspotuser.UsernameIn(hsNames...)).
			Select(hotspotuser.FieldID, hotspotuser.FieldUsername).All(ctx)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			hotspot[u.Username] = u.ID
		}
	}
	q := c.NetworkSession.Query().Where(networksession.RouterID(r.ID), networksession.StatusEQ(networksession.StatusACTIVE))
	if username != "" {
		q = q.Where(networksession.Username(username))
	}
	open, err := q.All(ctx)
	if err != nil {
		return nil, err
	}
	type key struct {
		kind     networksession.Kind
		id, user string
	}
	existing := map[key]*ent.NetworkSession{}
	for _, o := range open {
		existing[key{o.Kind, o.RouterSessionID, o.Username}] = o
	}
	res := &SyncResult{}
	for _, l := range live {
		k := key{l.kind, l.id, l.username}
		if o, ok := existing[k]; ok {
			delete(existing, k)
			if err := c.NetworkSession.UpdateOne(o).SetLastSeenAt(now).SetAddress(l.address).SetCallerID(l.callerID).
				SetUptimeSeconds(int64(l.uptime / time.Second)).SetBytesIn(l.bytesIn).SetBytesOut(l.bytesOut).Exec(ctx); err != nil {
				return nil, err
			}
			res.Updated++
			continue
		}
		cr := c.NetworkSession.Create().SetRouterID(r.ID).SetKind(l.kind).SetUsername(l.username).
			SetRouterSessionID(l.id).SetAddress(l.address).SetCallerID(l.callerID).
			SetUptimeSeconds(int64(l.uptime / time.Second)).SetBytesIn(l.bytesIn).SetBytesOut(l.bytesOut).
			SetStartedAt(now.Add(-l.uptime)).SetLastSeenAt(now)
		matched := false
		if l.kind == networksession.KindPPPOE {
			if id, ok := subs[l.username]; ok {
				cr.SetNetworkUserID(id)
				matched = true
			}
		} else if id, ok := hotspot[l.username]; ok {
			cr.SetHotspotUserID(id)
			matched = true
		}
		if err := cr.Exec(ctx); err != nil {
			return nil, err
		}
		res.Started++
		if !matched {
			res.Unknown++
		}
	}
	for _, o := range existing {
		if err := c.NetworkSession.UpdateOne(o).SetStatus(networksession.StatusCLOSED).SetEndedAt(now).Exec(ctx); err != nil {
			return nil, err
		}
		res.Closed++
	}
	return res, nil
}

// parseUptime reads RouterOS durations such as "1w2d3h4m5s" (and "01:02:03").
func parseUptime(s string) time.Duration {
	if strings.Contains(s, ":") {
		var d time.Duration
		for _, p := range strings.Split(s, ":") {
			d = d*60 + time.Duration(parseInt(p))
		}
		return d * time.Second
	}
	units := map[rune]time.Duration{'w': 7 * 24 * time.Hour, 'd': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute, 's': time.Second}
	var d time.Duration
	n := 0
	for _, ch := range s {
		if ch >= '0' && ch <= '9' {
			n = n*10 + int(ch-'0')
			continue
		}
		d += time.Duration(n) * units[ch]
		n = 0
	}
	return d
}

func parseInt(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
