//! Who may do what: the one place where roles are decided. An admin-only
//! operation takes an [`Admin`], which only [`Caller::admin`] makes, so it
//! cannot be called without the check. (The listing statement repeats the
//! admin rule in SQL, fused with its read; `store::listing` says why.)

use uuid::Uuid;

use crate::domain::{Role, User};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user as stored now (current role, not the token's).
    pub user: User,
    /// The login session the token belongs to.
    pub session_id: Uuid,
}

/// An authenticated caller whose current role is `admin`.
#[derive(Debug, Clone)]
pub struct Admin(Caller);

/// The caller may not do this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// An admin-only operation.
    #[error("this operation needs the admin role")]
    NotAdmin,
    /// Only an admin sets a role, a status or `email_verified`, even on
    /// its own record.
    #[error("only an admin can change a role, a status or email_verified")]
    RoleChange,
}

impl Caller {
    /// The caller as an admin.
    ///
    /// # Errors
    ///
    /// `NotAdmin` when the caller's current role is not `admin`.
    pub fn admin(self) -> Result<Admin, Denied> {
        if self.user.role == Role::Admin {
            Ok(Admin(self))
        } else {
            Err(Denied::NotAdmin)
        }
    }

    /// Whether the caller is an admin now.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// Whether the caller may read and write user `id`'s record: an admin
    /// anyone's, a user only its own. Anyone else's record is "not found" to
    /// it, so that a user cannot tell which ids exist.
    #[must_use]
    pub fn may_manage(&self, id: Uuid) -> bool {
        self.is_admin() || self.user.id == id
    }

    /// Whether the caller may set a role, a status or `email_verified`.
    ///
    /// # Errors
    ///
    /// `RoleChange` for a non-admin.
    pub fn may_set_role(&self) -> Result<(), Denied> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Denied::RoleChange)
        }
    }
}

impl Admin {
    /// The admin as a caller.
    #[must_use]
    pub const fn caller(&self) -> &Caller {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn caller(role: Role) -> Caller {
        Caller {
            user: User {
                id: Uuid::now_v7(),
                email: crate::domain::Email::from_stored("a@x.io".into()),
                name: None,
                role,
                created_at: Utc::now(),
                updated_at: Utc::now(),
                status: crate::domain::AccountStatus::Active,
                email_verified: false,
                last_login_at: None,
            },
            session_id: Uuid::now_v7(),
        }
    }

    #[test]
    fn only_an_admin_becomes_an_admin() {
        assert!(caller(Role::Admin).admin().is_ok());
        assert_eq!(caller(Role::User).admin().err(), Some(Denied::NotAdmin));
    }

    #[test]
    fn users_manage_themselves_and_admins_everyone() {
        let user = caller(Role::User);
        assert!(user.may_manage(user.user.id));
        assert!(!user.may_manage(Uuid::now_v7()));
        assert!(caller(Role::Admin).may_manage(Uuid::now_v7()));
        assert_eq!(user.may_set_role(), Err(Denied::RoleChange));
        assert_eq!(caller(Role::Admin).may_set_role(), Ok(()));
    }
}
