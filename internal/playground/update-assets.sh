#!/usr/bin/env bash
# Refreshes the GraphiQL bundle the playground embeds (assets/vendor). The
# versions are pinned here; change them, run `make playground-assets`, check
# the playground in a browser (go test -run TestPlaygroundInBrowser ./cmd/ispgraph)
# and commit assets/vendor with its licence files.
#
# graphiql 3.x is the last major line that ships a UMD build (graphiql.min.js
# expects React and ReactDOM as globals); React 18 is the last with UMD builds.
set -euo pipefail

GRAPHIQL_VERSION=3.8.3
REACT_VERSION=18.3.1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
out=$here/assets/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts --save-exact \
	"graphiql@$GRAPHIQL_VERSION" "react@$REACT_VERSION" "react-dom@$REACT_VERSION" >/dev/null

rm -rf "$out"
mkdir -p "$out"
nm=$work/node_modules
cp "$nm/graphiql/graphiql.min.js" "$nm/graphiql/graphiql.min.css" "$out/"
cp "$nm/graphiql/LICENSE" "$out/LICENSE.graphiql"
cp "$nm/react/umd/react.production.min.js" "$out/"
cp "$nm/react/LICENSE" "$out/LICENSE.react"
cp "$nm/react-dom/umd/react-dom.production.min.js" "$out/"
cp "$nm/react-dom/LICENSE" "$out/LICENSE.react-dom"
# The bundles drop their source-map comments: the maps are not shipped.
sed -i -e '/^\/\/# sourceMappingURL=/d' -e 's#/\*\# sourceMappingURL=[^*]*\*/##' "$out"/*.js "$out"/*.css
{
	echo "graphiql $GRAPHIQL_VERSION (MIT), react $REACT_VERSION (MIT), react-dom $REACT_VERSION (MIT)"
	echo "from the npm registry by internal/playground/update-assets.sh"
	(cd "$out" && sha256sum -- *.js *.css)
} >"$out/VERSIONS"
echo "wrote $out"
