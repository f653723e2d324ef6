//! The ingest routes, one per file.

pub mod api_key;
pub mod api_keys;
pub mod auth_login;
pub mod auth_logout;
pub mod auth_refresh;
pub mod auth_verify;
pub mod codigos;
pub mod consumidor;
pub mod dimse_aes;
pub mod importacion;
pub mod importaciones;
pub mod institucion;
pub mod instituciones;
pub mod jwks;
pub mod medico;
pub mod medicos;
pub mod notificaciones;
pub mod paciente;
pub mod pacientes;
pub mod pagar;
pub mod reanonymize;
pub mod stow;
pub mod upload;
pub mod usuarios;
pub mod webhooks;

use crate::openapi::PROFILE_ERRORS;
use crate::IngestState;
use alpes_platform::auth::Role;
use alpes_platform::blobs::UploadError;
pub use alpes_platform::http::json_body;
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{path, Routes};
use axum::http::HeaderMap;

/// Every ingest route, with its operation.
pub fn all() -> Routes<IngestState> {
    Routes::new()
        .route(upload::op(), upload::handler)
        .route(
            stow::op("/studies", "stowStudies", "Store instances (STOW-RS)", PROFILE_ERRORS),
            stow::handler,
        )
        .route(
            stow::op(
                "/studies/{study}",
                "stowStudy",
                "Store instances of one study (STOW-RS)",
                "Every instance must belong to `study`; one of another study fails with FailureReason `A900`.",
            )
            .param(path("study", "The StudyInstanceUID every instance must have.")),
            stow::handler_for_study,
        )
        .route(reanonymize::op(), reanonymize::handler)
        .route(pagar::op(), pagar::handler)
        .route(consumidor::op(), consumidor::handler)
        .route(usuarios::op(), usuarios::handler)
        .route(auth_login::op(), auth_login::handler)
        .route(auth_refresh::op(), auth_refresh::handler)
        .route(auth_logout::op(), auth_logout::handler)
        .route(auth_verify::op(), auth_verify::handler)
        .route(api_keys::create_op(), api_keys::create)
        .route(api_keys::list_op(), api_keys::list)
        .route(api_key::op(), api_key::handler)
        .route(jwks::op(), jwks::handler)
        .route(dimse_aes::list_op(), dimse_aes::list)
        .route(dimse_aes::put_op(), dimse_aes::put)
        .route(dimse_aes::delete_op(), dimse_aes::delete)
        .route(importaciones::create_op(), importaciones::create)
        .route(importaciones::list_op(), importaciones::list)
        .route(importacion::op(), importacion::handler)
        .route(importacion::cancel_op(), importacion::cancel)
        .route(instituciones::create_op(), instituciones::create)
        .route(instituciones::list_op(), instituciones::list)
        .route(institucion::op(), institucion::handler)
        .route(institucion::put_op(), institucion::put)
        .route(institucion::delete_op(), institucion::delete)
        .route(medicos::create_op(), medicos::create)
        .route(medicos::list_op(), medicos::list)
        .route(medico::op(), medico::handler)
        .route(medico::put_op(), medico::put)
        .route(medico::delete_op(), medico::delete)
        .route(pacientes::create_op(), pacientes::create)
        .route(pacientes::list_op(), pacientes::list)
        .route(codigos::confirm_op(), codigos::confirm)
        .route(codigos::revoke_op(), codigos::revoke)
        .route(paciente::op(), paciente::handler)
        .route(paciente::delete_op(), paciente::delete)
        .route(paciente::validate_op(), paciente::validate)
        .route(paciente::revoke_op(), paciente::revoke)
        .route(webhooks::create_op(), webhooks::create)
        .route(webhooks::list_op(), webhooks::list)
        .route(webhooks::delete_op(), webhooks::delete)
        .route(notificaciones::op(), notificaciones::handler)
}

/// The `Idempotency-Key` header, if present and sane (1–255 visible ASCII characters).
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| ApiError::bad_request("bad_idempotency_key", "Idempotency-Key must be visible ASCII"))?;
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "bad_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(s.to_owned()))
}

/// The role a body names; 422 `bad_rol` otherwise.
pub fn role_named(rol: &str) -> Result<Role, ApiError> {
    match rol.parse() {
        Ok(Role::Medico) => Err(ApiError::unprocessable("bad_rol", "a medico account is created with POST /medicos")),
        Ok(role) => Ok(role),
        Err(_) => Err(ApiError::unprocessable("bad_rol", "rol must be proveedor, consumidor or admin")),
    }
}

/// 413 early when the declared length is already past the limit.
pub fn check_length(headers: &HeaderMap, limit: u64) -> Result<(), ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(ApiError::too_large(limit)),
        _ => Ok(()),
    }
}

/// The Content-Type header as text.
pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

/// 400 for a multipart body that is malformed or ends early.
pub fn bad_multipart() -> ApiError {
    ApiError::bad_request("bad_multipart", "the multipart body is malformed or truncated")
}

/// Maps a failed streamed part of a multipart body to its answer: the limit
/// named is the whole body's, and a broken part means a broken multipart body.
pub fn part_error(e: UploadError, max_upload: u64) -> ApiError {
    match e {
        UploadError::TooLarge(_) => ApiError::too_large(max_upload),
        UploadError::Body(_) => bad_multipart(),
        other => upload_error(other),
    }
}

/// Maps a failed streamed upload to its answer.
pub fn upload_error(e: UploadError) -> ApiError {
    match e {
        UploadError::TooLarge(limit) => ApiError::too_large(limit),
        UploadError::Body(_) => ApiError::bad_request("bad_body", "the request body ended early or could not be read"),
        UploadError::Store(e) => e.into(),
    }
}
