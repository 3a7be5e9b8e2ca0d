//! The user listing: filters, sorts, both kinds of paging, the `total`, and
//! the bearer check, in one statement per page.

use chrono::{DateTime, Utc};
use entity::{session, user, user_role_count};

use sea_orm::{
    ColumnTrait as _, Condition, DbBackend, EntityTrait as _, Order, QueryFilter as _,
    QueryOrder as _, QueryResult, QuerySelect as _, QueryTrait as _, Select, Statement, Value,
    sea_query::{
        Alias, Asterisk, Expr, ExprTrait as _, Func, JoinType, LikeExpr, NullOrdering, Query,
        SelectStatement,
    },
};
use uuid::Uuid;

use super::{
    Store, StoreError, now,
    offsets::{Anchor, Scope, Start},
    prepared::{Rendered, USER_COLUMNS, UserRow},
    sessions::live_session_at,
};
use crate::domain::{
    Role, User,
    listing::{Cursor, CursorValue, Paging, Sort, SortKey, UserFilter, UserPage, UserQuery},
};

impl Store {
    /// A page of users for the caller of session `session_id`, with how many
    /// match in all, in one statement that also checks the bearer: rows come
    /// back only while that session is live and its user is an admin now.
    /// `None` when no row came back: an empty page, or a caller who may not
    /// list (tell them apart with [`Store::authenticate`]).
    ///
    /// The check and the count ride along as uncorrelated subqueries, which
    /// both backends evaluate once. Offset pages of the `created_at` orders
    /// start from a remembered row when the users have not changed since
    /// (see `store::offsets`).
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn list_users_as_admin(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        query: &UserQuery,
    ) -> Result<Option<UserPage>, StoreError> {
        let caller = Caller {
            session_id,
            user_id,
            at: now(),
        };
        let backend = self.db.get_database_backend();
        let scope = remembered_scope(query);
        let offset = match query.paging {
            Paging::Offset(page) => page.saturating_sub(1).saturating_mul(query.per_page),
            Paging::After(_) => 0,
        };
        let anchor = scope
            .filter(|_| offset > 0)
            .and_then(|scope| self.offsets.nearest(scope, offset));
        let mut rows = self
            .fetch_all(list_query(backend, caller, query, scope, offset, anchor))
            .await?;
        let version_of = |rows: &[QueryResult]| {
            rows.first()
                .filter(|_| scope.is_some())
                .map(|row| row.try_get::<i64>("", VERSION))
                .transpose()
        };
        if let Some(anchor) = anchor
            && version_of(&rows)? != Some(anchor.version)
        {
            // The users changed since: the page starts elsewhere now.
            rows = self
                .fetch_all(list_query(backend, caller, query, scope, offset, None))
                .await?;
            // This statement began after the remembered row was read: a
            // lower count means the counter itself went back.
            if version_of(&rows)?.is_some_and(|v| v < anchor.version) {
                self.offsets.forget();
            }
        }
        let version = version_of(&rows)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let total = first.try_get::<i64>("", TOTAL)?;
        let mut items = rows
            .iter()
            .map(|row| User::try_from(UserRow::read(row, 0)?))
            .collect::<Result<Vec<_>, _>>()?;
        // One extra row says whether a next page exists, and where it starts.
        let per_page = usize::try_from(query.per_page).unwrap_or(usize::MAX);
        let extra = (items.len() > per_page).then(|| items.split_off(per_page));
        if let (Some(scope), Some(version), Paging::Offset(_)) = (scope, version, &query.paging) {
            let start = |user: &User| Start {
                created_at: user.created_at,
                id: user.id,
            };
            let next = extra
                .iter()
                .flatten()
                .map(|u| (offset.saturating_add(query.per_page), start(u)));
            let starts = items
                .first()
                .map(|u| (offset, start(u)))
                .into_iter()
                .chain(next);
            self.offsets.remember(scope, version, starts);
        }
        let next = extra
            .is_some()
            .then(|| items.last().map(|last| Cursor::after(last, query.sort)))
            .flatten();
        Ok(Some(UserPage {
            items,
            total: u64::try_from(total).unwrap_or(0),
            next,
        }))
    }

    /// How many users match `filter`.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn count_users(&self, filter: &UserFilter) -> Result<u64, StoreError> {
        let count = Query::select().expr_as(total_of(filter), TOTAL).to_owned();
        let total = match self.query_one(&count).await? {
            Some(row) => row.try_get::<i64>("", TOTAL)?,
            None => 0,
        };
        Ok(u64::try_from(total).unwrap_or(0))
    }
}

/// Whose bearer a list statement checks, and when.
#[derive(Debug, Clone, Copy)]
struct Caller {
    session_id: Uuid,
    user_id: Uuid,
    at: DateTime<Utc>,
}

/// The listing whose offset pages `Offsets` may remember, if `query`'s is
/// one: a `created_at` order, unfiltered or by role only.
fn remembered_scope(query: &UserQuery) -> Option<Scope> {
    let remembered = matches!(query.paging, Paging::Offset(_))
        && query.sort.key == SortKey::CreatedAt
        && query.filter.is_role_only();
    remembered.then_some(Scope {
        descending: query.sort.descending,
        role: query.filter.role,
    })
}

/// [`list_statement`] as a statement. The default listings, a `created_at`
/// order unfiltered or by role (every cursor page of them, and offset pages
/// with or without a remembered start), come from SQL rendered once per
/// shape: only their values change, and building and rendering the
/// statement each time costs W2c measurably (`k6/callgrind.sh`). Their values go in
/// the order the SQL takes them; a test compares the whole statement with
/// sea-query's for every shape on both backends. Other listings are built by
/// sea-query each time.
fn list_query(
    backend: DbBackend,
    caller: Caller,
    query: &UserQuery,
    scope: Option<Scope>,
    offset: u64,
    anchor: Option<Anchor>,
) -> Statement {
    let Some(shape) = ListShape::of(backend, query, scope, offset, anchor) else {
        return backend.build(&list_statement(caller, query, scope, offset, anchor));
    };
    // Every combination of the shape's parts has its slot (40 of them
    // occur: cursor pages never read the counter, offset pages always do).
    static SQL: Rendered<96> = Rendered::new();
    let role = query.filter.role.map(|role| Value::from(role.as_str()));
    let admin = [
        Value::from(1),
        caller.session_id.into(),
        caller.user_id.into(),
        caller.at.into(),
        Role::Admin.as_str().into(),
    ];
    let mut values = Vec::with_capacity(16);
    // The `total` subquery, then the changes counter's.
    values.push(Value::from(0i64));
    values.extend(role.clone());
    if shape.version {
        values.push(Value::from(0i64));
    }
    // The page's own filter: the role, then where the page starts.
    values.extend(role);
    if let Some(Start { created_at, id }) = shape.from {
        values.extend([created_at.into(), id.into()]);
    }
    let paged = [Value::from(query.per_page + 1), Value::from(shape.skip)];
    if shape.short_scan {
        values.extend(admin);
        values.extend(paged);
    } else {
        values.extend(paged);
        values.extend(admin);
    }
    SQL.statement(shape.slot(), backend, values, || {
        list_statement(caller, query, scope, offset, anchor)
    })
}

/// What the SQL of a default listing's page depends on (see [`list_query`]);
/// the values it binds aside.
#[derive(Debug, Clone, Copy)]
struct ListShape {
    postgres: bool,
    descending: bool,
    role: bool,
    /// The changes counter rides along (a remembered scope).
    version: bool,
    /// The row the page starts after (a cursor) or from (a remembered
    /// start), if any.
    from: Option<Start>,
    /// After a cursor, rather than from a remembered start.
    cursor: bool,
    /// Rows skipped past `from`.
    skip: u64,
    /// The bearer check sits in the scan's `WHERE` (see [`list_statement`]).
    short_scan: bool,
}

impl ListShape {
    /// The shape of a page of a default listing; `None` for other listings
    /// and backends.
    fn of(
        backend: DbBackend,
        query: &UserQuery,
        scope: Option<Scope>,
        offset: u64,
        anchor: Option<Anchor>,
    ) -> Option<Self> {
        let postgres = match backend {
            DbBackend::Sqlite => false,
            DbBackend::Postgres => true,
            _ => return None,
        };
        if query.sort.key != SortKey::CreatedAt || !query.filter.is_role_only() {
            return None;
        }
        let (from, cursor, skip) = match (&query.paging, anchor) {
            (Paging::After(cursor), _) => match cursor.value {
                CursorValue::Time(created_at) if cursor.sort == query.sort => {
                    let id = cursor.id;
                    (Some(Start { created_at, id }), true, 0)
                }
                _ => return None,
            },
            (Paging::Offset(_), Some(anchor)) => {
                (Some(anchor.start), false, offset - anchor.position)
            }
            (Paging::Offset(_), None) => (None, false, offset),
        };
        Some(Self {
            postgres,
            descending: query.sort.descending,
            role: query.filter.role.is_some(),
            version: scope.is_some(),
            from,
            cursor,
            skip,
            short_scan: skip == 0,
        })
    }

    /// This shape's index among the 96 (2 backends, 2 directions, with or
    /// without a role, a counter, and a short scan, and 3 kinds of start).
    fn slot(self) -> usize {
        let start = match (self.from, self.cursor) {
            (None, _) => 0,
            (Some(_), true) => 1,
            (Some(_), false) => 2,
        };
        let bits = [
            self.postgres,
            self.descending,
            self.role,
            self.version,
            self.short_scan,
        ];
        bits.into_iter()
            .fold(start, |slot, bit| slot * 2 + usize::from(bit))
    }
}

/// The statement for a page: the page's rows (one extra), each with the
/// `total` and, in a remembered `scope`, the changes counter; rows only
/// while the caller's bearer is an admin's. From `anchor`, the page is found
/// by seeking to the remembered row and skipping what lies between it and
/// `offset`.
fn list_statement(
    caller: Caller,
    query: &UserQuery,
    scope: Option<Scope>,
    offset: u64,
    anchor: Option<Anchor>,
) -> SelectStatement {
    let total = total_of(&query.filter);
    let mut select = ordered(filtered(&query.filter), query.sort)
        .select_only()
        .columns(USER_COLUMNS)
        .expr_as(total, TOTAL);
    if scope.is_some() {
        select = select.expr_as(counts_sum(user_role_count::Column::Changes), VERSION);
    }
    let skip = match (&query.paging, anchor) {
        (Paging::After(cursor), _) => {
            select = select.filter(after(cursor));
            0
        }
        (Paging::Offset(_), Some(anchor)) => {
            let Start { created_at, id } = anchor.start;
            let desc = query.sort.descending;
            let from = row_value_past(user::Column::CreatedAt, created_at.into(), id, desc, true);
            select = select.filter(from);
            offset - anchor.position
        }
        (Paging::Offset(_), None) => offset,
    };
    let select = select.offset(skip).limit(query.per_page + 1);
    let admin = Expr::exists(admin_session(caller));
    let short_scan = skip == 0 && query.filter.is_role_only();
    // SQLite evaluates the check on every row its scan walks past: in the
    // WHERE of a scan that stops after the page's rows, it is cheapest;
    // past an offset or a filter, it filters the page's rows instead.
    if short_scan {
        return select.filter(admin).into_query();
    }
    let page = Alias::new("page");
    let mut outer = Query::select();
    outer
        .column(Asterisk)
        .from_subquery(select.into_query(), page.clone())
        .and_where(admin);
    // The subquery's order does not survive it: sort again.
    for (column, order, nulls) in sort_columns(query.sort) {
        match nulls {
            Some(nulls) => outer.order_by_with_nulls((page.clone(), column), order, nulls),
            None => outer.order_by((page.clone(), column), order),
        };
    }
    outer
}

/// `SELECT 1` while the caller's session is live and its user an admin.
fn admin_session(caller: Caller) -> SelectStatement {
    let user = Alias::new("caller");
    Query::select()
        .expr(Expr::val(1))
        .from(session::Entity)
        .join_as(
            JoinType::InnerJoin,
            user::Entity,
            user.clone(),
            Expr::col((user.clone(), user::Column::Id))
                .equals((session::Entity, session::Column::UserId)),
        )
        .cond_where(live_session_at(
            caller.session_id,
            caller.user_id,
            caller.at,
        ))
        .and_where(Expr::col((user, user::Column::Role)).eq(Role::Admin.as_str()))
        .to_owned()
}

/// The column alias of a page's changes counter.
const VERSION: &str = "version";

/// The sum of one column of `user_role_counts` (0 without rows), as a
/// bigint on both backends.
fn counts_sum(column: user_role_count::Column) -> SelectStatement {
    // SUM of a bigint is a numeric on Postgres: cast it back.
    Query::select()
        .expr(Func::cast_as(
            Func::coalesce([Expr::col(column).sum(), Expr::val(0i64)]),
            Alias::new("BIGINT"),
        ))
        .from(user_role_count::Entity)
        .to_owned()
}

/// The column alias of a page's `total`.
const TOTAL: &str = "total";

/// How many users match `filter`, as a scalar subquery. Unfiltered and
/// role-only lists read the trigger-kept counts (two rows at most, whatever
/// the size of `users`); other filters count the matching rows.
fn total_of(filter: &UserFilter) -> Expr {
    let query = if filter.is_role_only() {
        let mut counts = counts_sum(user_role_count::Column::Users);
        if let Some(role) = filter.role {
            counts.and_where(Expr::col(user_role_count::Column::Role).eq(role.as_str()));
        }
        counts
    } else {
        filtered(filter)
            .select_only()
            .expr(Expr::col(Asterisk).count())
            .into_query()
    };
    query.into()
}

/// `%`, `_` and `\` match literally: the filter is data, never a pattern.
fn contains(needle: &str) -> LikeExpr {
    let escaped = needle
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    LikeExpr::new(format!("%{escaped}%")).escape('\\')
}

fn filtered(filter: &UserFilter) -> Select<user::Entity> {
    let mut select = user::Entity::find();
    if let Some(role) = filter.role {
        select = select.filter(user::Column::Role.eq(role.as_str()));
    }
    // Emails are stored lower-cased, so a lower-cased pattern is case-insensitive.
    if let Some(email) = &filter.email {
        select = select.filter(Expr::col(user::Column::Email).like(contains(email)));
    }
    if let Some(q) = &filter.q {
        select = select.filter(
            Condition::any()
                .add(Expr::col(user::Column::Email).like(contains(q)))
                .add(Func::lower(Expr::col(user::Column::Name)).like(contains(q))),
        );
    }
    if let Some(after) = filter.created_after {
        select = select.filter(user::Column::CreatedAt.gt(after));
    }
    if let Some(before) = filter.created_before {
        select = select.filter(user::Column::CreatedAt.lt(before));
    }
    if let Some(status) = filter.status {
        select = select.filter(user::Column::Status.eq(status.as_str()));
    }
    if let Some(verified) = filter.email_verified {
        select = select.filter(user::Column::EmailVerified.eq(verified));
    }
    select
}

/// The columns a list is ordered by: the sort key, then `id` as the
/// tie-break in the same direction.
fn sort_columns(sort: Sort) -> [(user::Column, Order, Option<NullOrdering>); 2] {
    let order = if sort.descending {
        Order::Desc
    } else {
        Order::Asc
    };
    let key = match sort.key {
        SortKey::CreatedAt => (user::Column::CreatedAt, order.clone(), None),
        SortKey::Email => (user::Column::Email, order.clone(), None),
        // Users without a name come last in both directions.
        SortKey::Name => (user::Column::Name, order.clone(), Some(NullOrdering::Last)),
    };
    [key, (user::Column::Id, order, None)]
}

fn ordered(mut select: Select<user::Entity>, sort: Sort) -> Select<user::Entity> {
    for (column, order, nulls) in sort_columns(sort) {
        select = match nulls {
            Some(nulls) => select.order_by_with_nulls(column, order, nulls),
            None => select.order_by(column, order),
        };
    }
    select
}

/// Rows after `(value, id)` in the `(col, id)` order (`inclusive`: from it
/// on). Row values, `(created_at, id) < (?, ?)`, let both backends seek the
/// (key, id) index instead of scanning from the first row.
fn row_value_past(
    col: user::Column,
    value: sea_orm::Value,
    id: Uuid,
    descending: bool,
    inclusive: bool,
) -> Expr {
    let row = Expr::tuple([Expr::col(col), Expr::col(user::Column::Id)]);
    let bound = Expr::tuple([Expr::val(value), Expr::val(id)]);
    match (descending, inclusive) {
        (true, false) => row.lt(bound),
        (true, true) => row.lte(bound),
        (false, false) => row.gt(bound),
        (false, true) => row.gte(bound),
    }
}

/// Rows strictly after the cursor's row in its sort order.
fn after(cursor: &Cursor) -> Condition {
    let desc = cursor.sort.descending;
    let id = cursor.id;
    let past_id = if desc {
        user::Column::Id.lt(id)
    } else {
        user::Column::Id.gt(id)
    };
    let past_row = |col: user::Column, value: sea_orm::Value| {
        Condition::all().add(row_value_past(col, value, id, desc, false))
    };
    match (&cursor.value, cursor.sort.key) {
        (CursorValue::Time(t), _) => past_row(user::Column::CreatedAt, (*t).into()),
        (CursorValue::Text(Some(v)), SortKey::Email) => {
            past_row(user::Column::Email, v.as_str().into())
        }
        (CursorValue::Text(Some(v)), _) => {
            // Named rows come first in both directions; unnamed rows follow.
            let col = user::Column::Name;
            let past = if desc {
                col.lt(v.as_str())
            } else {
                col.gt(v.as_str())
            };
            Condition::any()
                .add(past)
                .add(Condition::all().add(col.eq(v.as_str())).add(past_id))
                .add(col.is_null())
        }
        (CursorValue::Text(None), _) => Condition::all()
            .add(user::Column::Name.is_null())
            .add(past_id),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    /// Every shape [`list_query`] remembers, and a few it does not, with
    /// fresh values each round.
    #[test]
    fn remembered_list_statements_are_the_ones_sea_query_builds() {
        for round in 0..3 {
            let t = now() - TimeDelta::microseconds(round * 7_919);
            let caller = Caller {
                session_id: Uuid::now_v7(),
                user_id: Uuid::now_v7(),
                at: now(),
            };
            for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
                for descending in [true, false] {
                    for role in [None, Some(Role::Admin), Some(Role::User)] {
                        let sort = Sort {
                            key: SortKey::CreatedAt,
                            descending,
                        };
                        let cursor = |sort, value| {
                            Paging::After(Cursor {
                                sort,
                                value,
                                id: Uuid::now_v7(),
                            })
                        };
                        let mut pagings = vec![
                            (cursor(sort, CursorValue::Time(t)), None),
                            (cursor(sort, CursorValue::Text(None)), None),
                        ];
                        for page in [1, 2, 250] {
                            let offset = (page - 1) * 20;
                            pagings.push((Paging::Offset(page), None));
                            for position in [offset, offset.saturating_sub(40)] {
                                let start = Start {
                                    created_at: t,
                                    id: Uuid::now_v7(),
                                };
                                let anchor = Anchor {
                                    version: 7,
                                    position,
                                    start,
                                };
                                pagings.push((Paging::Offset(page), Some(anchor)));
                            }
                        }
                        let filters = [
                            UserFilter {
                                role,
                                ..UserFilter::default()
                            },
                            UserFilter {
                                role,
                                q: Some("ann".into()),
                                ..UserFilter::default()
                            },
                        ];
                        for (paging, anchor) in pagings {
                            for filter in &filters {
                                for key in [SortKey::CreatedAt, SortKey::Email] {
                                    let query = UserQuery {
                                        filter: filter.clone(),
                                        sort: Sort { key, descending },
                                        per_page: 20 + u64::try_from(round).unwrap(),
                                        paging: paging.clone(),
                                    };
                                    let scope = remembered_scope(&query);
                                    let anchor = anchor.filter(|_| scope.is_some());
                                    let offset = match query.paging {
                                        Paging::Offset(page) => (page - 1) * query.per_page,
                                        Paging::After(_) => 0,
                                    };
                                    let anchor = anchor.map(|a| Anchor {
                                        position: Ord::min(a.position, offset),
                                        ..a
                                    });
                                    let built = backend.build(&list_statement(
                                        caller, &query, scope, offset, anchor,
                                    ));
                                    assert_eq!(
                                        list_query(backend, caller, &query, scope, offset, anchor),
                                        built,
                                        "{backend:?} {query:?} {anchor:?}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
