// Package playground owns the GraphiQL page served at / : the page, its
// script and GraphiQL's own bundle (graphiql, react, react-dom), all embedded
// in the binary so the playground works on a network with no way out.
// assets/vendor is produced by update-assets.sh (pinned npm versions, with
// their licence files); the page keeps the bearer token in memory only.
package playground

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// AssetPrefix is the path the page's scripts and styles are served under.
const AssetPrefix = "/playground/"

//go:embed assets
var files embed.FS

// csp lets the page load only what this server serves: scripts, styles and
// connections (POST and graphql-ws) to its own origin, the fonts GraphiQL
// inlines as data: URLs, and inline style attributes its editors set.
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"font-src 'self' data:; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Handler serves the page at / and its assets under AssetPrefix.
func Handler() http.Handler {
	sub, err := fs.Sub(files, "assets")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	page, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	assets := http.StripPrefix(AssetPrefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if !strings.HasPrefix(r.URL.Path, AssetPrefix) {
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			w.Write(page)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == AssetPrefix+"index.html" {
			http.NotFound(w, r) // no directory listings; the page lives at /
			return
		}
		// The bundle changes only with the binary; revalidate cheaply.
		h.Set("Cache-Control", "no-cache")
		assets.ServeHTTP(w, r)
	})
}
