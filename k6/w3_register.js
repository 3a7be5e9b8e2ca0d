// W3: POST /auth/register with a unique email per VU and iteration: one
// bcrypt hash at the server's cost plus one insert. The per-account and
// per-address login limits do not apply to sign-up.
import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, finished, json, makeOptions, started } from './lib.js';

export const options = makeOptions({ register: {} });

export function setup() {
  // Distinguishes this run's emails from an earlier run's on the same database.
  return started({ run: `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}` });
}

export function teardown(data) {
  finished(data);
}

export default function (data) {
  const email = `w3-${data.run}-${__VU}-${__ITER}@load.test`;
  const res = http.post(
    `${BASE_URL}/auth/register`,
    JSON.stringify({ email, password: 'load-test-password-1', name: `Load ${__VU}` }),
    { headers: { 'Content-Type': 'application/json' }, tags: { name: 'POST /auth/register' } },
  );
  const body = json(res);
  check(res, {
    'register: status 201': (r) => r.status === 201,
    'register: the new user': () => !!body && body.email === email && body.role === 'user',
    'register: Location': (r) => !!body && r.headers['Location'] === `/users/${body.id}`,
  });
}
