// W5: PATCH /users/{id} of the caller's own record (a merge patch of `name`).
// Each VU is a different seeded user, logged in during setup(), so the
// writes are to different rows: this measures write throughput, not one hot row.
import { VUS, finished, loginSeededUsers, makeOptions, patchSelf, started } from './lib.js';

export const options = makeOptions({ patch_self: {} });

export function setup() {
  return started({ sessions: loginSeededUsers(VUS) });
}

export function teardown(data) {
  finished(data);
}

export default function (data) {
  patchSelf(data.sessions[(__VU - 1) % data.sessions.length]);
}
