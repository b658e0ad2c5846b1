package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ispgraph/ispgraph/ent"
	"github.com/ispgraph/ispgraph/ent/billingreport"
	"github.com/ispgraph/ispgraph/internal/apperr"
	"github.com/ispgraph/ispgraph/internal/auth"
	"github.com/ispgraph/ispgraph/internal/authz"
	"github.com/ispgraph/ispgraph/internal/report"
)

// jobsCookie carries a platform operator's session for gocraft's web UI,
// whose page fetches its API without an Authorization header.
const jobsCookie = "ispgraph_jobs_session"

// JobsSessionTTL is how long one web UI session lasts.
const JobsSessionTTL = 30 * time.Minute

// jobsUI serves gocraft/work's web UI under /jobs/ (the general queue) and
// /jobs/payments/ (the payment queue) to platform operators only: it shows
// every tenant's jobs. No credential ever travels in a URL: an operator signs
// in by POSTing the operator key to /jobs/login (the form there, or an
// "Authorization: Bearer isop_…" header), which sets a session cookie signed
// with an HMAC of the instance key, HttpOnly, SameSite=Strict, scoped to
// /jobs/ and valid for JobsSessionTTL. SameSite=Strict also keeps other sites
// from driving the UI's retry and delete buttons.
func jobsUI(a *auth.Service, key []byte, logger *slog.Logger, general, payments http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		switch r.URL.Path {
		case "/jobs/login":
			switch r.Method {
			case http.MethodGet:
				jobsLoginPage(w, http.StatusOK, "")
			case http.MethodPost:
				cred := r.PostFormValue("operator_key")
				if h := r.Header.Get("Authorization"); h != "" {
					cred, _ = strings.CutPrefix(strings.TrimSpace(h), "Bearer ")
				}
				name, ok := a.OperatorName(cred)
				if !ok {
					logger.WarnContext(r.Context(), "jobs web UI: sign-in refused")
					jobsLoginPage(w, http.StatusUnauthorized, "That is not a platform operator key.")
					return
				}
				logger.InfoContext(r.Context(), "jobs web UI: operator signed in", "operator", name)
				http.SetCookie(w, &http.Cookie{Name: jobsCookie, Value: signJobsSession(key, name, time.Now().Add(JobsSessionTTL)),
					Path: "/jobs/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
					MaxAge: int(JobsSessionTTL.Seconds())})
				http.Redirect(w, r, "/jobs/", http.StatusSeeOther)
			default:
				w.Header().Set("Allow", "GET, POST")
				http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
			}
			return
		case "/jobs/logout":
			http.SetCookie(w, &http.Cookie{Name: jobsCookie, Value: "", Path: "/jobs/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
			http.Redirect(w, r, "/jobs/login", http.StatusSeeOther)
			return
		}
		c, err := r.Cookie(jobsCookie)
		if err != nil || !validJobsSession(key, c.Value, time.Now()) {
			if r.Method == http.MethodGet && (r.URL.Path == "/jobs/" || r.URL.Path == "/jobs/payments/") {
				http.Redirect(w, r, "/jobs/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in at /jobs/login with a platform operator key", http.StatusUnauthorized)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/jobs/payments/") {
			payments.ServeHTTP(w, r)
			return
		}
		general.ServeHTTP(w, r)
	})
}

// signJobsSession returns "name.expiry.mac" (name base64url, expiry unix seconds).
func signJobsSession(key []byte, name string, exp time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(name)) + "." + strconv.FormatInt(exp.Unix(), 10)
	return payload + "." + jobsMAC(key, payload)
}

func validJobsSession(key []byte, v string, now time.Time) bool {
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return false
	}
	payload, mac := v[:i], v[i+1:]
	if !hmac.Equal([]byte(mac), []byte(jobsMAC(key, payload))) {
		return false
	}
	_, expText, ok := strings.Cut(payload, ".")
	exp, err := strconv.ParseInt(expText, 10, 64)
	return ok && err == nil && now.Unix() < exp
}

func jobsMAC(key []byte, payload string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("ispgraph jobs web UI session\x00"))
	m.Write([]byte(payload))
	return hex.EncodeToString(m.Sum(nil))
}

func jobsLoginPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html><title>ispgraph jobs</title>
<h1>Background jobs</h1><p>For platform operators: every tenant's jobs. %s</p>
<form method="post" action="/jobs/login"><label>Operator key <input type="password" name="operator_key" autocomplete="off"></label>
<button>Sign in</button></form>`, html.EscapeString(msg))
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
		cols := report.Columns[rep.Type]
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
