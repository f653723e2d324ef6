//! The dashboards of an institution and of a doctor, as the query side counts them from what it
//! materialized (images, downloads, rejections, and the consent events): no request reads the
//! command side's tables or Kafka.

use serde::Serialize;
use std::collections::BTreeMap;

/// What an institution's dashboard shows (`GET /instituciones/{id}/panel`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = InstitutionPanel))]
pub struct InstitutionPanel {
    /// Its providers' images by `estado` (`registrada`, `rechazada`, `anonimizada`).
    pub imagenes_por_estado: BTreeMap<String, i64>,
    /// Of its anonymized images, how many a consumer is offered now (consent, policy).
    pub imagenes_ofrecidas: i64,
    /// Downloads of its images.
    pub descargas: i64,
    /// What those downloads earned, minor units by ISO 4217 currency.
    pub ingresos_minor: BTreeMap<String, i64>,
    /// Its live patients by consent state.
    pub pacientes_por_estado: BTreeMap<String, i64>,
    /// Patients awaiting their doctor's validation (`pending`).
    pub pendientes_medico: i64,
    /// Patients awaiting the institution's validation (`validated_by_doctor`).
    pub pendientes_institucion: i64,
    /// Its rejected images by reason.
    pub rechazos_por_motivo: BTreeMap<String, i64>,
}

/// What a doctor's dashboard shows (`GET /medicos/{id}/panel`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = DoctorPanel))]
pub struct DoctorPanel {
    /// Their live patients by consent state.
    pub pacientes_por_estado: BTreeMap<String, i64>,
    /// Their patients awaiting their validation (`pending`).
    pub pendientes_validacion: i64,
}
