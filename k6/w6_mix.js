// W6: a mix by request count: 70% W1 (get a user), 20% W2 (offset page),
// 5% W5 (patch self), 5% W4 (login). Each request carries an `op` tag, so
// the summary has the latency of each kind under the mix.
import {
  VUS,
  adminAndIds,
  finished,
  getUser,
  listRandomPage,
  loginRandomSeeded,
  loginSeededUsers,
  makeOptions,
  patchSelf,
  pick,
  started,
} from './lib.js';

export const options = makeOptions({ mix: {} });
for (const op of ['W1', 'W2', 'W4', 'W5']) {
  options.thresholds[`http_req_duration{scenario:mix,op:${op}}`] = ['max>=0'];
  options.thresholds[`http_reqs{scenario:mix,op:${op}}`] = ['count>=0'];
}

export function setup() {
  const { token, total, ids } = adminAndIds();
  return started({ token, total, ids, sessions: loginSeededUsers(VUS) });
}

export function teardown(data) {
  finished(data);
}

export default function (data) {
  const r = Math.random();
  if (r < 0.7) {
    getUser(data.token, pick(data.ids), { op: 'W1' });
  } else if (r < 0.9) {
    listRandomPage(data.token, data.total, { op: 'W2' });
  } else if (r < 0.95) {
    patchSelf(data.sessions[(__VU - 1) % data.sessions.length], { op: 'W5' });
  } else {
    loginRandomSeeded({ op: 'W4' });
  }
}
