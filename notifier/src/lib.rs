//! Alpes notifier: turns events into messages, as the consumer group `alpes-notifier`.
//!
//! - [`plan`]: which notifications an event asks for (the patient's confirmation with their
//!   codes, the doctor's validation request, a revocation to the institution, a rejected image or
//!   a payment to the provider, and the institution's subscribed webhooks);
//! - [`deliver`]: each sent once, with retries and a dead-letter topic;
//! - [`email`]: SMTP; [`sms`]: a Twilio-style HTTP provider; [`webhook`]: signed callbacks;
//!   [`templates`]: the messages, in Spanish and English;
//! - [`app`]: the service as one app; [`args`]: its flags.

pub mod app;
pub mod args;
pub mod deliver;
pub mod email;
pub mod error;
pub mod plan;
pub mod sms;
pub mod templates;
pub mod webhook;

pub use app::{NotifierApp, NotifierDeps};
pub use args::NotifyArgs;
pub use error::{Error, Result, SendError};
