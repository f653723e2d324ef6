//! The notifier's flags, as `alpes up` reads them. Without `--smtp-url` no email is sent, without
//! `--sms-url` no SMS (each such notification is recorded `omitida`); webhooks go only to the
//! hosts `--webhook-allow` names.

/// The notifier's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct NotifyArgs {
    /// The SMTP server email is sent through: `smtp://HOST:PORT` (plain, a local relay),
    /// `smtp://HOST:PORT?tls=starttls`, or `smtps://USER:PASSWORD@HOST:PORT`.
    #[arg(id = "smtp_url", long = "smtp-url", env = "ALPES_SMTP_URL", value_name = "URL")]
    pub smtp_url: Option<String>,
    /// The sender of every email: `Alpes <noreply@example.org>` or an address.
    #[arg(
        id = "smtp_from",
        long = "smtp-from",
        env = "ALPES_SMTP_FROM",
        default_value = "Alpes <noreply@alpes.invalid>"
    )]
    pub smtp_from: String,
    /// The SMS provider's API base (Twilio's REST API shape: `POST
    /// {base}/2010-04-01/Accounts/{account}/Messages.json`).
    #[arg(id = "sms_url", long = "sms-url", env = "ALPES_SMS_URL", value_name = "URL")]
    pub sms_url: Option<String>,
    /// The SMS provider's account id.
    #[arg(id = "sms_account", long = "sms-account", env = "ALPES_SMS_ACCOUNT", default_value = "")]
    pub sms_account: String,
    /// The SMS provider's API token (prefer the environment: a flag shows in `ps`).
    #[arg(
        id = "sms_token",
        long = "sms-token",
        env = "ALPES_SMS_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub sms_token: String,
    /// The SMS sender: a number or an alphanumeric sender id.
    #[arg(id = "sms_from", long = "sms-from", env = "ALPES_SMS_FROM", default_value = "Alpes")]
    pub sms_from: String,
    /// A host (or `host:port`) webhooks may be posted to; repeatable (comma-separated in the
    /// environment). An institution can subscribe no other URL, and none is allowed by default.
    #[arg(
        id = "webhook_allow",
        long = "webhook-allow",
        env = "ALPES_WEBHOOK_ALLOW",
        value_name = "HOST",
        value_delimiter = ','
    )]
    pub webhook_allow: Vec<String>,
    /// Tries per notification (the first included) before it is given up on the dead-letter
    /// topic `alpes.notifications.dead`.
    #[arg(
        id = "notify_attempts",
        long = "notify-attempts",
        env = "ALPES_NOTIFY_ATTEMPTS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u32).range(1..=20)
    )]
    pub attempts: u32,
    /// The wait before the first retry, ms; it doubles per retry, with jitter.
    #[arg(
        id = "notify_backoff_ms",
        long = "notify-backoff-ms",
        env = "ALPES_NOTIFY_BACKOFF_MS",
        default_value_t = 1_000
    )]
    pub backoff_ms: u64,
}

impl Default for NotifyArgs {
    fn default() -> Self {
        NotifyArgs {
            smtp_url: None,
            smtp_from: "Alpes <noreply@alpes.invalid>".into(),
            sms_url: None,
            sms_account: String::new(),
            sms_token: String::new(),
            sms_from: "Alpes".into(),
            webhook_allow: Vec::new(),
            attempts: 5,
            backoff_ms: 1_000,
        }
    }
}
