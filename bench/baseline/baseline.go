// Package baseline is the hand-written server the benchmark compares ispgraph
// with: net/http and a pgx pool, no GraphQL, no ORM, no policies. Each of the
// benchmark's four requests is answered with ONE SQL statement that also
// resolves the tenant (named by the X-Tenant header, the stand-in for a token
// check) and builds the whole JSON response in Postgres with json_agg and
// json_build_object. It is what a careful engineer would write by hand for
// these four requests, and so the yardstick for ispgraph's overhead.
package baseline

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TenantHeader names the tenant (its slug) of a request.
const TenantHeader = "X-Tenant"

// Handler answers
//
//	GET /billing?first=50&after=<subscriber id>   the partner billing page
//	GET /subscriber?id=<subscriber id>            one subscriber's detail, 12 invoices with payments
//	GET /dashboard                                the staff dashboard
//	GET /export?first=500&since=<RFC 3339>[&after_at=<RFC 3339 nano>&after_id=<id>]
//	                                              invoices changed since, by keyset
//
// with a JSON body built by one SQL statement each.
func Handler(pool *pgxpool.Pool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /billing", func(w http.ResponseWriter, r *http.Request) {
		first, after, ok := ints(w, r, "first", 50, "after", 0)
		if ok {
			answer(w, r, pool, billingSQL, r.Header.Get(TenantHeader), first, after)
		}
	})
	mux.HandleFunc("GET /subscriber", func(w http.ResponseWriter, r *http.Request) {
		id, _, ok := ints(w, r, "id", 0, "", 0)
		if ok {
			answer(w, r, pool, subscriberSQL, r.Header.Get(TenantHeader), id)
		}
	})
	mux.HandleFunc("GET /dashboard", func(w http.ResponseWriter, r *http.Request) {
		answer(w, r, pool, dashboardSQL, r.Header.Get(TenantHeader))
	})
	mux.HandleFunc("GET /export", func(w http.ResponseWriter, r *http.Request) {
		first, afterID, ok := ints(w, r, "first", 500, "after_id", 0)
		if !ok {
			return
		}
		q := r.URL.Query()
		since, err := time.Parse(time.RFC3339Nano, q.Get("since"))
		if err != nil {
			http.Error(w, "since: an RFC 3339 time is required", http.StatusBadRequest)
			return
		}
		afterAt := since
		if s := q.Get("after_at"); s != "" {
			if afterAt, err = time.Parse(time.RFC3339Nano, s); err != nil {
				http.Error(w, "after_at: not an RFC 3339 time", http.StatusBadRequest)
				return
			}
		}
		answer(w, r, pool, exportSQL, r.Header.Get(TenantHeader), first, since, afterAt, afterID)
	})
	return mux
}

// ints reads two integer query parameters with defaults.
func ints(w http.ResponseWriter, r *http.Request, a string, da int64, b string, db int64) (int64, int64, bool) {
	q := r.URL.Query()
	read := func(name string, def int64) (int64, bool) {
		s := q.Get(name)
		if name == "" || s == "" {
			return def, true
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			http.Error(w, name+": a non-negative integer is required", http.StatusBadRequest)
			return 0, false
		}
		return n, true
	}
	x, ok := read(a, da)
	if !ok {
		return 0, 0, false
	}
	y, ok := read(b, db)
	return x, y, ok
}

// answer runs one statement returning one JSON value (NULL when the tenant or
// the row does not exist) and writes it.
func answer(w http.ResponseWriter, r *http.Request, pool *pgxpool.Pool, sql string, args ...any) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var body []byte
	err := pool.QueryRow(ctx, sql, args...).Scan(&body)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || (err == nil && body == nil):
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, `{"error":"internal error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// money formats an amount in minor units as ispgraph's Money scalar does ("1250.00").
func money(expr string) string { return "((" + expr + ")::numeric / 100)::numeric(20,2)::text" }

// billingSQL is the partner billing page: $1 tenant slug, $2 page size, $3
// the id after which the page starts.
var billingSQL = `
WITH t AS (SELECT id FROM tenants WHERE slug = $1),
page AS (
  SELECT n.* FROM network_users n JOIN t ON n.tenant_id = t.id
  WHERE n.status = 'ACTIVE' AND n.id > $3 ORDER BY n.id LIMIT $2 + 1
)
SELECT json_build_object(
  'totalCount', (SELECT count(*) FROM network_users n JOIN t ON n.tenant_id = t.id WHERE n.status = 'ACTIVE'),
  'hasNextPage', (SELECT count(*) FROM page) > $2,
  'endCursor', (SELECT max(id) FROM (SELECT id FROM page ORDER BY id LIMIT $2) p),
  'edges', coalesce((SELECT json_agg(json_build_object(
    'id', p.id, 'username', p.username, 'fullName', p.full_name, 'status', p.status,
    'serviceType', p.service_type,
    'balance', ` + money(`coalesce((SELECT sum(i.total - i.amount_paid) FROM invoices i
        WHERE i.tenant_id = p.tenant_id AND i.network_user_id = p.id AND i.status IN ('PENDING', 'OVERDUE')), 0) - p.credit`) + `,
    'package', (SELECT json_build_object('id', s.id, 'name', s.name, 'price', ` + money("s.price") + `,
        'bandwidthDownKbps', s.bandwidth_down_kbps) FROM packages s WHERE s.id = p.package_id AND s.tenant_id = p.tenant_id),
    'invoices', (SELECT coalesce(json_agg(json_build_object(
        'id', i.id, 'number', i.number, 'status', i.status, 'total', ` + money("i.total") + `,
        'amountPaid', ` + money("i.amount_paid") + `, 'dueDate', i.due_date,
        'payments', (SELECT coalesce(json_agg(json_build_object('id', y.id, 'amount', ` + money("y.amount") + `,
            'method', y.method, 'status', y.status, 'paidAt', y.paid_at) ORDER BY y.id), '[]')
          FROM payments y WHERE y.tenant_id = i.tenant_id AND y.invoice_id = i.id)
      ) ORDER BY i.issued_at DESC), '[]')
      FROM (SELECT * FROM invoices i WHERE i.tenant_id = p.tenant_id AND i.network_user_id = p.id
            ORDER BY i.issued_at DESC LIMIT 3) i)
  ) ORDER BY p.id) FROM (SELECT * FROM page ORDER BY id LIMIT $2) p), '[]')
) FROM t`

// subscriberSQL is one subscriber's detail: $1 tenant slug, $2 subscriber id.
var subscriberSQL = `
WITH t AS (SELECT id FROM tenants WHERE slug = $1)
SELECT json_build_object(
  'id', n.id, 'username', n.username, 'fullName', n.full_name, 'email', n.email, 'phone', n.phone,
  'status', n.status, 'serviceType', n.service_type, 'billingType', n.billing_type, 'expiresAt', n.expires_at,
  'balance', ` + money(`coalesce((SELECT sum(i.total - i.amount_paid) FROM invoices i
      WHERE i.tenant_id = n.tenant_id AND i.network_user_id = n.id AND i.status IN ('PENDING', 'OVERDUE')), 0) - n.credit`) + `,
  'package', (SELECT json_build_object('id', s.id, 'name', s.name, 'price', ` + money("s.price") + `,
      'bandwidthDownKbps', s.bandwidth_down_kbps, 'bandwidthUpKbps', s.bandwidth_up_kbps)
    FROM packages s WHERE s.id = n.package_id AND s.tenant_id = n.tenant_id),
  'invoices', (SELECT coalesce(json_agg(json_build_object(
      'id', i.id, 'number', i.number, 'status', i.status, 'amount', ` + money("i.amount") + `,
      'tax', ` + money("i.tax") + `, 'total', ` + money("i.total") + `,
      'amountPaid', ` + money("i.amount_paid") + `, 'issuedAt', i.issued_at, 'dueDate', i.due_date, 'paidAt', i.paid_at,
      'payments', (SELECT coalesce(json_agg(json_build_object('id', y.id, 'number', y.number,
          'amount', ` + money("y.amount") + `, 'method', y.method, 'status', y.status, 'paidAt', y.paid_at) ORDER BY y.id), '[]')
        FROM payments y WHERE y.tenant_id = i.tenant_id AND y.invoice_id = i.id)
    ) ORDER BY i.issued_at DESC), '[]')
    FROM (SELECT * FROM invoices i WHERE i.tenant_id = n.tenant_id AND i.network_user_id = n.id
          ORDER BY i.issued_at DESC LIMIT 12) i)
) FROM network_users n JOIN t ON n.tenant_id = t.id WHERE n.id = $2`

// dashboardSQL is the staff dashboard: $1 tenant slug. Revenue periods
// follow the tenant's time zone.
var dashboardSQL = `
WITH t AS (SELECT id, timezone FROM tenants WHERE slug = $1),
subs AS (
  SELECT n.service_type, n.status, count(*) AS n FROM network_users n JOIN t ON n.tenant_id = t.id
  GROUP BY n.service_type, n.status
),
inv AS (
  SELECT count(*) AS total,
    count(*) FILTER (WHERE i.status = 'PENDING') AS pending,
    count(*) FILTER (WHERE i.status = 'OVERDUE') AS overdue,
    count(*) FILTER (WHERE i.status = 'PAID') AS paid,
    coalesce(sum(i.total), 0) AS total_amount, coalesce(sum(i.amount_paid), 0) AS paid_amount
  FROM invoices i JOIN t ON i.tenant_id = t.id
),
bounds AS (
  SELECT date_trunc('day', now() AT TIME ZONE t.timezone) AT TIME ZONE t.timezone AS day,
         date_trunc('month', now() AT TIME ZONE t.timezone) AT TIME ZONE t.timezone AS month,
         date_trunc('year', now() AT TIME ZONE t.timezone) AT TIME ZONE t.timezone AS year
  FROM t
),
rev AS (
  SELECT coalesce(sum(y.amount) FILTER (WHERE y.paid_at >= b.day), 0) AS today,
         coalesce(sum(y.amount) FILTER (WHERE y.paid_at >= b.month), 0) AS month,
         coalesce(sum(y.amount), 0) AS year
  FROM bounds b JOIN t ON true
  JOIN payments y ON y.tenant_id = t.id AND y.status = 'COMPLETED' AND y.paid_at >= b.year
  GROUP BY b.day, b.month
)
SELECT json_build_object(
  'subscribers', json_build_object(
    'total', (SELECT coalesce(sum(n), 0) FROM subs),
    'active', (SELECT coalesce(sum(n), 0) FROM subs WHERE status = 'ACTIVE'),
    'suspended', (SELECT coalesce(sum(n), 0) FROM subs WHERE status = 'SUSPENDED'),
    'byServiceType', (SELECT coalesce(json_agg(json_build_object('serviceType', service_type, 'total', total) ORDER BY service_type), '[]')
      FROM (SELECT service_type, sum(n) AS total FROM subs GROUP BY service_type) s)),
  'invoices', (SELECT json_build_object('total', total, 'pending', pending, 'overdue', overdue, 'paid', paid,
      'totalAmount', ` + money("total_amount") + `, 'paidAmount', ` + money("paid_amount") + `) FROM inv),
  'revenue', json_build_object(
    'today', ` + money("coalesce((SELECT today FROM rev), 0)") + `,
    'thisMonth', ` + money("coalesce((SELECT month FROM rev), 0)") + `,
    'thisYear', ` + money("coalesce((SELECT year FROM rev), 0)") + `),
  'monthlyRecurringRevenue', ` + money(`coalesce((SELECT sum(s.price) FROM network_users n JOIN t ON n.tenant_id = t.id
      JOIN packages s ON s.id = n.package_id WHERE n.status = 'ACTIVE' AND s.billing_cycle = 'MONTHLY'), 0)`) + `,
  'onlineSessions', (SELECT count(*) FROM network_sessions x JOIN t ON x.tenant_id = t.id WHERE x.status = 'ACTIVE')
) FROM t`

// exportSQL is one page of invoices changed since a time, by keyset over
// (updated_at, id): $1 tenant slug, $2 page size, $3 since, $4 and $5 the
// position after which the page starts.
var exportSQL = `
WITH t AS (SELECT id FROM tenants WHERE slug = $1),
page AS (
  SELECT i.* FROM invoices i JOIN t ON i.tenant_id = t.id
  WHERE i.updated_at >= $3 AND (i.updated_at, i.id) > ($4::timestamptz, $5::bigint)
  ORDER BY i.updated_at, i.id LIMIT $2 + 1
),
shown AS (SELECT * FROM page ORDER BY updated_at, id LIMIT $2)
SELECT json_build_object(
  'hasNextPage', (SELECT count(*) FROM page) > $2,
  'endCursor', (SELECT json_build_object('updatedAt', updated_at, 'id', id) FROM shown ORDER BY updated_at DESC, id DESC LIMIT 1),
  'edges', coalesce((SELECT json_agg(json_build_object(
    'id', i.id, 'number', i.number, 'status', i.status, 'amount', ` + money("i.amount") + `,
    'tax', ` + money("i.tax") + `, 'total', ` + money("i.total") + `,
    'amountPaid', ` + money("i.amount_paid") + `, 'periodStart', i.period_start, 'periodEnd', i.period_end,
    'issuedAt', i.issued_at, 'dueDate', i.due_date, 'paidAt', i.paid_at, 'updatedAt', i.updated_at
  ) ORDER BY i.updated_at, i.id) FROM shown i), '[]')
) FROM t`
