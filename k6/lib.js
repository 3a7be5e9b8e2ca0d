// Shared by every workload script: configuration from the environment, the
// options every run uses, and small request helpers whose checks look at
// response bodies, so that a 200 with the wrong content still counts as an error.
//
// Environment:
//   BASE_URL       server under test (default http://127.0.0.1:8080)
//   DURATION       length of each scenario (default 30s)
//   VUS            virtual users per scenario (default 16)
//   SEED_USERS     how many users examples/seed.rs inserted (default 10000)
//   SEED_PASSWORD  their password (default seed-password-123)
//   ADMIN_EMAIL    the seeded admin (default admin@seed.test)
//   ID_PAGES       pages of 100 ids fetched for the random-id workloads (default 10)

import http from 'k6/http';
import { check, fail } from 'k6';
import { Gauge } from 'k6/metrics';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const DURATION = __ENV.DURATION || '30s';
export const VUS = parseInt(__ENV.VUS || '16', 10);
export const SEED_USERS = parseInt(__ENV.SEED_USERS || '10000', 10);
export const PASSWORD = __ENV.SEED_PASSWORD || 'seed-password-123';
export const ADMIN_EMAIL = __ENV.ADMIN_EMAIL || 'admin@seed.test';
export const ID_PAGES = parseInt(__ENV.ID_PAGES || '10', 10);

// Requests made in setup() carry this tag, and every figure that run.sh
// reports is a sub-metric of one scenario, so set-up logins never show up in
// a workload's latency.
export const SETUP = { tags: { phase: 'setup' } };

// The `name` tag of every request the scripts make: the method and the
// server's route template (`:id` for `{id}`), and after a `?` what tells
// apart two uses of one route. makeOptions() gives each its own `http_reqs`
// sub-metric, so the summary export counts the requests per route, setup()
// included: run.sh compares these counts with the server's /metrics. A
// request under another name is counted only in the total, and run.sh reports
// the difference.
export const REQUEST_NAMES = [
  'GET /health/live',
  'GET /users',
  'GET /users?page',
  'GET /users?cursor',
  'GET /users/me',
  'GET /users/:id',
  'PATCH /users/:id',
  'POST /auth/login',
  'POST /auth/register',
];

/** Request params with the tag `name` unless `params` sets one; other tags are kept. */
function named(name, params) {
  const p = Object.assign({}, params || {});
  p.tags = Object.assign({ name }, p.tags || {});
  return p;
}

// Seconds from the end of setup() to the start of teardown(): the time the
// scenarios really ran, tail of in-flight requests included. Requests/s is
// counted over this, not over DURATION (which a slow request overruns) nor
// over k6's whole run (which includes setup's logins).
const scenarioSeconds = new Gauge('scenario_seconds');

/** Marks the end of setup(): wrap what setup() returns. */
export function started(data) {
  return Object.assign(data || {}, { startedAt: Date.now() });
}

/** Call from teardown(data): records how long the scenarios ran. */
export function finished(data) {
  if (data && data.startedAt) {
    scenarioSeconds.add((Date.now() - data.startedAt) / 1000);
  }
}

// Trend statistics in the summary; p(99) is not among k6's defaults.
const TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'];

/** The email of seeded user `i` (1-based), as examples/seed.rs writes it. */
export function seedEmail(i) {
  return `user${String(i).padStart(6, '0')}@seed.test`;
}

/** A uniformly random integer in [lo, hi]. */
export function randInt(lo, hi) {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

/** A uniformly random element. */
export function pick(items) {
  return items[Math.floor(Math.random() * items.length)];
}

/**
 * The thresholds of one scenario: fewer than 1% failed requests, more than
 * 99% passed checks, and the latency/count sub-metrics that run.sh reads.
 */
export function scenarioThresholds(name) {
  return {
    [`http_req_failed{scenario:${name}}`]: ['rate<0.01'],
    [`checks{scenario:${name}}`]: ['rate>0.99'],
    // Always true; listed so that the summary export carries these sub-metrics.
    [`http_req_duration{scenario:${name}}`]: ['max>=0'],
    [`http_reqs{scenario:${name}}`]: ['count>=0'],
  };
}

/**
 * Options for a script: `scenarios` maps a name to { exec, vus }; each runs
 * for DURATION at a constant number of VUs.
 */
export function makeOptions(scenarios) {
  const options = {
    scenarios: {},
    thresholds: {
      http_req_failed: ['rate<0.01'],
      checks: ['rate>0.99'],
    },
    summaryTrendStats: TREND_STATS,
    setupTimeout: __ENV.SETUP_TIMEOUT || '300s',
    // Several VUs hit the same few hosts; reuse connections as a client would.
    noConnectionReuse: false,
    discardResponseBodies: false,
  };
  for (const [name, s] of Object.entries(scenarios)) {
    options.scenarios[name] = {
      executor: 'constant-vus',
      exec: s.exec || 'default',
      vus: s.vus || VUS,
      duration: DURATION,
      gracefulStop: '10s',
    };
    Object.assign(options.thresholds, scenarioThresholds(name));
  }
  // Always true; listed so that the summary export counts requests per name.
  for (const name of REQUEST_NAMES) {
    options.thresholds[`http_reqs{name:${name}}`] = ['count>=0'];
  }
  return options;
}

/** JSON body of a response, or null when it is not JSON. */
export function json(res) {
  try {
    return res.json();
  } catch (_) {
    return null;
  }
}

/** Headers for an authenticated request. */
export function bearer(token, extra) {
  return Object.assign({ Authorization: `Bearer ${token}` }, extra || {});
}

/**
 * POST /auth/login; returns the token pair or null. The checks look at the
 * body: an access token and the `Bearer` type.
 */
export function login(email, password, params) {
  const res = http.post(
    `${BASE_URL}/auth/login`,
    JSON.stringify({ email, password }),
    Object.assign(
      { headers: { 'Content-Type': 'application/json' } },
      named('POST /auth/login', params),
    ),
  );
  const body = json(res);
  const ok = check(res, {
    'login: status 200': (r) => r.status === 200,
    'login: access token': () => !!body && typeof body.access_token === 'string' && body.access_token.length > 20,
    'login: token type Bearer': () => !!body && body.token_type === 'Bearer',
  });
  return ok ? body : null;
}

/** Logs in in setup(), failing the whole run (non-zero exit) when it cannot. */
export function mustLogin(email, password) {
  const tokens = login(email, password, SETUP);
  if (!tokens) {
    fail(`setup: cannot log in as ${email} at ${BASE_URL}`);
  }
  return tokens.access_token;
}

/** GET /users with a query string, as admin; returns the response and its body. */
export function listUsers(token, query, params) {
  const res = http.get(
    `${BASE_URL}/users?${query}`,
    Object.assign({ headers: bearer(token) }, named('GET /users', params)),
  );
  return { res, body: json(res) };
}

/** Checks that a list response is a well-formed page of `perPage` or fewer users. */
export function checkPage(res, body, perPage) {
  return check(res, {
    'list: status 200': (r) => r.status === 200,
    'list: items': () => !!body && Array.isArray(body.items) && body.items.length <= perPage,
    'list: users have ids and emails': () =>
      !!body && body.items.every((u) => typeof u.id === 'string' && typeof u.email === 'string'),
    'list: total': () => !!body && typeof body.total === 'number',
  });
}

/**
 * The admin's token, the number of users, and ids spread over the whole
 * listing: ID_PAGES pages of 100 at evenly spaced offsets, so that the random
 * reads do not all hit the newest rows.
 */
export function adminAndIds() {
  const token = mustLogin(ADMIN_EMAIL, PASSWORD);
  const first = listUsers(token, 'per_page=100&page=1', SETUP);
  if (first.res.status !== 200 || !first.body) {
    fail(`setup: GET /users answered ${first.res.status}: ${first.res.body}`);
  }
  const total = first.body.total;
  const lastPage = Math.max(1, Math.ceil(total / 100));
  const ids = first.body.items.map((u) => u.id);
  const pages = Math.min(ID_PAGES, lastPage);
  for (let k = 1; k < pages; k++) {
    const page = 1 + Math.floor((k * (lastPage - 1)) / Math.max(1, pages - 1));
    const { res, body } = listUsers(token, `per_page=100&page=${page}`, SETUP);
    if (res.status !== 200 || !body) {
      fail(`setup: GET /users?page=${page} answered ${res.status}`);
    }
    body.items.forEach((u) => ids.push(u.id));
  }
  if (ids.length === 0) {
    fail('setup: no users to read; seed the database first');
  }
  return { token, total, ids };
}

/** W1: GET /users/{id} as admin; checks the body is that user. */
export function getUser(token, id, tags) {
  const res = http.get(`${BASE_URL}/users/${id}`, {
    headers: bearer(token),
    tags: Object.assign({ name: 'GET /users/:id' }, tags || {}),
  });
  const body = json(res);
  check(res, {
    'get: status 200': (r) => r.status === 200,
    'get: the requested user': () => !!body && body.id === id && typeof body.email === 'string',
    'get: ETag': (r) => !!r.headers['Etag'],
  });
  return res;
}

/** W2: GET /users?per_page=20&page=<random page within range>. */
export function listRandomPage(token, total, tags) {
  const lastPage = Math.max(1, Math.ceil(total / 20));
  const page = randInt(1, lastPage);
  const { res, body } = listUsers(token, `per_page=20&page=${page}`, {
    tags: Object.assign({ name: 'GET /users?page' }, tags || {}),
  });
  checkPage(res, body, 20);
  check(res, {
    'list: full page unless last': () =>
      !!body && (page === lastPage || body.items.length === 20),
  });
  return res;
}

/**
 * Logs in `count` different seeded users (user000001 …) and returns, for
 * each, its access token and id. Logins that succeed reset the per-account
 * failure counter and never count against the per-address limit, so this
 * cannot run into a 429 unless the password is wrong.
 */
export function loginSeededUsers(count) {
  if (count > SEED_USERS) {
    fail(`setup: ${count} VUs need ${count} seeded users, only ${SEED_USERS} are seeded`);
  }
  const sessions = [];
  for (let i = 1; i <= count; i++) {
    const email = seedEmail(i);
    const token = mustLogin(email, PASSWORD);
    const me = http.get(
      `${BASE_URL}/users/me`,
      Object.assign({ headers: bearer(token) }, named('GET /users/me', SETUP)),
    );
    const body = json(me);
    if (me.status !== 200 || !body || body.email !== email) {
      fail(`setup: GET /users/me as ${email} answered ${me.status}`);
    }
    sessions.push({ token, id: body.id, email });
  }
  return sessions;
}

/** W5: PATCH the caller's own name (merge patch); checks the new name came back. */
export function patchSelf(session, tags) {
  const name = `Load ${__VU}-${__ITER}`;
  const res = http.patch(`${BASE_URL}/users/${session.id}`, JSON.stringify({ name }), {
    headers: bearer(session.token, { 'Content-Type': 'application/merge-patch+json' }),
    tags: Object.assign({ name: 'PATCH /users/:id' }, tags || {}),
  });
  const body = json(res);
  check(res, {
    'patch: status 200': (r) => r.status === 200,
    'patch: name changed': () => !!body && body.id === session.id && body.name === name,
  });
  return res;
}

/** W4: log in as a random seeded user. */
export function loginRandomSeeded(tags) {
  const tokens = login(seedEmail(randInt(1, SEED_USERS)), PASSWORD, {
    tags: Object.assign({ name: 'POST /auth/login' }, tags || {}),
  });
  return tokens;
}
