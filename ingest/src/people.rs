//! Institutions, doctors and patients as the API shows them (`/instituciones`, `/medicos`,
//! `/pacientes`), and the page arguments their listings share. A patient's contact data is shown
//! only by `GET /pacientes/{id}` ([`Contacto`]); no listing carries it.

use crate::openapi::REGISTRY;
use alpes_domain::consent::{ConsentState, UnregisteredPolicy};
use alpes_domain::page::PageCursor;
use alpes_domain::registry::{Doctor, DoctorStatus, Institution, Patient, Verification};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, schema, Op};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An institution.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Institution)]
pub struct Institucion {
    /// Its id.
    pub id: String,
    /// Its name.
    pub nombre: String,
    /// Its kind.
    #[schema(pattern = "^(hospital|clinica|laboratorio|aseguradora|centro_investigacion|centro_imagen|otro)$")]
    pub tipo: String,
    /// Its licence number.
    pub licencia: String,
    /// Its contact email.
    pub email: String,
    /// Its region.
    pub region: Option<String>,
    /// Whether an admin checked its licence.
    #[schema(value_type = Verification)]
    pub verificacion: Verification,
    /// What happens to images of patients it has not registered: `retener` (held back) or
    /// `liberar` (offered).
    #[schema(value_type = UnregisteredPolicy)]
    pub politica_no_registrados: UnregisteredPolicy,
    /// When it was created, ms since the Unix epoch.
    pub creada_at: i64,
}

impl From<&Institution> for Institucion {
    fn from(i: &Institution) -> Institucion {
        Institucion {
            id: i.id.clone(),
            nombre: i.nombre.clone(),
            tipo: i.tipo.clone(),
            licencia: i.licencia.clone(),
            email: i.email.clone(),
            region: i.region.clone(),
            verificacion: i.verificacion,
            politica_no_registrados: i.politica,
            creada_at: i.created_at,
        }
    }
}

/// A doctor.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Doctor)]
pub struct Medico {
    /// Their account's id (they log in with `POST /auth/login`).
    pub id: String,
    /// Their name, from their account.
    pub nombre: Option<String>,
    /// Their institution.
    pub institucion_id: String,
    /// Their licence number.
    pub licencia: String,
    /// Their specialty.
    pub especialidad: String,
    /// `active`, `suspended` or `retired`: only an active doctor may do anything.
    #[schema(value_type = DoctorStatus)]
    pub estado: DoctorStatus,
    /// When they were created, ms since the Unix epoch.
    pub creado_at: i64,
}

impl Medico {
    /// The view of `d`, named `nombre`.
    pub fn of(d: &Doctor, nombre: Option<String>) -> Medico {
        Medico {
            id: d.user_id.clone(),
            nombre,
            institucion_id: d.institution_id.clone(),
            licencia: d.licencia.clone(),
            especialidad: d.especialidad.clone(),
            estado: d.status,
            creado_at: d.created_at,
        }
    }
}

/// A patient's contact data (shown by `GET /pacientes/{id}` alone; every such read is audited).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = PatientContact)]
pub struct Contacto {
    /// Their name.
    pub nombre: String,
    /// Their email.
    pub email: String,
    /// Their phone.
    pub telefono: Option<String>,
}

/// A patient.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Patient)]
pub struct Paciente {
    /// Their id.
    pub id: String,
    /// The institution that registered them.
    pub institucion_id: String,
    /// Their doctor.
    pub medico_id: String,
    /// Their consent: `pending`, `validated_by_doctor`, `validated_by_institution`, `full_access`
    /// or `revocado`. Their anonymized images are offered to consumers only in `full_access`.
    #[schema(value_type = ConsentState)]
    pub estado: ConsentState,
    /// The language of their messages.
    #[schema(pattern = "^(es|en)$")]
    pub idioma: String,
    /// The pseudonymous PatientID their anonymized images carry (never the MRN).
    pub id_paciente_seudonimo: String,
    /// When they were registered, ms since the Unix epoch.
    pub creado_at: i64,
    /// When their consent last moved.
    pub actualizado_at: i64,
    /// Their contact data: only in `GET /pacientes/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub contacto: Option<Contacto>,
}

impl Paciente {
    /// The view of `p`, with `contacto` when given.
    pub fn of(p: &Patient, contacto: Option<Contacto>) -> Paciente {
        Paciente {
            id: p.id.clone(),
            institucion_id: p.institution_id.clone(),
            medico_id: p.doctor_id.clone(),
            estado: p.state,
            idioma: p.idioma.clone(),
            id_paciente_seudonimo: p.subject.clone(),
            creado_at: p.created_at,
            actualizado_at: p.updated_at,
            contacto,
        }
    }
}

/// The page arguments of a registry listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Only this institution's (admins; anyone else sees only their own).
    pub institucion_id: Option<String>,
    /// Only patients in this consent state (`GET /pacientes`).
    pub estado: Option<String>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, default = 50)]
    pub limit: Option<usize>,
    /// The previous page's `next_cursor` (opaque); a cursor this server did not issue is 400 `bad_cursor`.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

impl PageParams {
    /// 400 `bad_query` if `estado` is given to a listing of something other than patients.
    pub fn no_estado(&self) -> Result<(), ApiError> {
        match self.estado {
            Some(_) => Err(ApiError::bad_request("bad_query", "estado filters patients only")),
            None => Ok(()),
        }
    }

    /// The page size and the position after which it starts (cursor kind `kind`).
    pub fn page(&self, kind: char) -> Result<(usize, Option<(i64, String)>), ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::bad_request("bad_limit", "limit must be 1 to 200"));
        }
        let after = match self.cursor.as_deref() {
            Some(c) => Some(
                PageCursor::decode(kind, c)
                    .map_err(|_| ApiError::bad_request("bad_cursor", "the cursor was not issued by this listing"))?
                    .key(),
            ),
            None => None,
        };
        Ok((limit, after))
    }
}

/// The cursor after `items` (fetched `limit + 1` at most), keeping `limit` of them.
pub fn next_cursor<T>(items: &mut Vec<T>, limit: usize, kind: char, key: impl Fn(&T) -> (i64, String)) -> Option<String> {
    if items.len() <= limit {
        return None;
    }
    items.truncate(limit);
    items.last().map(|t| {
        let (at, id) = key(t);
        PageCursor::new(at, id).encode(kind)
    })
}

/// The operation of a registry listing at `path`, answering `answer` (a schema name), for the
/// callers who act for an institution.
pub fn list_op(path: &'static str, id: &str, summary: &str, describe: &str, answer: &str) -> Op {
    Op::get(path, id, REGISTRY, summary)
        .describe(describe)
        .auth(&["admin", "proveedor", "medico"])
        .institution_scoped()
        .query_params::<PageParams>()
        .ok(200, "One page.", Some(json_content(schema(answer))), &[])
        .error(
            400,
            &["bad_query", "bad_cursor", "bad_limit", "bad_estado"],
            "An unknown query key or consent state, or a bad cursor or page size.",
        )
}

/// A required text field: trimmed, 1 to `max` characters, no control character (422 `code`).
pub fn text_field(value: &str, max: usize, code: &'static str) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            code,
            format!("{} must be 1 to {max} characters, none of them a control character", &code[4..]),
        ));
    }
    Ok(v.to_owned())
}
