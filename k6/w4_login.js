// W4: POST /auth/login as random seeded users: one bcrypt verify at the
// server's cost, the throttle reads/writes and a new session per login.
// Every login succeeds, so no failure counter grows; still, start the server
// with a high ROSTER_LOGIN_MAX_FAILURES_PER_IP (run.sh does) so that a few
// failures under load cannot turn into 429s for every VU behind one address.
import { loginRandomSeeded, makeOptions } from './lib.js';

export const options = makeOptions({ login: {} });

export default function () {
  loginRandomSeeded();
}
