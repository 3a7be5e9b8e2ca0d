// W1: GET /users/{id} as admin over random ids. Per request: bearer check
// (JWT verify + the session/user query), one primary-key read, ETag.
import { adminAndIds, finished, getUser, makeOptions, pick, started } from './lib.js';

export const options = makeOptions({ get_user: {} });

export function setup() {
  return started(adminAndIds());
}

export function teardown(data) {
  finished(data);
}

export default function (data) {
  getUser(data.token, pick(data.ids));
}
