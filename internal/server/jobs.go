package server

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/billingreport"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/workers"
)

// jobsCookie carries the bearer token for gocraft's web UI, whose page
// fetches its API without an Authorization header.
const jobsCookie = "ispgraph_jobs_token"

// jobsUI serves gocraft/work's web UI under /jobs/ to staff holding
// jobs:read. A browser opens /jobs/?token=<bearer token> once; the token is
// then kept in an HttpOnly, SameSite=Strict cookie scoped to /jobs/.
func jobsUI(a *auth.Service, ui http.Handler) http.Handler {
	check := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := auth.RequirePermission(r.Context(), authz.JobsRead); err != nil {
			httpError(w, err)
			return
		}
		ui.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("token"); tok != "" && r.Header.Get("Authorization") == "" {
			http.SetCookie(w, &http.Cookie{Name: jobsCookie, Value: tok, Path: "/jobs/", HttpOnly: true,
				Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
			r.Header.Set("Authorization", "Bearer "+tok)
		} else if c, err := r.Cookie(jobsCookie); err == nil && r.Header.Get("Authorization") == "" {
			r.Header.Set("Authorization", "Bearer "+c.Value)
		}
		check.ServeHTTP(w, r)
	})
}

// reportCSV serves GET /reports/{id}.csv: a DONE billing report's rows, to
// callers with reports:run in the report's tenant.
func reportCSV(a *auth.Service, client *ent.Client) http.Handler {
	return a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if _, err := auth.RequirePermission(ctx, authz.ReportsRun); err != nil {
			httpError(w, err)
			return
		}
		idText, ok := strings.CutSuffix(r.PathValue("file"), ".csv")
		id, err := strconv.Atoi(idText)
		if !ok || err != nil {
			httpError(w, apperr.E(apperr.NotFound, "no such report: use the csvURL of a billing report"))
			return
		}
		rep, err := client.BillingReport.Get(ctx, id)
		if err != nil {
			if ent.IsNotFound(err) {
				err = apperr.E(apperr.NotFound, "no such report")
			}
			httpError(w, err)
			return
		}
		if rep.Status != billingreport.StatusDONE {
			httpError(w, apperr.E(apperr.Conflict, "the report is %s, not DONE yet: try again shortly", strings.ToLower(string(rep.Status))))
			return
		}
		cols := workers.ReportColumns[rep.Type]
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%d.csv"`, strings.ToLower(string(rep.Type)), rep.ID))
		cw := csv.NewWriter(w)
		_ = cw.Write(cols)
		for _, row := range rep.Rows {
			rec := make([]string, len(cols))
			for i, c := range cols {
				rec[i] = csvCell(row[c])
			}
			_ = cw.Write(rec)
		}
		cw.Flush()
	}))
}

// httpError writes an apperr as a plain HTTP error; anything else is a 500
// without detail.
func httpError(w http.ResponseWriter, err error) {
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	status := http.StatusInternalServerError
	switch ae.Code {
	case apperr.Unauthenticated:
		status = http.StatusUnauthorized
	case apperr.Forbidden:
		status = http.StatusForbidden
	case apperr.NotFound:
		status = http.StatusNotFound
	case apperr.Conflict:
		status = http.StatusConflict
	case apperr.BadUserInput:
		status = http.StatusBadRequest
	}
	http.Error(w, ae.Message, status)
}
