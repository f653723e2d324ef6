//! `POST /imagenes`: one image as the body (`application/dicom`, `image/png`,
//! `image/jpeg`, profile in the query string), or `multipart/form-data` with
//! one or more files plus the fields `tipo_imagen`, `region_anatomica`,
//! `retain`, `no_clean`, `region` and `rules`. Answers 202 with the image ids.

use super::{bad_multipart, check_length, content_type, idempotency_key, part_error, upload_error};
use crate::media::{self, Declared};
use crate::openapi::{location, profile_params, IMAGES, PROFILE_ERRORS};
use crate::profile::UploadMeta;
use crate::register::{forget_blob, register, Registered, Registrada, Source};
use crate::IngestState;
use alpes_anonymizer::probe::MediaKind;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Caller, Role};
use alpes_platform::blobs::{StoredBlob, RAW};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{binary_content, header_param, json_content, schema, Op, IMAGE_MEDIA_TYPES};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::post("/imagenes", "uploadImage", IMAGES, "Upload one image, or several in a form")
        .describe(&format!(
            "The body is one image (`application/dicom`, `image/png`, `image/jpeg`, or `application/octet-stream` \
             to let the bytes decide), or `multipart/form-data` with one or more file parts and the profile fields. \
             The bytes stream to the blob store while they are hashed; the image is registered and \
             `ImagenRegistrada` produced before the answer. The same `Idempotency-Key`, or the same bytes from the \
             same provider, answers the same id with `\"duplicada\": true` and produces no second event.\n\n{PROFILE_ERRORS}"
        ))
        .auth(&["proveedor", "admin"])
        .params(profile_params())
        .param(header_param(
            "Idempotency-Key",
            json!({ "type": "string", "pattern": "^[!-~]{1,255}$" }),
            "Makes a retry answer the first upload's id (1 to 255 visible ASCII characters).",
        ))
        .body(true, "The image, or a form of images and profile fields.", {
            let accepted = [IMAGE_MEDIA_TYPES.as_slice(), &["application/octet-stream"]].concat();
            let mut c = binary_content(&accepted);
            c["multipart/form-data"] = json!({
                "schema": schema("UploadForm"),
                "encoding": { "file": { "contentType": accepted.join(", ") } },
            });
            c
        })
        .ok(
            202,
            "Registered; anonymization follows. `id` is the first image's.",
            Some(json_content(schema("UploadAccepted"))),
            &[("Location", location())],
        )
        .error(
            400,
            &[
                "bad_profile",
                "unreadable_dicom",
                "bad_multipart",
                "no_file",
                "bad_idempotency_key",
                "bad_body",
            ],
            "A bad profile, DICOM no reader can parse, a malformed or truncated form, a form with no file, \
             a bad `Idempotency-Key`, or a body that ended early.",
        )
        .standard(413)
        .standard(415)
}

/// The handler.
#[tracing::instrument(name = "POST /imagenes", skip_all, fields(provider = %caller.user_id))]
pub async fn handler(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Proveedor, Role::Admin])?;
    check_length(&headers, state.max_upload)?;
    let key = idempotency_key(&headers)?;
    let ct = content_type(&headers).unwrap_or("");
    let registered = if ct.trim_start().to_ascii_lowercase().starts_with("multipart/form-data") {
        multipart(&state, &ctx, &caller, ct, key.as_deref(), body).await?
    } else {
        vec![single(&state, &ctx, &caller, ct, uri.query(), key.as_deref(), body).await?]
    };
    Ok(accepted(&registered))
}

/// The images of one upload, registered.
#[derive(Serialize, ToSchema)]
#[schema(as = UploadAccepted)]
pub(crate) struct Aceptadas<'a> {
    /// The first image's id.
    #[schema(value_type = String)]
    id: Option<&'a str>,
    #[schema(min_items = 1)]
    ids: Vec<&'a str>,
    #[schema(value_type = Vec<Registrada>, min_items = 1)]
    imagenes: &'a [Registered],
    // Deprecated names.
    #[schema(deprecated, value_type = Vec<Registrada>)]
    images: &'a [Registered],
}

/// 202 with the ids and a Location for the first image.
pub fn accepted(images: &[Registered]) -> Response {
    let ids: Vec<&str> = images.iter().map(|r| r.id.as_str()).collect();
    let location = ids.first().map(|id| format!("/imagenes/{id}")).unwrap_or_default();
    let body = Aceptadas {
        id: ids.first().copied(),
        ids,
        imagenes: images,
        images,
    };
    (StatusCode::ACCEPTED, [(header::LOCATION, location)], axum::Json(body)).into_response()
}

async fn single(
    state: &IngestState,
    ctx: &RequestContext,
    caller: &Caller,
    ct: &str,
    query: Option<&str>,
    key: Option<&str>,
    body: Body,
) -> Result<Registered, ApiError> {
    let declared = media::declared(Some(ct))?;
    let meta = UploadMeta::from_query(query)?;
    let blob = state
        .blobs
        .put_stream(RAW, body.into_data_stream(), state.max_upload)
        .await
        .map_err(upload_error)?;
    let kind = checked(state, declared, &blob).await?;
    register(state, ctx, &caller.user_id, (&blob, kind), &meta, key, Source::Rest).await
}

/// Checks a stored blob's first bytes; on failure the blob is dropped.
pub async fn checked(state: &IngestState, declared: Declared, blob: &StoredBlob) -> Result<MediaKind, ApiError> {
    match media::check(declared, &blob.head) {
        Ok((kind, _)) => Ok(kind),
        Err(e) => {
            forget_blob(state, blob).await;
            Err(e)
        }
    }
}

async fn multipart(
    state: &IngestState,
    ctx: &RequestContext,
    caller: &Caller,
    ct: &str,
    key: Option<&str>,
    body: Body,
) -> Result<Vec<Registered>, ApiError> {
    let boundary =
        multer::parse_boundary(ct).map_err(|_| ApiError::bad_request("bad_multipart", "multipart/form-data needs a boundary"))?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut form = multer::Multipart::new(stream, boundary);
    let mut meta = UploadMeta::default();
    let mut files: Vec<(StoredBlob, MediaKind)> = Vec::new();
    let mut used = 0u64;
    let result: Result<(), ApiError> = async {
        while let Some(field) = form.next_field().await.map_err(|_| bad_multipart())? {
            let is_file = field.file_name().is_some() || field.content_type().is_some_and(|m| m.essence_str() != "text/plain");
            if !is_file {
                let name = field.name().unwrap_or("").to_owned();
                let value = field
                    .text()
                    .await
                    .map_err(|_| ApiError::bad_request("bad_multipart", "a form field is malformed or truncated"))?;
                meta.set(&name, &value);
                continue;
            }
            let declared = media::declared(field.content_type().map(|m| m.essence_str()))?;
            let blob = state
                .blobs
                .put_stream(RAW, field, state.max_upload.saturating_sub(used))
                .await
                .map_err(|e| part_error(e, state.max_upload))?;
            used += blob.size;
            let kind = checked(state, declared, &blob).await?;
            files.push((blob, kind));
        }
        if files.is_empty() {
            return Err(ApiError::bad_request("no_file", "the form has no file part"));
        }
        meta.validate()
    }
    .await;
    if let Err(e) = result {
        for (blob, _) in &files {
            forget_blob(state, blob).await;
        }
        return Err(e);
    }
    let mut out = Vec::with_capacity(files.len());
    for (i, (blob, kind)) in files.iter().enumerate() {
        let part_key = key.map(|k| if files.len() == 1 { k.to_owned() } else { format!("{k}#{i}") });
        match register(
            state,
            ctx,
            &caller.user_id,
            (blob, *kind),
            &meta,
            part_key.as_deref(),
            Source::Multipart,
        )
        .await
        {
            Ok(r) => out.push(r),
            Err(e) => {
                for (blob, _) in &files[i + 1..] {
                    forget_blob(state, blob).await;
                }
                return Err(e);
            }
        }
    }
    Ok(out)
}
