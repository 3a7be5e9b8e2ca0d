// W2c: GET /users?per_page=20 by cursor, as admin: each VU walks the whole
// listing through next_cursor and starts again at the end. Keyset paging:
// no deep-offset scan, whatever the depth.
import { check } from 'k6';
import { adminAndIds, checkPage, finished, listUsers, makeOptions, started } from './lib.js';

export const options = makeOptions({ list_cursor: {} });

export function setup() {
  const { token, total } = adminAndIds();
  return started({ token, total });
}

export function teardown(data) {
  finished(data);
}

// Per VU: each VU runs its own copy of this module.
let cursor = null;

export default function (data) {
  const query = cursor ? `per_page=20&cursor=${encodeURIComponent(cursor)}` : 'per_page=20';
  const { res, body } = listUsers(data.token, query, { tags: { name: 'GET /users?cursor' } });
  checkPage(res, body, 20);
  check(res, {
    'cursor: next_cursor is a string or null': () =>
      !!body && (body.next_cursor === null || typeof body.next_cursor === 'string'),
    'cursor: full page unless last': () =>
      !!body && (body.next_cursor === null || body.items.length === 20),
  });
  cursor = body && typeof body.next_cursor === 'string' ? body.next_cursor : null;
}
