//! Who is calling: a role and a user id, as plain data. How a request proves
//! them (a token, an API key) is the web adapter's business.

use serde::{Deserialize, Serialize};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Uploads images and is credited for their use.
    Proveedor,
    /// Queries and downloads anonymized images and is billed.
    Consumidor,
    /// Operates the instance.
    Admin,
    /// A doctor of an institution: validates their patients' consent.
    Medico,
}

impl Role {
    /// The role's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Proveedor => "proveedor",
            Role::Consumidor => "consumidor",
            Role::Admin => "admin",
            Role::Medico => "medico",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "proveedor" => Ok(Role::Proveedor),
            "consumidor" => Ok(Role::Consumidor),
            "admin" => Ok(Role::Admin),
            "medico" => Ok(Role::Medico),
            other => Err(format!("unknown role {other:?}; expected proveedor, consumidor, admin or medico")),
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user id from the credential.
    pub user_id: String,
    /// The role from the credential.
    pub role: Role,
}

/// A caller without any of the roles a route needs (HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this route needs the role {0}")]
pub struct Forbidden(pub String);

impl Caller {
    /// `Forbidden` unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Forbidden> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let names: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
            Err(Forbidden(names.join(" or ")))
        }
    }

    /// Whether the caller is an admin or the user `owner`: who may see what one user owns (its
    /// images, its money, its reports).
    pub fn is_admin_or(&self, owner: &str) -> bool {
        self.role == Role::Admin || self.user_id == owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_needs_one_of_the_roles() {
        let c = Caller {
            user_id: "u".into(),
            role: Role::Consumidor,
        };
        assert_eq!(
            c.require(&[Role::Proveedor, Role::Admin]).expect_err("forbidden").to_string(),
            "this route needs the role proveedor or admin"
        );
        assert!(c.require(&[Role::Consumidor]).is_ok());
    }

    #[test]
    fn an_admin_or_the_owner_may_see_what_a_user_owns() {
        let caller = |role| Caller { user_id: "u".into(), role };
        assert!(caller(Role::Proveedor).is_admin_or("u"));
        assert!(!caller(Role::Proveedor).is_admin_or("v"));
        assert!(caller(Role::Admin).is_admin_or("v"));
    }

    #[test]
    fn a_role_reads_back_from_its_wire_name() {
        for r in [Role::Proveedor, Role::Consumidor, Role::Admin, Role::Medico] {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
