// W4: POST /auth/login as random seeded users: one bcrypt verify at the
// server's cost, the throttle reads/writes and a new session per login.
// Every login succeeds, so no failure counter grows; still, start the server
// with a high ROSTER_LOGIN_MAX_FAILURES_PER_IP (run.sh does) so that a few
// failures under load cannot turn into 429s for every VU behind one address.
import { finished, loginRandomSeeded, makeOptions, started } from './lib.js';

export const options = makeOptions({ login: {} });

export function setup() {
  return started({});
}

export function teardown(data) {
  finished(data);
}

export default function () {
  loginRandomSeeded();
}
