//! De-identification reports: the record a data protection officer files for a scope of images
//! (a provider, a study, a time range). The request and its state, who may ask for what, and the
//! report's content: one row per image (profile and options, actions applied by code, regions
//! blanked by source, rejection reason, the safety net's label, input and output checksums) and
//! the totals over them. Ids, codes, counts and checksums only: never PHI. Rendering (CSV, PDF)
//! is the query service's.

use crate::caller::{Caller, Role};
use crate::catalog::{CatalogImage, Estado, ImageAnalysis};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A report's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Formato {
    /// A PDF document with a summary, a chart and a table of the images.
    Pdf,
    /// One row per image, comma-separated, for a spreadsheet.
    Csv,
}

impl Formato {
    /// The format named `name` (`pdf` or `csv`).
    pub fn parse(name: &str) -> Option<Formato> {
        match name {
            "pdf" => Some(Formato::Pdf),
            "csv" => Some(Formato::Csv),
            _ => None,
        }
    }

    /// The media type of the file.
    pub fn media_type(self) -> &'static str {
        match self {
            Formato::Pdf => "application/pdf",
            Formato::Csv => "text/csv; charset=utf-8",
        }
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Formato::Pdf => "pdf",
            Formato::Csv => "csv",
        }
    }
}

/// Which images a report covers. Every given key must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Alcance {
    /// One provider's images (a provider's own, when it asks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proveedor_id: Option<String>,
    /// One study: its StudyInstanceUID as anonymized (what QIDO-RS answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estudio_uid: Option<String>,
    /// Images uploaded at or after (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creada_desde: Option<i64>,
    /// Images uploaded before (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creada_hasta: Option<i64>,
}

/// Why a report may not be asked for as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A consumer, or a provider naming another provider (HTTP 403).
    #[error("{0}")]
    Forbidden(&'static str),
    /// A time range that ends before it starts (HTTP 400).
    #[error("creada_hasta must be after creada_desde")]
    EmptyRange,
}

impl Alcance {
    /// The scope `caller` may have: a provider's is always its own images (it may name itself),
    /// an admin's is any; a consumer has none.
    pub fn for_caller(mut self, caller: &Caller) -> Result<Alcance, ScopeError> {
        if let (Some(from), Some(to)) = (self.creada_desde, self.creada_hasta) {
            if to <= from {
                return Err(ScopeError::EmptyRange);
            }
        }
        match caller.role {
            Role::Admin => Ok(self),
            Role::Proveedor => match &self.proveedor_id {
                Some(p) if *p != caller.user_id => Err(ScopeError::Forbidden("a provider reports on its own images only")),
                _ => {
                    self.proveedor_id = Some(caller.user_id.clone());
                    Ok(self)
                }
            },
            Role::Consumidor | Role::Medico => Err(ScopeError::Forbidden("reports are for providers and admins")),
        }
    }

    /// Whether `image` is in scope, on the keys a listing does not filter on itself.
    pub fn covers(&self, image: &CatalogImage) -> bool {
        let output = image.anonymized.as_ref();
        self.proveedor_id.as_ref().is_none_or(|p| *p == image.provider_id)
            && self
                .estudio_uid
                .as_ref()
                .is_none_or(|s| output.and_then(|o| o.study_uid.as_ref()) == Some(s))
            && self.creada_desde.is_none_or(|t| image.created_at >= t)
            && self.creada_hasta.is_none_or(|t| image.created_at < t)
    }
}

/// Where a report stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EstadoReporte {
    /// Asked for; being generated.
    Pendiente,
    /// The file is ready.
    Listo,
    /// It could not be generated (`motivo` says why); ask for a new one.
    Fallido,
}

/// A report as asked for, and how far it got. Stored as it is served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reporte {
    /// The report id.
    pub id: String,
    /// Who asked for it (only they and admins may read it).
    pub solicitante: String,
    /// The file format.
    pub formato: Formato,
    /// The images it covers.
    pub alcance: Alcance,
    /// Where it stands.
    pub estado: EstadoReporte,
    /// When it was asked for (ms).
    pub creado_at: i64,
    /// When generation last started (ms): a report pending long after this was cut short.
    pub iniciado_at: i64,
    /// When it was ready or failed (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminado_at: Option<i64>,
    /// Images in the report, once ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imagenes: Option<u64>,
    /// Size of the file, once ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// sha256 of the file, once ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Why it failed (a fixed text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub motivo: Option<String>,
}

/// The most images one report covers; a wider scope fails with a reason to narrow it.
pub const MAX_IMAGES: usize = 50_000;

/// One image's line in a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fila {
    pub imagen_id: String,
    pub proveedor_id: String,
    /// `anonimizada`, `rechazada` or `registrada`.
    pub estado: String,
    /// Upload time (ms).
    pub creada_at: i64,
    pub modalidad: String,
    /// StudyInstanceUID after de-identification.
    pub estudio_uid: String,
    pub serie_uid: String,
    pub instancia_uid: String,
    /// sha256 of the input (empty for images never anonymized, and before v7 events).
    pub sha256_entrada: String,
    /// sha256 of the anonymized output.
    pub sha256_salida: String,
    /// The profile and options asked for, `key=value` pairs.
    pub perfil: String,
    /// Attributes handled, by action code: `remove=12;empty=3`.
    pub acciones: String,
    pub uids_remapeados: i64,
    /// Regions blanked by source: `rule`, `ultrasound`, `profile`, `ocr`.
    pub regiones: BTreeMap<String, i64>,
    /// The reason code of the latest rejection.
    pub motivo_rechazo: String,
    /// The safety net's label (`texto_incrustado`, `sin_texto`, `no_analizada`), empty if none.
    pub etiqueta: String,
    /// The label's confidence, 0–100 (empty if none).
    pub confianza: Option<i64>,
    /// Lines still read as PHI after blanking.
    pub lineas_residuales: Option<i64>,
    /// Whether the output was released (false when held back).
    pub liberada: Option<bool>,
    pub version_motor: String,
    /// The OCR model that analysed it: `tesseract 5.3.0 eng`.
    pub modelo: String,
}

/// The region sources, in the order a report lists them.
pub const SOURCES: [&str; 4] = ["rule", "ultrasound", "profile", "ocr"];

/// The columns of [`Fila::cells`], in order.
pub const COLUMNS: [&str; 25] = [
    "imagen_id",
    "proveedor_id",
    "estado",
    "creada_at",
    "modalidad",
    "estudio_uid",
    "serie_uid",
    "instancia_uid",
    "sha256_entrada",
    "sha256_salida",
    "perfil",
    "acciones",
    "uids_remapeados",
    "regiones_rule",
    "regiones_ultrasound",
    "regiones_profile",
    "regiones_ocr",
    "motivo_rechazo",
    "etiqueta",
    "confianza",
    "lineas_residuales",
    "liberada",
    "version_motor",
    "modelo",
    "retenida",
];

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// `k=v` pairs of a JSON object of numbers, `;`-separated, in key order.
fn pairs(v: Option<&Value>) -> String {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(";"))
        .unwrap_or_default()
}

/// The profile as `retain=a,b;no_clean=c;regions=2;rules=x;ocr=phi` (only what was asked for).
fn profile(p: Option<&Value>) -> String {
    let Some(p) = p else { return String::new() };
    let list = |key: &str| -> Vec<String> {
        p.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let mut parts = Vec::new();
    for key in ["retain", "no_clean"] {
        let items = list(key);
        if !items.is_empty() {
            parts.push(format!("{key}={}", items.join(",")));
        }
    }
    let regions = list("regions").len();
    if regions > 0 {
        parts.push(format!("regions={regions}"));
    }
    for key in ["rules", "ocr"] {
        if let Some(v) = p.get(key).and_then(Value::as_str) {
            parts.push(format!("{key}={v}"));
        }
    }
    parts.join(";")
}

impl Fila {
    /// The line of `image`, with its latest analysis.
    pub fn of(image: &CatalogImage, analysis: Option<&ImageAnalysis>) -> Fila {
        let mut fila = Fila {
            imagen_id: image.image_id.clone(),
            proveedor_id: image.provider_id.clone(),
            estado: image.estado.as_str().to_owned(),
            creada_at: image.created_at,
            modalidad: image.modality.clone().unwrap_or_default(),
            motivo_rechazo: image.rejection_reason.clone().unwrap_or_default(),
            ..Fila::default()
        };
        if let Some(out) = &image.anonymized {
            let report = out.report.value();
            fila.estudio_uid = out.study_uid.clone().unwrap_or_default();
            fila.serie_uid = out.series_uid.clone().unwrap_or_default();
            fila.instancia_uid = out.sop_instance_uid.clone().unwrap_or_default();
            fila.sha256_salida = out.sha256.clone();
            fila.sha256_entrada = text(&report, "sha256_entrada");
            fila.perfil = profile(report.get("profile"));
            fila.acciones = pairs(report.get("actions"));
            fila.uids_remapeados = report.get("uids_remapped").and_then(Value::as_i64).unwrap_or_default();
            fila.version_motor = text(&report, "engine_version");
            if let Some(by) = report.get("regiones_por_origen").and_then(Value::as_object) {
                fila.regiones = by.iter().filter_map(|(k, n)| Some((k.clone(), n.as_i64()?))).collect();
            }
        }
        if let Some(a) = analysis {
            let v = a.body.value();
            fila.etiqueta = text(&v, "etiqueta");
            fila.confianza = v.get("confianza").and_then(Value::as_i64);
            fila.lineas_residuales = v.get("lineas_residuales").and_then(Value::as_i64);
            fila.liberada = v.get("liberada").and_then(Value::as_bool);
            let m = v.get("modelo").cloned().unwrap_or_default();
            fila.modelo = [text(&m, "nombre"), text(&m, "version"), text(&m, "idioma")]
                .join(" ")
                .trim()
                .to_owned();
        }
        fila
    }

    /// Whether the safety net held the image back (residual text).
    pub fn retenida(&self) -> bool {
        self.liberada == Some(false)
    }

    /// The line's values, in [`COLUMNS`] order.
    pub fn cells(&self) -> Vec<String> {
        let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        let mut cells = vec![
            self.imagen_id.clone(),
            self.proveedor_id.clone(),
            self.estado.clone(),
            self.creada_at.to_string(),
            self.modalidad.clone(),
            self.estudio_uid.clone(),
            self.serie_uid.clone(),
            self.instancia_uid.clone(),
            self.sha256_entrada.clone(),
            self.sha256_salida.clone(),
            self.perfil.clone(),
            self.acciones.clone(),
            self.uids_remapeados.to_string(),
        ];
        cells.extend(SOURCES.iter().map(|s| self.regiones.get(*s).copied().unwrap_or(0).to_string()));
        cells.extend([
            self.motivo_rechazo.clone(),
            self.etiqueta.clone(),
            opt(self.confianza),
            opt(self.lineas_residuales),
            self.liberada.map(|b| b.to_string()).unwrap_or_default(),
            self.version_motor.clone(),
            self.modelo.clone(),
            self.retenida().to_string(),
        ]);
        cells
    }
}

/// The totals over a report's lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totales {
    pub imagenes: u64,
    /// Distinct studies among the anonymized images.
    pub estudios: u64,
    /// Images by estado.
    pub por_estado: BTreeMap<String, u64>,
    /// Rejected images by reason code.
    pub rechazos: BTreeMap<String, u64>,
    /// Images held back for residual text.
    pub retenidas: u64,
    /// Analysed images by label.
    pub etiquetas: BTreeMap<String, u64>,
    /// Regions blanked by source (every source listed, 0 when none).
    pub regiones: BTreeMap<String, i64>,
    /// Attributes handled by action code.
    pub acciones: BTreeMap<String, i64>,
    /// Anonymized images by the profile and options they asked for (`default` for none).
    pub perfiles: BTreeMap<String, u64>,
}

impl Totales {
    /// The totals of `filas`.
    pub fn of(filas: &[Fila]) -> Totales {
        let mut t = Totales {
            imagenes: filas.len() as u64,
            regiones: SOURCES.iter().map(|s| ((*s).to_owned(), 0)).collect(),
            ..Totales::default()
        };
        let mut studies = BTreeSet::new();
        for f in filas {
            *t.por_estado.entry(f.estado.clone()).or_default() += 1;
            if !f.motivo_rechazo.is_empty() && f.estado == Estado::Rechazada.as_str() {
                *t.rechazos.entry(f.motivo_rechazo.clone()).or_default() += 1;
            }
            t.retenidas += u64::from(f.retenida());
            if !f.etiqueta.is_empty() {
                *t.etiquetas.entry(f.etiqueta.clone()).or_default() += 1;
            }
            for (source, n) in &f.regiones {
                *t.regiones.entry(source.clone()).or_default() += n;
            }
            for pair in f.acciones.split(';').filter(|p| !p.is_empty()) {
                if let Some((code, n)) = pair.split_once('=') {
                    *t.acciones.entry(code.to_owned()).or_default() += n.parse::<i64>().unwrap_or(0);
                }
            }
            if !f.estudio_uid.is_empty() {
                studies.insert(f.estudio_uid.clone());
            }
            if f.estado == Estado::Anonimizada.as_str() {
                let perfil = if f.perfil.is_empty() { "default" } else { f.perfil.as_str() };
                *t.perfiles.entry(perfil.to_owned()).or_default() += 1;
            }
        }
        t.estudios = studies.len() as u64;
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(user: &str, role: Role) -> Caller {
        Caller {
            user_id: user.into(),
            role,
        }
    }

    #[test]
    fn a_provider_reports_on_its_own_images_and_a_consumer_on_none() {
        let own = Alcance::default().for_caller(&caller("p1", Role::Proveedor)).expect("own");
        assert_eq!(own.proveedor_id.as_deref(), Some("p1"));
        let other = Alcance {
            proveedor_id: Some("p2".into()),
            ..Alcance::default()
        };
        assert!(matches!(
            other.clone().for_caller(&caller("p1", Role::Proveedor)),
            Err(ScopeError::Forbidden(_))
        ));
        assert_eq!(other.clone().for_caller(&caller("a", Role::Admin)), Ok(other));
        assert!(matches!(
            Alcance::default().for_caller(&caller("c", Role::Consumidor)),
            Err(ScopeError::Forbidden(_))
        ));
        let backwards = Alcance {
            creada_desde: Some(10),
            creada_hasta: Some(10),
            ..Alcance::default()
        };
        assert_eq!(backwards.for_caller(&caller("a", Role::Admin)), Err(ScopeError::EmptyRange));
    }

    #[test]
    fn totals_count_states_reasons_labels_regions_and_actions() {
        let filas = vec![
            Fila {
                estado: "anonimizada".into(),
                estudio_uid: "1.2".into(),
                acciones: "remove=3;empty=1".into(),
                regiones: [("ocr".to_owned(), 2)].into(),
                etiqueta: "texto_incrustado".into(),
                liberada: Some(true),
                ..Fila::default()
            },
            Fila {
                estado: "rechazada".into(),
                motivo_rechazo: "texto_residual".into(),
                etiqueta: "texto_incrustado".into(),
                liberada: Some(false),
                ..Fila::default()
            },
        ];
        let t = Totales::of(&filas);
        assert_eq!((t.imagenes, t.estudios, t.retenidas), (2, 1, 1));
        assert_eq!(t.rechazos, [("texto_residual".to_owned(), 1)].into());
        assert_eq!(t.etiquetas, [("texto_incrustado".to_owned(), 2)].into());
        assert_eq!((t.regiones["ocr"], t.regiones["rule"]), (2, 0));
        assert_eq!(t.acciones, [("empty".to_owned(), 1), ("remove".to_owned(), 3)].into());
        assert_eq!(t.perfiles, [("default".to_owned(), 1)].into());
        assert_eq!(filas[0].cells().len(), COLUMNS.len());
        assert_eq!(filas[1].cells().last().map(String::as_str), Some("true"), "retenida");
    }
}
