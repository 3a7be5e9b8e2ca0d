// W0: GET /health/live. The floor: routing, middleware (request id, metrics,
// tracing) and JSON, with no database and no authentication.
import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, finished, json, makeOptions, started } from './lib.js';

export const options = makeOptions({ live: {} });

export function setup() {
  return started({});
}

export function teardown(data) {
  finished(data);
}

export default function () {
  const res = http.get(`${BASE_URL}/health/live`, { tags: { name: 'GET /health/live' } });
  const body = json(res);
  check(res, {
    'live: status 200': (r) => r.status === 200,
    'live: status ok': () => !!body && body.status === 'ok',
    'live: X-Request-Id': (r) => !!r.headers['X-Request-Id'],
  });
}
