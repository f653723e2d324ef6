//! One route per file.

pub mod movimientos;
pub mod saldo;

use alpes_platform::auth::{Caller, Role};
use alpes_platform::http::ApiError;

/// A provider reads only its own money; an admin reads anyone's; a consumer reads none.
pub fn may_read_money_of(caller: &Caller, user_id: &str) -> Result<(), ApiError> {
    caller.require(&[Role::Proveedor, Role::Admin])?;
    if caller.role == Role::Admin || caller.user_id == user_id {
        Ok(())
    } else {
        Err(ApiError::forbidden("a provider can only read its own balance and ledger"))
    }
}
