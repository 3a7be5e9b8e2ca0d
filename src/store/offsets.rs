//! Where offset pages start: the first row of pages this process has served,
//! so that page 250 of an unchanged listing seeks to its first row instead of
//! walking past the 4,980 rows before it (both backends skip an offset row
//! by row).
//!
//! Only the `created_at` orders (the default) of unfiltered and role-only
//! lists are remembered: a row's place in them changes only when a user is
//! created or deleted, or changes role, and each of those bumps the changes
//! counter the triggers keep in `user_role_counts` (see the migration
//! `m20261126_000004_user_changes`). A remembered start is tagged with that
//! counter as read by the statement that found it, and a statement that
//! starts from it reads the counter again alongside its rows: when the two
//! differ, the result is thrown away and the page read by its offset. The
//! counter lives in the database, so another instance's writes invalidate
//! this one's starts as well.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, PoisonError},
};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::Role;

/// Remembered rows per process, at most (about 60 bytes each).
const CAPACITY: usize = 16_384;

/// A listing whose starts are remembered: a `created_at` direction and an
/// optional role filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Scope {
    pub descending: bool,
    pub role: Option<Role>,
}

/// A row's place in a `created_at` order: its key and the `id` tie-break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Start {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// The remembered row nearest before an offset: it was at `position` while
/// the changes counter read `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Anchor {
    pub version: i64,
    pub position: u64,
    pub start: Start,
}

/// The remembered starts of one process.
#[derive(Debug, Default)]
pub(super) struct Offsets {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The counter every remembered start was read at.
    version: i64,
    len: usize,
    scopes: HashMap<Scope, BTreeMap<u64, Start>>,
}

impl Offsets {
    /// The remembered row at `offset` or the nearest one before it.
    pub(super) fn nearest(&self, scope: Scope, offset: u64) -> Option<Anchor> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (&position, &start) = state.scopes.get(&scope)?.range(..=offset).next_back()?;
        Some(Anchor {
            version: state.version,
            position,
            start,
        })
    }

    /// Remembers where rows were while the counter read `version`. A newer
    /// version forgets everything older; an older one is ignored. The first
    /// row of all (position 0) is not worth remembering.
    pub(super) fn remember(
        &self,
        scope: Scope,
        version: i64,
        starts: impl IntoIterator<Item = (u64, Start)>,
    ) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if version < state.version {
            return;
        }
        if version > state.version {
            *state = State {
                version,
                ..State::default()
            };
        }
        let State { len, scopes, .. } = &mut *state;
        let starts_of_scope = scopes.entry(scope).or_default();
        for (position, start) in starts.into_iter().filter(|(p, _)| *p > 0) {
            if *len >= CAPACITY {
                break;
            }
            if starts_of_scope.insert(position, start).is_none() {
                *len += 1;
            }
        }
    }
}

impl Offsets {
    /// Forgets every remembered row: the counter went backwards (a database
    /// restored or migrated down and up under this process), so it may come
    /// back to a remembered version with other rows.
    pub(super) fn forget(&self) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = State::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: Scope = Scope {
        descending: true,
        role: None,
    };

    fn start(n: u128) -> Start {
        Start {
            created_at: DateTime::UNIX_EPOCH,
            id: Uuid::from_u128(n),
        }
    }

    #[test]
    fn the_nearest_start_at_or_before_an_offset_in_its_own_scope() {
        let offsets = Offsets::default();
        assert_eq!(offsets.nearest(SCOPE, 40), None);
        offsets.remember(SCOPE, 3, [(20, start(1)), (40, start(2))]);
        let at = |offset| {
            offsets
                .nearest(SCOPE, offset)
                .map(|a| (a.position, a.start))
        };
        assert_eq!(at(0), None);
        assert_eq!(at(20), Some((20, start(1))));
        assert_eq!(at(39), Some((20, start(1))));
        assert_eq!(at(1_000), Some((40, start(2))));
        assert_eq!(offsets.nearest(SCOPE, 40).unwrap().version, 3);
        let other = Scope {
            role: Some(Role::User),
            ..SCOPE
        };
        assert_eq!(offsets.nearest(other, 40), None);
    }

    #[test]
    fn a_newer_version_forgets_older_starts_and_an_older_one_is_ignored() {
        let offsets = Offsets::default();
        offsets.remember(SCOPE, 3, [(20, start(1))]);
        offsets.remember(SCOPE, 2, [(40, start(2))]);
        assert_eq!(offsets.nearest(SCOPE, 40).unwrap().position, 20);
        offsets.remember(SCOPE, 4, [(60, start(3))]);
        assert_eq!(offsets.nearest(SCOPE, 59), None);
        assert_eq!(offsets.nearest(SCOPE, 60).unwrap().version, 4);
    }

    #[test]
    fn no_more_than_the_capacity_is_kept() {
        let offsets = Offsets::default();
        let many = (1..=CAPACITY as u64 + 10).map(|n| (n, start(n.into())));
        offsets.remember(SCOPE, 1, many);
        let last = offsets.nearest(SCOPE, u64::MAX).unwrap();
        assert_eq!(last.position, CAPACITY as u64);
        // Remembering a start again does not count it twice.
        offsets.remember(SCOPE, 1, [(1, start(1))]);
        assert_eq!(offsets.state.lock().unwrap().len, CAPACITY);
    }

    #[test]
    fn the_first_row_is_not_remembered_and_forget_forgets() {
        let offsets = Offsets::default();
        offsets.remember(SCOPE, 5, [(0, start(0)), (20, start(1))]);
        assert_eq!(offsets.nearest(SCOPE, 19), None);
        offsets.forget();
        assert_eq!(offsets.nearest(SCOPE, 20), None);
        // After forgetting, a lower version is accepted again.
        offsets.remember(SCOPE, 2, [(20, start(2))]);
        assert_eq!(offsets.nearest(SCOPE, 20).unwrap().version, 2);
    }
}
