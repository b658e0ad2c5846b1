package mikrotik

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/hotspotuser"
	"github.com/ispgraph/ispgraph/ent/networkuser"
	"github.com/ispgraph/ispgraph/ent/router"
	"github.com/ispgraph/ispgraph/internal/viewer"
)

// Ownership: every item ispgraph creates on a router carries a comment that
// starts with OwnerPrefix. Items without it are the operator's: ispgraph reads
// them but never changes or removes them, and a subscriber whose name is taken
// by one is reported as a clash.
const OwnerPrefix = "ispgraph:"

// Menus ispgraph manages on a router.
const (
	MenuProfile     = "/ppp/profile"
	MenuSecret      = "/ppp/secret"
	MenuQueue       = "/queue/simple"
	MenuAddressList = "/ip/firewall/address-list"
	MenuHotspotUser = "/ip/hotspot/user"
	MenuPPPActive   = "/ppp/active"
	MenuHSActive    = "/ip/hotspot/active"
)

// AllowedList is the firewall address list holding the addresses of ACTIVE
// STATIC subscribers; the router's firewall lets only these through.
const AllowedList = "ispgraph-active"

// SuspendedList is the address list of suspended and expired subscribers
// under the ADDRESS_LIST suspension mode: the router redirects it to a
// payment page. PPPoE subscribers land in it through SuspendedProfile
// (its address-list), STATIC ones by their address.
const SuspendedList = "ispgraph-suspended"

// SuspendedProfile is the PPP profile suspended PPPoE subscribers get under
// the ADDRESS_LIST mode.
const SuspendedProfile = "ispgraph-suspended"

// Drift kinds.
const (
	DriftMissing   = "MISSING"   // ispgraph wants it; the router does not have it
	DriftDifferent = "DIFFERENT" // present, some attributes differ
	DriftOrphan    = "ORPHAN"    // ispgraph created it; nothing in the books wants it any more
	DriftClash     = "CLASH"     // the name is taken by an item ispgraph does not own
	DriftOnline    = "ONLINE"    // a session of someone who must be offline
)

// Drift is one difference between the books and a router.
type Drift struct {
	Kind string
	// Menu is the RouterOS menu (e.g. /ppp/secret); Name the item's name
	// (for address lists: list:address).
	Menu, Name string
	// Detail says what differs, e.g. "profile: router has basic, want gold".
	Detail string
	// NetworkUserID or HotspotUserID is the subscriber the item belongs to, if any.
	NetworkUserID, HotspotUserID int
}

// ReconcileResult is what one reconciliation found and did.
type ReconcileResult struct {
	// Drift lists the differences found before anything was changed.
	Drift []Drift
	// Applied counts the router commands that repaired drift; Clashes the
	// items left alone because ispgraph does not own their name.
	Applied, Clashes int
	// InStep counts the subscribers recorded as matching the router.
	InStep int
}

// want is one item ispgraph wants on a router.
type want struct {
	menu, name, marker string
	attrs              map[string]string
	unset              []string // attributes that must be absent
	// onlyIfPresent: a disabled item that need not be created (a hotspot
	// user who never reached the router).
	onlyIfPresent bool
	// foreignOK: an existing item without the marker is used as it is (an
	// operator's PPP profile a package names).
	foreignOK bool
	userID    int
	hsID      int
}

// plan is the desired state of one router, or of one subscriber on it.
type plan struct {
	items []*want
	// offline are usernames (PPP and hotspot) whose sessions must end.
	pppOffline, hsOffline map[string]int // username → subscriber id (0: orphan)
	// scope limits the items read from the router to these names; nil reads
	// whole menus (a full reconciliation). markers are the ownership markers
	// a partial plan answers for (its subscribers', and a deleted one's).
	scope   map[string]bool
	markers map[string]bool
	users   []*ent.NetworkUser
	hs      []*ent.HotspotUser
}

func subscriberMarker(id int) string { return OwnerPrefix + strconv.Itoa(id) }
func hotspotMarker(id int) string    { return OwnerPrefix + "hotspot:" + strconv.Itoa(id) }
func packageMarker(id int) string    { return OwnerPrefix + "package:" + strconv.Itoa(id) }

// owned reports whether a router item's comment carries ispgraph's marker.
func owned(comment string) bool { return strings.HasPrefix(comment, OwnerPrefix) }

// markerOf is the ownership marker at the start of a comment (the operator may
// add text after it; ispgraph keeps that text).
func markerOf(comment string) string {
	if i := strings.IndexByte(comment, ' '); i >= 0 {
		return comment[:i]
	}
	return comment
}

// RateLimit is a package's PPP rate limit in RouterOS form: rx/tx as the
// router sees them, so the subscriber's upload comes first.
func RateLimit(p *ent.ServicePackage) string {
	if p == nil || (p.BandwidthUpKbps == 0 && p.BandwidthDownKbps == 0) {
		return ""
	}
	rl := fmt.Sprintf("%dk/%dk", p.BandwidthUpKbps, p.BandwidthDownKbps)
	if p.BurstUpKbps > 0 || p.BurstDownKbps > 0 {
		// rx-burst/tx-burst rx-threshold/tx-threshold rx-time/tx-time
		rl += fmt.Sprintf(" %dk/%dk %dk/%dk %d/%d", p.BurstUpKbps, p.BurstDownKbps,
			p.BurstThresholdUpKbps, p.BurstThresholdDownKbps, p.BurstTimeSeconds, p.BurstTimeSeconds)
	}
	return rl
}

// ProfileName is the PPP profile a package's subscribers get: the package's
// router profile if it names one, else ispgraph-<package id>; no package
// means the router's "default".
func ProfileName(p *ent.ServicePackage) string {
	switch {
	case p == nil:
		return "default"
	case p.RouterProfile != "":
		return p.RouterProfile
	}
	return "ispgraph-" + strconv.Itoa(p.ID)
}

// addProfile wants package p's profile on the router: created with its rate
// limit if missing; kept in step if ispgraph created it; used as it is if the
// operator made it.
func (pl *plan) addProfile(seen map[string]bool, p *ent.ServicePackage) string {
	name := ProfileName(p)
	if p == nil || seen[name] {
		return name
	}
	seen[name] = true
	w := &want{menu: MenuProfile, name: name, marker: packageMarker(p.ID), attrs: map[string]string{}, foreignOK: true}
	if rl := RateLimit(p); rl != "" {
		w.attrs["rate-limit"] = rl
	} else {
		w.unset = []string{"rate-limit"}
	}
	pl.items = append(pl.items, w)
	return name
}

// addSuspendedProfile wants SuspendedProfile on the router: it puts the
// session's address in SuspendedList.
func (pl *plan) addSuspendedProfile(seen map[string]bool) string {
	if !seen[SuspendedProfile] {
		seen[SuspendedProfile] = true
		pl.items = append(pl.items, &want{menu: MenuProfile, name: SuspendedProfile, marker: OwnerPrefix + "suspended",
			attrs: map[string]string{"address-list": SuspendedList}, foreignOK: true})
	}
	return SuspendedProfile
}

// desired builds the plan for router r from the books: subscribers whose
// router is r (all of them, or those listed in only), and — for a full
// reconciliation — the tenant's hotspot users.
func (s *Service) desired(ctx context.Context, r *ent.Router, only []int, full bool) (*plan, error) {
	q := s.Client.NetworkUser.Query().Where(networkuser.RouterID(r.ID)).WithPackage()
	if !full {
		q = q.Where(networkuser.IDIn(only...))
	}
	users, err := q.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("mikrotik: reconcile: load subscribers: %w", err)
	}
	t, err := s.Client.Tenant.Get(ctx, r.TenantID)
	if err != nil {
		return nil, fmt.Errorf("mikrotik: reconcile: load tenant: %w", err)
	}
	listMode := SuspensionModeOf(t) == SuspendAddressList
	pl := &plan{pppOffline: map[string]int{}, hsOffline: map[string]int{}, users: users}
	seen := map[string]bool{}
	for _, u := range users {
		if u.Status == networkuser.StatusDELETED {
			continue // nothing of it stays on the router
		}
		active := u.Status == networkuser.StatusACTIVE
		// Under the ADDRESS_LIST mode a suspended or expired subscriber stays
		// connected, in SuspendedList.
		listed := listMode && (u.Status == networkuser.StatusSUSPENDED || u.Status == networkuser.StatusEXPIRED)
		disabled := "true"
		if active || listed {
			disabled = "false"
		}
		marker := subscriberMarker(u.ID)
		ip := ""
		if u.StaticIP != nil {
			ip = *u.StaticIP
		}
		switch u.ServiceType {
		case networkuser.ServiceTypePPPOE:
			pw, err := s.open(u.ServicePassword)
			if err != nil {
				return nil, permanent("subscriber %q: cannot read its service password: %v", u.Username, err)
			}
			profile := pl.addProfile(seen, u.Edges.Package)
			if listed {
				profile = pl.addSuspendedProfile(seen)
			}
			w := &want{menu: MenuSecret, name: u.Username, marker: marker, userID: u.ID,
				attrs: map[string]string{"password": pw, "profile": profile, "service": "pppoe", "disabled": disabled}}
			if ip != "" {
				w.attrs["remote-address"] = ip
			} else {
				w.unset = []string{"remote-address"}
			}
			pl.items = append(pl.items, w)
			if !active && !listed {
				pl.pppOffline[u.Username] = u.ID
			}
		case networkuser.ServiceTypeSTATIC:
			if ip == "" {
				continue
			}
			w := &want{menu: MenuQueue, name: u.Username, marker: marker, userID: u.ID,
				attrs: map[string]string{"target": hostPrefix(ip), "disabled": disabled}}
			if rl := RateLimit(u.Edges.Package); rl != "" {
				w.attrs["max-limit"] = rl
			} else {
				w.unset = []string{"max-limit"}
			}
			pl.items = append(pl.items, w)
			if active || listed {
				pl.items = append(pl.items, &want{menu: MenuAddressList, name: AllowedList + ":" + ip, marker: marker, userID: u.ID,
					attrs: map[string]string{"list": AllowedList, "address": ip}})
			}
			if listed {
				pl.items = append(pl.items, &want{menu: MenuAddressList, name: SuspendedList + ":" + ip, marker: marker, userID: u.ID,
					attrs: map[string]string{"list": SuspendedList, "address": ip}})
			}
		}
	}
	if full {
		hs, err := s.Client.HotspotUser.Query().Where(hotspotuser.StatusNEQ(hotspotuser.StatusPENDING)).WithPackage().All(ctx)
		if err != nil {
			return nil, fmt.Errorf("mikrotik: reconcile: load hotspot users: %w", err)
		}
		pl.hs = hs
		for _, h := range hs {
			w, err := s.hotspotWant(h)
			if err != nil {
				return nil, err
			}
			pl.items = append(pl.items, w)
			if h.Status != hotspotuser.StatusACTIVE {
				pl.hsOffline[h.Username] = 0
			}
		}
	} else {
		pl.scope, pl.markers = map[string]bool{}, map[string]bool{}
		for _, u := range users {
			pl.scope[u.Username] = true
		}
		for _, id := range only {
			pl.markers[subscriberMarker(id)] = true
		}
	}
	return pl, nil
}

// hotspotWant is a hotspot user as the router should have it: enabled with
// its package's profile while ACTIVE, disabled otherwise (and not created
// just to be disabled); the package's uptime and data limits
// (limit-uptime, limit-bytes-total) and the user's MAC binding (mac-address)
// set, or unset when there are none.
func (s *Service) hotspotWant(h *ent.HotspotUser) (*want, error) {
	pw, err := s.open(h.Password)
	if err != nil {
		return nil, permanent("hotspot user %q: cannot read its password: %v", h.Username, err)
	}
	profile := "default"
	p := h.Edges.Package
	if p != nil && p.RouterProfile != "" {
		profile = p.RouterProfile
	}
	active := h.Status == hotspotuser.StatusACTIVE
	disabled := "true"
	if active {
		disabled = "false"
	}
	w := &want{menu: MenuHotspotUser, name: h.Username, marker: hotspotMarker(h.ID), hsID: h.ID, onlyIfPresent: !active,
		attrs: map[string]string{"password": pw, "profile": profile, "disabled": disabled}}
	if p != nil && p.UptimeLimitSeconds != nil {
		w.attrs["limit-uptime"] = rosDuration(*p.UptimeLimitSeconds)
	} else {
		w.unset = append(w.unset, "limit-uptime")
	}
	if p != nil && p.DataLimitBytes != nil {
		w.attrs["limit-bytes-total"] = strconv.FormatInt(*p.DataLimitBytes, 10)
	} else {
		w.unset = append(w.unset, "limit-bytes-total")
	}
	if h.MACAddress != nil && *h.MACAddress != "" {
		w.attrs["mac-address"] = strings.ToUpper(*h.MACAddress)
	} else {
		w.unset = append(w.unset, "mac-address")
	}
	return w, nil
}

// rosDuration writes seconds the way RouterOS prints a time ("1w2d3h4m5s"),
// so a value read back compares equal.
func rosDuration(sec int64) string {
	if sec <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		n int64
		s string
	}{{7 * 86400, "w"}, {86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}} {
		if sec >= u.n {
			fmt.Fprintf(&b, "%d%s", sec/u.n, u.s)
			sec %= u.n
		}
	}
	return b.String()
}

// present reports whether a router attribute holds a value (RouterOS shows
// some unset attributes as zero).
func present(v string) bool {
	switch v {
	case "", "0", "0s", "0.0.0.0", "00:00:00:00:00:00":
		return false
	}
	return true
}

func hostPrefix(ip string) string {
	if strings.Contains(ip, "/") {
		return ip
	}
	return ip + "/32"
}

// actual is what the router has, per menu, keyed like want.name.
type actual map[string]map[string]Row

func rowKey(menu string, r Row) string {
	if menu == MenuAddressList {
		return r["list"] + ":" + r["address"]
	}
	return r["name"]
}

// read fetches the managed menus (whole, or the plan's names only).
func (pl *plan) read(ctx context.Context, c *Conn) (actual, error) {
	out := actual{}
	menus := []string{MenuProfile, MenuSecret, MenuQueue, MenuAddressList}
	if pl.scope == nil {
		menus = append(menus, MenuHotspotUser)
	}
	for _, menu := range menus {
		out[menu] = map[string]Row{}
		var queries [][]string
		switch {
		case pl.scope == nil || menu == MenuAddressList:
			queries = [][]string{{menu + "/print"}}
			if menu == MenuAddressList {
				queries = [][]string{{menu + "/print", "?list=" + AllowedList}, {menu + "/print", "?list=" + SuspendedList}}
			}
		case menu == MenuProfile:
			names := map[string]bool{}
			for _, w := range pl.items {
				if w.menu == MenuProfile {
					names[w.name] = true
				}
			}
			for _, n := range sortedKeys(names) {
				queries = append(queries, []string{menu + "/print", "?name=" + n})
			}
		default:
			for _, n := range sortedKeys(pl.scope) {
				queries = append(queries, []string{menu + "/print", "?name=" + n})
			}
		}
		for _, q := range queries {
			rows, err := c.Run(ctx, q...)
			if err != nil {
				return nil, err
			}
			for _, r := range rows {
				if r[".id"] != "" {
					out[menu][rowKey(menu, r)] = r
				}
			}
		}
	}
	return out, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// step is one repair: the drift and the command that fixes it (nil: report only).
type step struct {
	drift Drift
	cmd   []string
	// kick ends a username's PPP (or hotspot) sessions after cmd.
	kickPPP, kickHS string
}

// diff compares the plan with the router and returns the repairs.
func (pl *plan) diff(act actual, pppLive, hsLive []Row) []step {
	var steps []step
	wanted := map[string]map[string]bool{}
	for _, w := range pl.items {
		if wanted[w.menu] == nil {
			wanted[w.menu] = map[string]bool{}
		}
		wanted[w.menu][w.name] = true
		row, ok := act[w.menu][w.name]
		d := Drift{Menu: w.menu, Name: w.name, NetworkUserID: w.userID, HotspotUserID: w.hsID}
		switch {
		case !ok && w.onlyIfPresent:
		case !ok:
			d.Kind, d.Detail = DriftMissing, "not on the router"
			cmd := []string{w.menu + "/add"}
			if w.menu != MenuAddressList {
				cmd = append(cmd, "=name="+w.name)
			}
			for _, k := range sortedAttrKeys(w.attrs) {
				cmd = append(cmd, "="+k+"="+w.attrs[k])
			}
			steps = append(steps, step{drift: d, cmd: append(cmd, "=comment="+w.marker)})
		case !owned(row["comment"]) && w.foreignOK:
			// The operator's own profile: used as it is.
		case !owned(row["comment"]) && w.menu == MenuSecret && row["password"] != "" && row["password"] == w.attrs["password"]:
			// An imported secret: same name and password as the subscriber made
			// from it. ispgraph adopts it by putting its marker in front of the
			// comment; the rest is compared on the next pass.
			d.Kind, d.Detail = DriftDifferent, "imported: not yet marked as ispgraph's"
			steps = append(steps, step{drift: d, cmd: []string{w.menu + "/set", "=.id=" + row[".id"],
				"=comment=" + strings.TrimSpace(w.marker+" "+row["comment"])}})
		case !owned(row["comment"]):
			d.Kind = DriftClash
			d.Detail = fmt.Sprintf("the name is taken by an item ispgraph did not create (comment %q): rename the subscriber or the router's item", row["comment"])
			steps = append(steps, step{drift: d})
		default:
			var diffs []string
			cmd := []string{w.menu + "/set", "=.id=" + row[".id"]}
			for _, k := range sortedAttrKeys(w.attrs) {
				have, visible := row[k]
				if k == "password" && !visible {
					continue // hidden without the sensitive policy: not comparable
				}
				if normBool(have) != normBool(w.attrs[k]) {
					cmd = append(cmd, "="+k+"="+w.attrs[k])
					if k == "password" {
						diffs = append(diffs, "password differs")
					} else {
						diffs = append(diffs, fmt.Sprintf("%s: router has %q, want %q", k, have, w.attrs[k]))
					}
				}
			}
			if m := markerOf(row["comment"]); m != w.marker {
				// Owned by another (deleted) item of ispgraph's: the marker moves,
				// the operator's text after it stays.
				cmd = append(cmd, "=comment="+w.marker+strings.TrimPrefix(row["comment"], m))
				diffs = append(diffs, fmt.Sprintf("owner: router has %s, want %s", m, w.marker))
			}
			if len(diffs) > 0 {
				d.Kind, d.Detail = DriftDifferent, strings.Join(diffs, "; ")
				st := step{drift: d, cmd: cmd}
				if w.menu == MenuSecret && normBool(row["profile"]) != w.attrs["profile"] {
					// A live session keeps its old profile (rate, address list)
					// until it reconnects: end it.
					st.kickPPP = w.name
				}
				steps = append(steps, st)
			}
			for _, k := range w.unset {
				if v := row[k]; present(v) {
					d.Kind, d.Detail = DriftDifferent, fmt.Sprintf("%s: router has %q, want none", k, v)
					steps = append(steps, step{drift: d, cmd: []string{w.menu + "/unset", "=numbers=" + row[".id"], "=value-name=" + k}})
				}
			}
		}
	}
	// Orphans: items ispgraph created that nothing wants any more. Profiles
	// stay (a package may come back; an unused profile harms no one).
	for _, menu := range []string{MenuSecret, MenuQueue, MenuAddressList, MenuHotspotUser} {
		for _, name := range sortedRowKeys(act[menu]) {
			row := act[menu][name]
			if wanted[menu][name] || !owned(row["comment"]) {
				continue
			}
			if pl.scope != nil && menu != MenuAddressList && !pl.scope[name] {
				continue
			}
			if menu == MenuHotspotUser && !strings.HasPrefix(row["comment"], OwnerPrefix+"hotspot:") {
				continue
			}
			if menu == MenuAddressList && pl.scope != nil && !pl.markers[markerOf(row["comment"])] {
				continue // a partial plan only answers for its own subscribers' entries
			}
			st := step{drift: Drift{Kind: DriftOrphan, Menu: menu, Name: name, Detail: "created by ispgraph (" + markerOf(row["comment"]) + "); nothing in the books wants it"},
				cmd: []string{menu + "/remove", "=.id=" + row[".id"]}}
			switch menu {
			case MenuSecret:
				st.kickPPP = name
			case MenuHotspotUser:
				st.kickHS = name
			}
			steps = append(steps, st)
		}
	}
	// Sessions of people who must be offline.
	for _, l := range pppLive {
		if id, ok := pl.pppOffline[l["name"]]; ok {
			steps = append(steps, step{drift: Drift{Kind: DriftOnline, Menu: MenuPPPActive, Name: l["name"], NetworkUserID: id,
				Detail: "online although not ACTIVE in the books"}, cmd: []string{MenuPPPActive + "/remove", "=.id=" + l[".id"]}})
		}
	}
	for _, l := range hsLive {
		if _, ok := pl.hsOffline[l["user"]]; ok {
			steps = append(steps, step{drift: Drift{Kind: DriftOnline, Menu: MenuHSActive, Name: l["user"],
				Detail: "online although not ACTIVE in the books"}, cmd: []string{MenuHSActive + "/remove", "=.id=" + l[".id"]}})
		}
	}
	return steps
}

func sortedAttrKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedRowKeys(m map[string]Row) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func normBool(v string) string {
	switch v {
	case "yes":
		return "true"
	case "no":
		return "false"
	}
	return v
}

// readLive lists the live PPP and hotspot sessions (one username's, or all).
func readLive(ctx context.Context, c *Conn, scope map[string]bool) (ppp, hs []Row, err error) {
	if scope == nil {
		if ppp, err = c.Run(ctx, MenuPPPActive+"/print", "=.proplist=.id,name"); err != nil {
			return nil, nil, err
		}
		hs, err = c.Run(ctx, MenuHSActive+"/print", "=.proplist=.id,user")
		return ppp, hs, err
	}
	for _, n := range sortedKeys(scope) {
		rows, err := c.Run(ctx, MenuPPPActive+"/print", "?name="+n, "=.proplist=.id,name")
		if err != nil {
			return nil, nil, err
		}
		ppp = append(ppp, rows...)
	}
	return ppp, nil, nil
}

// execute runs the repairs in order; it stops at the first failure and
// returns it with the number of commands that succeeded.
func execute(ctx context.Context, c *Conn, steps []step) (int, error) {
	n := 0
	for _, st := range steps {
		if st.cmd == nil {
			continue
		}
		if _, err := c.Run(ctx, st.cmd...); err != nil {
			return n, err
		}
		n++
		if st.kickPPP != "" {
			if err := kickSessions(ctx, c, st.kickPPP); err != nil {
				return n, err
			}
		}
		if st.kickHS != "" {
			if err := kickHotspot(ctx, c, st.kickHS); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// activeRouter loads a router that may be talked to, with its connection.
func (s *Service) activeRouter(ctx context.Context, routerID int) (*ent.Router, *Conn, error) {
	r, err := s.loadRouter(ctx, routerID)
	if err != nil {
		return nil, nil, err
	}
	if r.Status == router.StatusINACTIVE {
		return r, nil, permanent("router %q is inactive: activate it to reconcile", r.Name)
	}
	c, err := s.conn(r)
	return r, c, err
}

// RouterDrift compares router routerID of the tenant in ctx with the books
// and lists the differences, changing nothing.
func (s *Service) RouterDrift(ctx context.Context, routerID int) ([]Drift, error) {
	r, c, err := s.activeRouter(ctx, routerID)
	if err != nil {
		return nil, err
	}
	pl, err := s.desired(ctx, r, nil, true)
	if err != nil {
		return nil, err
	}
	steps, err := s.compare(ctx, r, c, pl)
	if err != nil {
		return nil, err
	}
	out := make([]Drift, len(steps))
	for i, st := range steps {
		out[i] = st.drift
	}
	return out, nil
}

// compare reads the router and diffs it against the plan, recording the
// router's reachability.
func (s *Service) compare(ctx context.Context, r *ent.Router, c *Conn, pl *plan) ([]step, error) {
	act, err := pl.read(ctx, c)
	var ppp, hs []Row
	if err == nil {
		ppp, hs, err = readLive(ctx, c, pl.scope)
	}
	if err != nil {
		s.recordReachability(ctx, r, 0, err, false)
		return nil, err
	}
	return pl.diff(act, ppp, hs), nil
}

// Reconcile makes router routerID of tenantID match the books: it computes
// the desired state (PPP profiles per package, PPP secrets, simple queues and
// the allowed address list for STATIC subscribers, hotspot users, who must be
// offline), reads the router, and applies the difference — only to items
// ispgraph owns; a name taken by an operator's item is reported as a clash
// and recorded on the subscriber. Subscribers found in step are recorded so
// (router_synced_at). It is what the schedule, a router coming back ONLINE,
// a fixed router setting and reconcileRouter run.
func (s *Service) Reconcile(ctx context.Context, tenantID, routerID int) (*ReconcileResult, error) {
	ctx = viewer.ForTenant(ctx, tenantID)
	r, c, err := s.activeRouter(ctx, routerID)
	if err != nil {
		return nil, err
	}
	pl, err := s.desired(ctx, r, nil, true)
	if err != nil {
		return nil, err
	}
	steps, err := s.compare(ctx, r, c, pl)
	if err != nil {
		return nil, err
	}
	res := &ReconcileResult{}
	for _, st := range steps {
		res.Drift = append(res.Drift, st.drift)
		if st.drift.Kind == DriftClash {
			res.Clashes++
		}
	}
	res.Applied, err = execute(ctx, c, steps)
	s.recordReachability(ctx, r, 0, err, err == nil)
	if err != nil {
		return res, err
	}
	res.InStep, err = s.recordPlan(ctx, pl, steps)
	return res, err
}

// recordPlan records each subscriber of an applied plan: in step, or the
// clash that keeps it from the router. A subscriber changed since the plan
// was read stays "not in step" (its own job is on the way).
func (s *Service) recordPlan(ctx context.Context, pl *plan, steps []step) (int, error) {
	clash := map[int]string{}
	for _, st := range steps {
		if st.drift.Kind == DriftClash && st.drift.NetworkUserID != 0 {
			clash[st.drift.NetworkUserID] = "name clash on the router: " + st.drift.Detail
		}
	}
	n := 0
	for _, u := range pl.users {
		var opErr error
		if msg, ok := clash[u.ID]; ok {
			opErr = permanent("%s", msg)
		} else if u.RouterSyncedAt != nil && u.RouterSyncError == nil {
			n++
			continue // already recorded in step
		}
		if err := s.recordProvision(ctx, u, opErr); err != nil && opErr == nil {
			return n, err
		}
		if opErr == nil {
			n++
		}
	}
	return n, nil
}

// kickHotspot removes a username's active hotspot sessions.
func kickHotspot(ctx context.Context, c *Conn, username string) error {
	live, err := c.Run(ctx, MenuHSActive+"/print", "?user="+username, "=.proplist=.id")
	if err != nil {
		return err
	}
	for _, l := range live {
		if _, err := c.Run(ctx, MenuHSActive+"/remove", "=.id="+l[".id"]); err != nil {
			return err
		}
	}
	return nil
}
