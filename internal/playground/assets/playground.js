// The ispgraph playground: GraphiQL (served from this binary, nothing from the
// network) with a sign-in bar. The bearer token lives in this page's memory
// only: it is never written to localStorage, sessionStorage or a cookie, and
// GraphiQL itself is given an in-memory store, so closing the tab forgets it.
(function () {
  'use strict';
  var root = document.getElementById('graphiql');
  var endpoint = root.getAttribute('data-endpoint');
  var wsEndpoint = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + endpoint;
  var token = null;

  // memoryStorage has the Storage shape GraphiQL asks for; it keeps tabs,
  // queries and headers for the life of the page and writes nothing.
  function memoryStorage() {
    var items = new Map();
    return {
      getItem: function (k) { return items.has(k) ? items.get(k) : null; },
      setItem: function (k, v) { items.set(k, String(v)); },
      removeItem: function (k) { items.delete(k); },
      clear: function () { items.clear(); },
      get length() { return items.size; },
    };
  }
  var storage = memoryStorage();

  function hasAuthorization(headers) {
    return Object.keys(headers || {}).some(function (k) { return k.toLowerCase() === 'authorization'; });
  }

  function authHeaders(extra) {
    var h = Object.assign({}, extra || {});
    if (token && !hasAuthorization(h)) { h.Authorization = 'Bearer ' + token; }
    return h;
  }

  // post sends one GraphQL request; the Headers pane wins over the sign-in.
  function post(body, headers) {
    return fetch(endpoint, {
      method: 'POST',
      credentials: 'omit',
      headers: Object.assign({ 'Content-Type': 'application/json', Accept: 'application/json' }, authHeaders(headers)),
      body: JSON.stringify(body),
    }).then(function (r) { return r.json(); });
  }

  // isSubscription tells whether the operation to run is a subscription.
  function isSubscription(params) {
    try {
      var ops = GraphiQL.GraphQL.parse(params.query).definitions.filter(function (d) {
        return d.kind === 'OperationDefinition';
      });
      var op = params.operationName
        ? ops.find(function (d) { return d.name && d.name.value === params.operationName; })
        : ops[0];
      return !!op && op.operation === 'subscription';
    } catch (e) {
      return false;
    }
  }

  // makeFetcher is rebuilt on every sign-in and sign-out, which makes GraphiQL
  // fetch the schema again with the new credentials. Queries and mutations go
  // over POST; subscriptions over graphql-ws, the token in connection_init.
  function makeFetcher() {
    var ws = GraphiQL.createFetcher({
      url: endpoint,
      subscriptionUrl: wsEndpoint,
      wsConnectionParams: token ? { Authorization: 'Bearer ' + token } : {},
    });
    return function (params, opts) {
      if (isSubscription(params)) { return ws(params, opts); }
      return post(params, opts && opts.headers);
    };
  }

  var defaultQuery = [
    '# Sign in above (the embedded default prints the demo login), then run:',
    'query PartnerBilling($first: Int = 5, $after: Cursor) {',
    '  networkUsers(first: $first, after: $after, where: {status: ACTIVE}) {',
    '    totalCount',
    '    pageInfo { hasNextPage endCursor }',
    '    edges { node {',
    '      id username fullName status serviceType balance',
    '      package { id name price bandwidthDownKbps }',
    '      invoices(first: 3, orderBy: {field: ISSUED_AT, direction: DESC}) {',
    '        edges { node { id number status total amountPaid dueDate',
    '          payments { id amount method status paidAt } } }',
    '      }',
    '    } }',
    '  }',
    '}',
    '',
  ].join('\n');

  var reactRoot = ReactDOM.createRoot(root);
  function render() {
    reactRoot.render(React.createElement(GraphiQL, {
      fetcher: makeFetcher(),
      storage: storage,
      defaultQuery: defaultQuery,
      shouldPersistHeaders: false,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: true,
    }));
  }

  var form = document.getElementById('signin');
  var status = document.getElementById('signin-status');
  var signout = document.getElementById('signout-button');
  var signinButton = document.getElementById('signin-button');

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? 'error' : '';
  }

  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var tenant = form.tenant.value.trim();
    say('Signing in…');
    post({
      query: 'mutation Login($t: String, $e: String!, $p: String!) { login(input: {tenant: $t, email: $e, password: $p}) { token expiresAt } }',
      variables: { t: tenant || null, e: form.email.value.trim(), p: form.password.value },
    }).then(function (res) {
      if (res.errors && res.errors.length) { throw new Error(res.errors[0].message); }
      token = res.data.login.token;
      form.password.value = '';
      signout.hidden = false;
      signinButton.hidden = true;
      say('Signed in as ' + form.email.value.trim() + (tenant ? ' (' + tenant + ')' : '') + ' until ' + res.data.login.expiresAt + '; the token is kept in this tab only.');
      render();
    }).catch(function (err) {
      say('Sign-in failed: ' + err.message, true);
    });
  });

  signout.addEventListener('click', function () {
    var old = token;
    token = null;
    signout.hidden = true;
    signinButton.hidden = false;
    say('Signed out.');
    render();
    fetch(endpoint, {
      method: 'POST', credentials: 'omit',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + old },
      body: JSON.stringify({ query: 'mutation { logout }' }),
    }).catch(function () {});
  });

  render();
})();
