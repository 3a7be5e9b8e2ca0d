// W1: GET /users/{id} as admin over random ids. Per request: bearer check
// (JWT verify + the session/user query), one primary-key read, ETag.
import { adminAndIds, getUser, makeOptions, pick } from './lib.js';

export const options = makeOptions({ get_user: {} });

export function setup() {
  return adminAndIds();
}

export default function (data) {
  getUser(data.token, pick(data.ids));
}
