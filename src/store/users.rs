//! Users: create, look up, change password.

use entity::{user, user_role_count};
use sea_orm::{
    ActiveValue::Set, ColumnTrait as _, DbErr, EntityTrait as _, PaginatorTrait as _,
    QueryFilter as _, QueryResult,
};
use uuid::Uuid;

use super::{Store, StoreError, now, on_unique};
use crate::domain::{Email, Role, User, UserName};

impl TryFrom<user::Model> for User {
    type Error = StoreError;

    fn try_from(m: user::Model) -> Result<Self, Self::Error> {
        UserRow {
            id: m.id,
            email: m.email,
            name: m.name,
            role: m.role,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
        .try_into()
    }
}

/// The columns of a [`User`]: every column but the password hash.
pub(super) const USER_COLUMNS: [user::Column; 6] = [
    user::Column::Id,
    user::Column::Email,
    user::Column::Name,
    user::Column::Role,
    user::Column::CreatedAt,
    user::Column::UpdatedAt,
];

// `UserRow::read` takes the columns by position, in this order.
const _: () = assert!(matches!(
    USER_COLUMNS,
    [
        user::Column::Id,
        user::Column::Email,
        user::Column::Name,
        user::Column::Role,
        user::Column::CreatedAt,
        user::Column::UpdatedAt,
    ]
));

/// A user row read without its password hash (see [`USER_COLUMNS`]).
#[derive(Debug)]
pub(super) struct UserRow {
    id: Uuid,
    email: String,
    name: Option<String>,
    role: String,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl UserRow {
    /// The row whose [`USER_COLUMNS`] are the statement's columns `first`
    /// to `first + 5`, in that order. By position rather than by name: a
    /// name is looked up in the row's column map, and a prefixed one is
    /// formatted first, for every column of every row.
    pub(super) fn read(row: &QueryResult, first: usize) -> Result<Self, DbErr> {
        Ok(Self {
            id: row.try_get_by_index(first)?,
            email: row.try_get_by_index(first + 1)?,
            name: row.try_get_by_index(first + 2)?,
            role: row.try_get_by_index(first + 3)?,
            created_at: row.try_get_by_index(first + 4)?,
            updated_at: row.try_get_by_index(first + 5)?,
        })
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(m: UserRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: m.id,
            email: m.email,
            name: m.name,
            role: Role::parse(&m.role).map_err(|e| {
                StoreError::Internal(sea_orm::DbErr::Type(format!("users.role: {e}")))
            })?,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

impl Store {
    /// Creates a user.
    ///
    /// # Errors
    ///
    /// `EmailTaken` when the email belongs to another account.
    pub async fn create_user(
        &self,
        email: &Email,
        password_hash: String,
        name: Option<&UserName>,
        role: Role,
    ) -> Result<User, StoreError> {
        let at = now();
        let model = user::ActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(email.as_ref().to_owned()),
            password_hash: Set(password_hash),
            name: Set(name.map(|n| n.as_ref().to_owned())),
            role: Set(role.as_str().to_owned()),
            created_at: Set(at),
            updated_at: Set(at),
        };
        let inserted = user::Entity::insert(model)
            .exec_with_returning(&self.db)
            .await
            .map_err(|e| on_unique(e, StoreError::EmailTaken))?;
        inserted.try_into()
    }

    /// The user with an email, with its password hash.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn find_credentials(
        &self,
        email: &str,
    ) -> Result<Option<(User, String)>, StoreError> {
        let Some(model) = user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let hash = model.password_hash.clone();
        Ok(Some((model.try_into()?, hash)))
    }

    /// The password hash of a user.
    ///
    /// # Errors
    ///
    /// `NotFound`, or database failures.
    pub async fn password_hash(&self, id: Uuid) -> Result<String, StoreError> {
        user::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(|m| m.password_hash)
            .ok_or(StoreError::NotFound)
    }

    /// Replaces a user's password hash.
    ///
    /// # Errors
    ///
    /// `NotFound`, or database failures.
    pub async fn set_password_hash(&self, id: Uuid, hash: String) -> Result<(), StoreError> {
        let result = user::Entity::update_many()
            .col_expr(
                user::Column::PasswordHash,
                sea_orm::sea_query::Expr::value(hash),
            )
            .col_expr(
                user::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(now()),
            )
            .filter(user::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// How many users have each role.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn count_users_by_role(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(user_role_count::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|c| (c.role, c.users))
            .collect())
    }

    /// Whether any admin exists.
    ///
    /// # Errors
    ///
    /// Database failures.
    pub async fn admin_exists(&self) -> Result<bool, StoreError> {
        let admins = user::Entity::find()
            .filter(user::Column::Role.eq(Role::Admin.as_str()))
            .count(&self.db)
            .await?;
        Ok(admins > 0)
    }
}
