//! The matrix's rows: every route, with what each principal must get from it.

use super::*;

/// Every route of both routers.
pub(super) fn rows(fx: &Fixtures, a_token: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut add = |method: Method, template: &str, body: Box<dyn Fn(Who) -> Body>, expect: [u16; 12], serves: Serves| {
        rows.push(Row {
            method,
            template: template.to_owned(),
            // A template may carry a note after a space: `/usuarios (rol admin)`.
            path: fx.fill(template.split(' ').next().unwrap_or(template)),
            body,
            expect,
            serves,
        });
    };
    let none = || -> Box<dyn Fn(Who) -> Body> { Box::new(|_| Body::Empty) };
    let fixed = |b: Body| -> Box<dyn Fn(Who) -> Body> { Box::new(move |_| b.clone()) };
    let (get, post, put, delete) = (Method::GET, Method::POST, Method::PUT, Method::DELETE);
    use Serves::{Data, ImageData, Raw};

    // ---- ingest: the command side ----
    let upload = fixture(UPLOADED);
    add(
        post.clone(),
        "/imagenes",
        fixed(Body::Bytes("application/dicom".into(), upload.clone())),
        guarded(202, 202, 403, 202, 202),
        Data,
    );
    add(
        post.clone(),
        "/studies",
        fixed(stow_body(&upload)),
        guarded(200, 200, 403, 200, 200),
        Data,
    );
    add(
        post.clone(),
        "/studies/{up_study}",
        fixed(stow_body(&upload)),
        guarded(200, 200, 403, 200, 200),
        Data,
    );
    let profile = Body::Json(json!({"no_clean": ["descriptors"]}));
    // Another provider's image is as unknown as an image that does not exist (404).
    add(
        post.clone(),
        "/anonimizar/{a_img}",
        fixed(profile.clone()),
        guarded(202, 404, 403, 202, 202),
        Data,
    );
    add(
        post.clone(),
        "/anonimizar/{a_rej}",
        fixed(profile.clone()),
        guarded(202, 404, 403, 202, 202),
        Data,
    );
    add(
        post.clone(),
        "/anonimizar/{b_img}",
        fixed(profile.clone()),
        guarded(404, 202, 403, 202, 404),
        Data,
    );
    add(
        post.clone(),
        "/anonimizar/{unknown}",
        fixed(profile),
        guarded(404, 404, 403, 404, 404),
        Data,
    );
    let a = fx.a.clone();
    add(
        post.clone(),
        "/monetizacion/pagar",
        Box::new(move |who| {
            Body::Json(json!({"usuario_id": a, "amount_minor": 1, "currency": "EUR", "reference": format!("authz-{}", who.column())}))
        }),
        guarded(403, 403, 403, 202, 403),
        Data,
    );
    // Only an admin approves a consumer (it stays approved: the other rows download as it).
    add(
        put.clone(),
        "/monetizacion/consumidores/{consumer}",
        fixed(Body::Json(
            json!({"verificado": true, "limite_credito_minor": 1_000_000_000, "moneda": "EUR"}),
        )),
        guarded(403, 403, 403, 200, 403),
        Data,
    );
    // Anyone may open a provider or consumer account; a bad credential is still refused.
    let mut open = guarded(201, 201, 201, 201, 201);
    open[0] = 201;
    add(
        post.clone(),
        "/usuarios",
        Box::new(|who| {
            Body::Json(
                json!({"nombre": "New", "email": format!("new-{}@matrix.example", who.column()), "password": PASSWORD, "rol": "proveedor"}),
            )
        }),
        open,
        Data,
    );
    // Only an admin creates an admin (no credential at all: 401).
    add(
        post.clone(),
        "/usuarios (rol admin)",
        Box::new(|who| {
            Body::Json(
                json!({"nombre": "Root", "email": format!("root-{}@matrix.example", who.column()), "password": PASSWORD, "rol": "admin"}),
            )
        }),
        guarded(403, 403, 403, 201, 403),
        Data,
    );
    add(
        post.clone(),
        "/auth/login",
        fixed(Body::Json(json!({"email": fx.a_email, "password": PASSWORD}))),
        public(200),
        Data,
    );
    let tokens = fx.refresh_tokens.clone();
    add(
        post.clone(),
        "/auth/refresh",
        Box::new(move |who| Body::Json(json!({"refresh_token": tokens[&("refresh", who)]}))),
        public(200),
        Data,
    );
    // Logout needs a bearer token: an API key has no session to end.
    let tokens = fx.refresh_tokens.clone();
    add(
        post.clone(),
        "/auth/logout",
        Box::new(move |who| Body::Json(json!({"refresh_token": tokens[&("logout", who)]}))),
        guarded(204, 204, 204, 204, 401),
        Data,
    );
    add(
        post.clone(),
        "/auth/verify",
        fixed(Body::Json(json!({"token": a_token}))),
        public(200),
        Data,
    );
    add(
        post.clone(),
        "/api-keys",
        fixed(Body::Json(json!({"nombre": "matrix", "rol": "proveedor", "usuario_id": fx.a}))),
        guarded(403, 403, 403, 201, 403),
        Data,
    );
    add(get.clone(), "/api-keys", none(), guarded(403, 403, 403, 200, 403), Data);
    add(delete.clone(), "/api-keys/{key_id}", none(), guarded(403, 403, 403, 204, 403), Data);
    // The DICOM listener's calling AE titles: an admin's alone (mapping provider A, idempotent).
    add(get.clone(), "/dimse/aes", none(), guarded(200, 200, 403, 200, 200), Data);
    add(
        put.clone(),
        "/dimse/aes/MATRIX_SCU",
        fixed(Body::Json(json!({"proveedor_id": fx.a}))),
        guarded(403, 403, 403, 200, 403),
        Data,
    );
    add(
        delete.clone(),
        "/dimse/aes/NEVER_MAPPED",
        none(),
        guarded(403, 403, 403, 404, 403),
        Data,
    );
    // Import jobs: a provider's (or its API key's) own; an admin names the provider. The URL is
    // link-local, refused by the importer before any request.
    let job = Body::Json(json!({"tipo": "urls", "urls": ["http://169.254.0.1/matrix.dcm"]}));
    add(post.clone(), "/importaciones", fixed(job), guarded(202, 202, 403, 422, 202), Data);
    add(get.clone(), "/importaciones", none(), guarded(200, 200, 403, 200, 200), Data);
    add(
        get.clone(),
        "/importaciones/{unknown}",
        none(),
        guarded(404, 404, 403, 404, 404),
        Data,
    );
    add(
        post.clone(),
        "/importaciones/{unknown}/cancelar",
        none(),
        guarded(404, 404, 403, 404, 404),
        Data,
    );
    // The registry: the matrix's providers belong to no institution, so they act for none (403
    // `no_institution`); an admin acts for every one, and an unknown one is 404. A doctor's
    // rights are checked by the consent test (`alpes/tests/consent.rs`).
    let institution = Body::Json(json!({"nombre": "Matrix", "tipo": "hospital", "licencia": "LIC-MATRIX", "email": "m@h.example"}));
    add(
        post.clone(),
        "/instituciones",
        fixed(institution),
        guarded(403, 403, 403, 201, 403),
        Data,
    );
    let registry_read = guarded(403, 403, 403, 200, 403);
    let registry_unknown = guarded(403, 403, 403, 404, 403);
    add(get.clone(), "/instituciones", none(), registry_read, Data);
    add(get.clone(), "/instituciones/{unknown}", none(), registry_unknown, Data);
    let change = Body::Json(json!({"politica_no_registrados": "liberar"}));
    add(put.clone(), "/instituciones/{unknown}", fixed(change), registry_unknown, Data);
    add(delete.clone(), "/instituciones/{unknown}", none(), registry_unknown, Data);
    let hook = Body::Json(json!({"url": "http://127.0.0.1:9/hook", "eventos": ["ConsentimientoCambiado"]}));
    add(
        post.clone(),
        "/instituciones/{unknown}/webhooks",
        fixed(hook),
        registry_unknown,
        Data,
    );
    add(get.clone(), "/instituciones/{unknown}/webhooks", none(), registry_unknown, Data);
    add(
        delete.clone(),
        "/instituciones/{unknown}/webhooks/{unknown}",
        none(),
        registry_unknown,
        Data,
    );
    let doctor = Body::Json(json!({
        "nombre": "Dr. Matrix", "email": "dr.matrix@h.example", "password": PASSWORD,
        "licencia": "MED-MATRIX", "institucion_id": "no-such-institution", "especialidad": "radiologia"
    }));
    add(post.clone(), "/medicos", fixed(doctor), registry_unknown, Data);
    add(get.clone(), "/medicos", none(), registry_read, Data);
    add(get.clone(), "/medicos/{unknown}", none(), registry_unknown, Data);
    let status = Body::Json(json!({"estado": "suspended"}));
    add(put.clone(), "/medicos/{unknown}/estado", fixed(status), registry_unknown, Data);
    add(delete.clone(), "/medicos/{unknown}", none(), registry_unknown, Data);
    let patient = Body::Json(json!({
        "nombre": "Matrix Patient", "email": "p@h.example", "id_paciente": "MRN-MATRIX",
        "institucion_id": "no-such-institution", "medico_id": "no-such-doctor"
    }));
    add(post.clone(), "/pacientes", fixed(patient), registry_unknown, Data);
    add(get.clone(), "/pacientes", none(), registry_read, Data);
    add(get.clone(), "/pacientes/{unknown}", none(), registry_unknown, Data);
    add(delete.clone(), "/pacientes/{unknown}", none(), registry_unknown, Data);
    add(post.clone(), "/pacientes/{unknown}/validar", none(), registry_unknown, Data);
    add(post.clone(), "/pacientes/{unknown}/revocar", none(), registry_unknown, Data);
    // The patient's own routes take no credential, only a code: an unknown one is 404 for all.
    let code = Body::Json(json!({"codigo": "NOPE-NOPE-NOPE"}));
    add(post.clone(), "/pacientes/consentimiento", fixed(code.clone()), public(404), Data);
    add(post.clone(), "/pacientes/revocacion", fixed(code), public(404), Data);
    add(get.clone(), "/notificaciones", none(), guarded(200, 200, 403, 200, 200), Data);
    add(get.clone(), "/instituciones/{unknown}/panel", none(), registry_unknown, Data);
    add(get.clone(), "/medicos/{unknown}/panel", none(), registry_unknown, Data);
    add(get.clone(), "/health", none(), public(200), Data);
    add(get.clone(), "/ready", none(), public(200), Data);
    add(get.clone(), "/metrics", none(), public(200), Data);
    add(get.clone(), "/.well-known/jwks.json", none(), public(200), Data);
    add(get.clone(), "/openapi.json", none(), public(200), Data);
    add(get.clone(), "/docs", none(), public(200), Data);
    add(get.clone(), "/", none(), public(200), Data);
    let asset = alpes_console::asset_paths().next().expect("the console has assets");
    add(get.clone(), &format!("/assets/{asset}"), none(), public(200), Data);
    add(get.clone(), "/assets/{unknown}", none(), public(404), Data);

    // ---- query-api: the read side ----
    add(get.clone(), "/imagenes", none(), guarded(200, 200, 200, 200, 200), ImageData);
    add(get.clone(), "/eventos/imagenes", none(), guarded(200, 200, 403, 200, 200), Data);
    add(
        get.clone(),
        "/imagenes?proveedor_id={A}",
        none(),
        guarded(200, 403, 200, 200, 200),
        ImageData,
    );
    for estado in ["rechazada", "registrada"] {
        add(
            get.clone(),
            &format!("/imagenes?estado={estado}"),
            none(),
            guarded(200, 200, 403, 200, 200),
            ImageData,
        );
    }
    add(
        get.clone(),
        "/imagenes/{a_img}",
        none(),
        guarded(200, 404, 200, 200, 200),
        ImageData,
    );
    add(
        get.clone(),
        "/imagenes/{a_rej}",
        none(),
        guarded(200, 404, 404, 200, 200),
        ImageData,
    );
    add(
        get.clone(),
        "/imagenes/{a_pend}",
        none(),
        guarded(200, 404, 404, 200, 200),
        ImageData,
    );
    add(
        get.clone(),
        "/imagenes/{b_img}",
        none(),
        guarded(404, 200, 200, 200, 404),
        ImageData,
    );
    add(
        get.clone(),
        "/imagenes/{b_rej}",
        none(),
        guarded(404, 200, 404, 200, 404),
        ImageData,
    );
    add(get.clone(), "/imagenes/{unknown}", none(), guarded(404, 404, 404, 404, 404), Data);
    // An image's analysis: whoever may see the image; a rejected image was never analysed.
    add(
        get.clone(),
        "/imagenes/{a_img}/analisis",
        none(),
        guarded(200, 404, 200, 200, 200),
        ImageData,
    );
    add(
        get.clone(),
        "/imagenes/{b_img}/analisis",
        none(),
        guarded(404, 200, 200, 200, 404),
        ImageData,
    );
    add(
        get.clone(),
        "/imagenes/{a_rej}/analisis",
        none(),
        guarded(404, 404, 404, 404, 404),
        Data,
    );
    add(get.clone(), "/analisis/modelo", none(), guarded(200, 200, 200, 200, 200), Data);
    // Reports: a provider (or its key) of its own images, an admin of any; a consumer none.
    add(
        post.clone(),
        "/reportes",
        fixed(Body::Json(json!({"formato": "csv"}))),
        guarded(202, 202, 403, 202, 202),
        Data,
    );
    add(
        post.clone(),
        "/reportes (another provider's)",
        fixed(Body::Json(json!({"formato": "csv", "alcance": {"proveedor_id": fx.b.clone()}}))),
        guarded(403, 202, 403, 202, 403),
        Data,
    );
    // A's report: A (and its key) and admins read it; B and consumers do not.
    add(get.clone(), "/reportes/{a_report}", none(), guarded(200, 404, 403, 200, 200), Data);
    add(
        get.clone(),
        "/imagenes/{a_img}/anonimizada",
        none(),
        guarded(403, 403, 200, 200, 403),
        ImageData,
    );
    add(
        get.clone(),
        "/imagenes/{b_img}/anonimizada",
        none(),
        guarded(403, 403, 200, 200, 403),
        ImageData,
    );
    // Never anonymized: a consumer may not even see it (404); an admin sees it but it has no
    // anonymized bytes (409); the raw bytes are served to no one.
    for id in ["{a_rej}", "{a_pend}", "{b_rej}"] {
        add(
            get.clone(),
            &format!("/imagenes/{id}/anonimizada"),
            none(),
            guarded(403, 403, 404, 409, 403),
            Raw,
        );
    }
    add(
        get.clone(),
        "/imagenes/{unknown}/anonimizada",
        none(),
        guarded(403, 403, 404, 404, 403),
        Data,
    );
    add(get.clone(), "/usuarios", none(), guarded(403, 403, 403, 200, 403), Data);
    add(get.clone(), "/usuarios/{A}", none(), guarded(200, 403, 403, 200, 200), Data);
    add(get.clone(), "/usuarios/{consumer}", none(), guarded(403, 403, 200, 200, 403), Data);
    add(get.clone(), "/auditoria", none(), guarded(403, 403, 403, 200, 403), Data);
    for user in ["{A}", "{B}"] {
        let mine = if user == "{A}" { (200, 403, 200) } else { (403, 200, 403) };
        for route in ["saldo", "movimientos"] {
            add(
                get.clone(),
                &format!("/monetizacion/{route}/{user}"),
                none(),
                guarded(mine.0, mine.1, 403, 200, mine.2),
                Data,
            );
        }
    }
    add(get.clone(), "/monetizacion/pares", none(), guarded(403, 403, 403, 200, 403), Data);
    for route in ["saldo", "movimientos"] {
        add(
            get.clone(),
            &format!("/monetizacion/{route}/{{consumer}}"),
            none(),
            guarded(403, 403, 200, 200, 403),
            Data,
        );
    }
    // DICOMweb: consumers and admins over the anonymized set; a provider (or its key) over its
    // own images only: B's searches answer (with none of A's studies), B's retrievals of A's
    // study find nothing.
    let (search, dicomweb) = (guarded(200, 200, 200, 200, 200), guarded(200, 404, 200, 200, 200));
    for qido in [
        "/studies",
        "/series",
        "/instances",
        "/studies/{study}/series",
        "/studies/{study}/instances",
        "/studies/{study}/series/{series}/instances",
    ] {
        add(get.clone(), qido, none(), search, ImageData);
    }
    for target in [
        "/studies/{study}",
        "/studies/{study}/series/{series}",
        "/studies/{study}/series/{series}/instances/{sop}",
    ] {
        add(get.clone(), target, none(), dicomweb, ImageData);
        add(get.clone(), &format!("{target}/metadata"), none(), dicomweb, ImageData);
        add(get.clone(), &format!("{target}/thumbnail"), none(), dicomweb, ImageData);
        add(get.clone(), &format!("{target}/rendered"), none(), dicomweb, ImageData);
    }
    for pixels in ["frames/1", "frames/1/rendered", "bulkdata/7FE00010"] {
        let path = format!("/studies/{{study}}/series/{{series}}/instances/{{sop}}/{pixels}");
        add(get.clone(), &path, none(), dicomweb, ImageData);
    }
    // The UIDs of an upload before de-identification (A's anonymized image, A's rejected one,
    // A's pending one) name nothing: no bytes, no metadata, for anyone.
    let unknown_uid = guarded(404, 404, 404, 404, 404);
    for (study, series, sop) in [
        ("{raw_study}", "{raw_series}", "{raw_sop}"),
        ("{rej_study}", "{rej_series}", "{rej_sop}"),
        ("{pend_study}", "{pend_series}", "{pend_sop}"),
    ] {
        for target in [
            format!("/studies/{study}"),
            format!("/studies/{study}/series/{series}"),
            format!("/studies/{study}/series/{series}/instances/{sop}"),
        ] {
            add(get.clone(), &target, none(), unknown_uid, Raw);
            add(get.clone(), &format!("{target}/metadata"), none(), unknown_uid, Raw);
            add(get.clone(), &format!("{target}/thumbnail"), none(), unknown_uid, Raw);
            add(get.clone(), &format!("{target}/rendered"), none(), unknown_uid, Raw);
        }
        for pixels in ["frames/1", "frames/1/rendered", "bulkdata/7FE00010"] {
            let path = format!("/studies/{study}/series/{series}/instances/{sop}/{pixels}");
            add(get.clone(), &path, none(), unknown_uid, Raw);
        }
    }
    rows
}
