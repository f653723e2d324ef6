//! The listener's flags, as `alpes up` reads them.

use std::net::SocketAddr;
use std::path::PathBuf;

/// The DICOM network listener's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct DimseArgs {
    /// Where the DICOM listener (C-ECHO, C-STORE) takes associations.
    #[arg(
        id = "dimse_listen",
        long = "dimse-listen",
        env = "ALPES_DIMSE_LISTEN",
        default_value = "127.0.0.1:11112"
    )]
    pub listen: SocketAddr,
    /// The listener's own AE title: associations calling another are rejected.
    #[arg(
        id = "dimse_ae_title",
        long = "dimse-ae-title",
        env = "ALPES_DIMSE_AE_TITLE",
        default_value = "ALPES"
    )]
    pub ae_title: String,
    /// A calling AE title and the provider (user id) its images belong to, as `AE=PROVIDER`;
    /// repeatable (comma-separated in the environment). Stored at start beside those the admin
    /// route `PUT /dimse/aes/{ae}` sets; any other calling AE is rejected at association.
    #[arg(
        id = "dimse_calling_aes", long = "dimse-calling-ae",
        env = "ALPES_DIMSE_CALLING_AES",
        value_name = "AE=PROVIDER",
        value_delimiter = ',',
        value_parser = calling_ae
    )]
    pub calling_aes: Vec<(String, String)>,
    /// Associations served at once; one more is rejected (transient, local limit exceeded).
    #[arg(
        id = "dimse_max_associations",
        long = "dimse-max-associations",
        env = "ALPES_DIMSE_MAX_ASSOCIATIONS",
        default_value_t = 32
    )]
    pub max_associations: usize,
    /// The largest PDU the listener receives, bytes (4096 to 4194304); with the in-flight PDUs of
    /// an instance it bounds an association's memory.
    #[arg(id = "dimse_max_pdu", long = "dimse-max-pdu", env = "ALPES_DIMSE_MAX_PDU", default_value_t = 131_072,
          value_parser = clap::value_parser!(u32).range(4096..=4_194_304))]
    pub max_pdu: u32,
    /// Seconds an association may wait on its peer (for an association request, a PDU, or a write)
    /// before it is closed.
    #[arg(
        id = "dimse_timeout_secs",
        long = "dimse-timeout-secs",
        env = "ALPES_DIMSE_TIMEOUT_SECS",
        default_value_t = 60
    )]
    pub timeout_secs: u64,
    /// Seconds without a new instance of a study after which it is announced as complete
    /// (`EstudioCompleto`), as Orthanc's stable age.
    #[arg(
        id = "dimse_stable_study_secs",
        long = "dimse-stable-study-secs",
        env = "ALPES_DIMSE_STABLE_STUDY_SECS",
        default_value_t = 60
    )]
    pub stable_study_secs: u64,
    /// DICOM TLS: the listener's certificate chain (PEM). With `--dimse-tls-key`, every association
    /// must come over TLS.
    #[arg(
        id = "dimse_tls_cert",
        long = "dimse-tls-cert",
        env = "ALPES_DIMSE_TLS_CERT",
        value_name = "PEM",
        requires = "dimse_tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// DICOM TLS: the listener's private key (PEM).
    #[arg(
        id = "dimse_tls_key",
        long = "dimse-tls-key",
        env = "ALPES_DIMSE_TLS_KEY",
        value_name = "PEM",
        requires = "dimse_tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// DICOM TLS: only clients with a certificate this CA (PEM) signed are served.
    #[arg(
        id = "dimse_tls_client_ca",
        long = "dimse-tls-client-ca",
        env = "ALPES_DIMSE_TLS_CLIENT_CA",
        value_name = "PEM",
        requires = "dimse_tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,
}

impl Default for DimseArgs {
    /// The flags' defaults.
    fn default() -> Self {
        DimseArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 11112)),
            ae_title: "ALPES".into(),
            calling_aes: Vec::new(),
            max_associations: 32,
            max_pdu: 131_072,
            timeout_secs: 60,
            stable_study_secs: 60,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
        }
    }
}

/// Parses `AE=PROVIDER`.
fn calling_ae(text: &str) -> Result<(String, String), String> {
    let (ae, provider) = text.split_once('=').ok_or_else(|| format!("{text:?} is not AE=PROVIDER"))?;
    let ae = alpes_domain::dimse::ae_title(ae).map_err(|e| e.to_string())?;
    let provider = provider.trim();
    if provider.is_empty() {
        return Err(format!("{ae}= names no provider"));
    }
    Ok((ae, provider.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

    fn parse(args: &[&str]) -> Result<DimseArgs, clap::Error> {
        let m = DimseArgs::augment_args(clap::Command::new("up")).try_get_matches_from(args)?;
        DimseArgs::from_arg_matches(&m)
    }

    #[test]
    fn calling_aes_are_repeatable_and_checked() {
        let a = parse(&["up", "--dimse-calling-ae", "CT1=p1", "--dimse-calling-ae", " MR 2 =p2"]).expect("parses");
        assert_eq!(a.calling_aes, vec![("CT1".into(), "p1".into()), ("MR 2".into(), "p2".into())]);
        assert_eq!((a.listen.port(), a.ae_title.as_str(), a.max_pdu), (11112, "ALPES", 131_072));
        for bad in ["CT1", "=p1", "CT1=", "WAY_TOO_LONG_AE_TITLE=p", "A\\B=p"] {
            assert!(parse(&["up", "--dimse-calling-ae", bad]).is_err(), "{bad}");
        }
        assert!(parse(&["up", "--dimse-max-pdu", "100"]).is_err());
        assert!(parse(&["up", "--dimse-tls-cert", "c.pem"]).is_err(), "a certificate needs its key");
    }
}
