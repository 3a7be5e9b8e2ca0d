// W7: W1 reads (VUS VUs) while a second scenario floods W4 logins
// (LOGIN_VUS VUs, default VUS). The figure to watch is the `reads`
// scenario's latency: bcrypt must not starve the request workers.
import {
  VUS,
  adminAndIds,
  finished,
  getUser,
  loginRandomSeeded,
  makeOptions,
  pick,
  started,
} from './lib.js';

const LOGIN_VUS = parseInt(__ENV.LOGIN_VUS || String(VUS), 10);

export const options = makeOptions({
  reads: { exec: 'reads' },
  logins: { exec: 'logins', vus: LOGIN_VUS },
});

export function setup() {
  return started(adminAndIds());
}

export function teardown(data) {
  finished(data);
}

export function reads(data) {
  getUser(data.token, pick(data.ids));
}

export function logins() {
  loginRandomSeeded();
}
