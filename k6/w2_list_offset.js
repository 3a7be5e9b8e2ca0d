// W2: GET /users?per_page=20&page=<random page within range>, as admin.
// Offset paging: the deeper the page, the more rows the database skips, and
// every page also counts the total.
import { adminAndIds, finished, listRandomPage, makeOptions, started } from './lib.js';

export const options = makeOptions({ list_offset: {} });

export function setup() {
  const { token, total } = adminAndIds();
  return started({ token, total });
}

export function teardown(data) {
  finished(data);
}

export default function (data) {
  listRandomPage(data.token, data.total);
}
