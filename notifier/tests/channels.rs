//! The channel adapters against real servers on 127.0.0.1: email through a real SMTP server
//! (aiosmtpd, from `ALPES_AIOSMTPD_PYTHON`: without it the email tests fail, saying how to
//! set it), SMS and webhooks through a recording HTTP server standing in for the provider or
//! the receiver. Nothing is sent anywhere else.

mod support;

use alpes_notifier::email::Mailer;
use alpes_notifier::sms::SmsClient;
use alpes_notifier::templates::{render, Lang, Message};
use alpes_notifier::webhook::{self, WebhookClient};
use base64::Engine as _;
use support::{closed_port, Recorder, SmtpSink};

const CONFIRM: &str = "ABCD-1234";
const REVOKE: &str = "WXYZ-9876";

fn confirmation() -> Message<'static> {
    Message::PatientConfirmation {
        institution: "Clínica San Rafael",
        confirm_code: CONFIRM,
        revoke_code: REVOKE,
    }
}

#[tokio::test]
async fn email_reaches_a_real_smtp_server_with_recipient_subject_and_codes() {
    let sink = SmtpSink::start();
    let mailer = Mailer::new(&format!("smtp://127.0.0.1:{}", sink.port), "Alpes <noreply@alpes.example>").expect("mailer");
    assert_eq!(mailer.host(), "127.0.0.1");
    for (n, lang) in [(1, Lang::Es), (2, Lang::En)] {
        let rendered = render(&confirmation(), lang);
        mailer
            .send("María López <maria.lopez@example.org>", &rendered.subject, &rendered.text)
            .await
            .expect("sent");
        let got = sink.message(n).await;
        assert_eq!(got["mail_from"], "noreply@alpes.example");
        assert_eq!(got["rcpt_tos"], serde_json::json!(["maria.lopez@example.org"]));
        assert!(got["to"].as_str().expect("to").contains("maria.lopez@example.org"), "{got}");
        assert!(got["from"].as_str().expect("from").contains("noreply@alpes.example"), "{got}");
        assert_eq!(got["subject"], rendered.subject.as_str(), "{got}");
        let id = got["message_id"].as_str().expect("message id");
        assert!(id.starts_with('<') && id.ends_with("@alpes.example>"), "{got}");
        assert_eq!(
            (got["content_type"].as_str(), got["charset"].as_str()),
            (Some("text/plain"), Some("utf-8")),
            "{got}"
        );
        let text = got["text"].as_str().expect("a text body").replace("\r\n", "\n");
        assert_eq!(text.trim_end(), rendered.text.trim_end(), "{got}");
        let code_line = match lang {
            Lang::Es => format!("Código de confirmación: {CONFIRM}"),
            Lang::En => format!("Confirmation code: {CONFIRM}"),
        };
        assert!(text.lines().any(|l| l == code_line), "{text}");
    }
    assert_eq!(sink.count(), 2);
}

#[tokio::test]
async fn smtp_4xx_is_transient_5xx_permanent_and_neither_names_the_recipient() {
    let sink = SmtpSink::start();
    let mailer = Mailer::new(&format!("smtp://127.0.0.1:{}", sink.port), "noreply@alpes.example").expect("mailer");
    let err = mailer.send("tempfail@example.org", "s", "t").await.expect_err("451");
    assert_eq!((err.reason.as_str(), err.transient), ("smtp 451", true));
    let err = mailer.send("nouser@example.org", "s", "t").await.expect_err("550");
    assert_eq!((err.reason.as_str(), err.transient), ("smtp 550", false));
    let err = mailer.send("not an address", "s", "t").await.expect_err("unparsable");
    assert_eq!((err.reason.as_str(), err.transient), ("invalid recipient", false));
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn email_to_a_closed_port_is_transient() {
    let mailer = Mailer::new(&format!("smtp://127.0.0.1:{}", closed_port()), "noreply@alpes.example").expect("mailer");
    let err = mailer.send("maria.lopez@example.org", "s", "t").await.expect_err("refused");
    assert!(err.transient, "{err:?}");
    assert_eq!(err.reason, "connect refused");
}

#[tokio::test]
async fn sms_posts_twilios_form_with_basic_auth() {
    let provider = Recorder::start(&[201]).await;
    let sms = SmsClient::new(&provider.base, "AC0123", "tok-secret", "+15005550006").expect("client");
    let body = render(&confirmation(), Lang::Es).text;
    sms.send("+34 600-123-456", &body).await.expect("sent");
    let got = provider.requests();
    assert_eq!(got.len(), 1);
    let req = &got[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/2010-04-01/Accounts/AC0123/Messages.json");
    let basic = base64::engine::general_purpose::STANDARD.encode("AC0123:tok-secret");
    assert_eq!(req.header("authorization"), Some(format!("Basic {basic}").as_str()));
    assert_eq!(req.header("content-type"), Some("application/x-www-form-urlencoded"));
    let form = req.form();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(field("To"), Some("+34600123456"));
    assert_eq!(field("From"), Some("+15005550006"));
    assert_eq!(field("Body"), Some(body.as_str()));
    assert!(field("Body").expect("body").contains(&format!("Código de confirmación: {CONFIRM}")));
}

#[tokio::test]
async fn sms_failures_are_classified_and_redirects_not_followed() {
    let provider = Recorder::start(&[500, 400, 429, 302]).await;
    let sms = SmsClient::new(&provider.base, "AC0123", "tok", "Alpes").expect("client");
    let cases = [("http 500", true), ("http 400", false), ("http 429", true), ("http 302", false)];
    for (reason, transient) in cases {
        let err = sms.send("+34600123456", "hola").await.expect_err(reason);
        assert_eq!((err.reason.as_str(), err.transient), (reason, transient));
    }
    let err = sms.send("600123456", "hola").await.expect_err("not E.164");
    assert_eq!((err.reason.as_str(), err.transient), ("invalid phone number", false));
    // Four requests, none to the redirect's target, none for the bad number.
    let paths: Vec<String> = provider.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/2010-04-01/Accounts/AC0123/Messages.json"; 4]);
    let closed = SmsClient::new(&format!("http://127.0.0.1:{}", closed_port()), "AC0123", "tok", "Alpes").expect("client");
    let err = closed.send("+34600123456", "hola").await.expect_err("refused");
    assert_eq!((err.reason.as_str(), err.transient), ("connect refused", true));
}

#[tokio::test]
async fn webhooks_are_signed_and_a_500_is_transient_then_retried() {
    let receiver = Recorder::start(&[500, 200]).await;
    let client = WebhookClient::new().expect("client");
    let secret = b"whsec_0123456789";
    let body = br#"{"evento":"ImagenRechazada","imagen_id":"img-42"}"#;
    let url = format!("{}/hooks/alpes", receiver.base);
    let now = 1_760_000_000;
    let err = client
        .deliver(&url, secret, "ImagenRechazada", "dlv-1", body, now)
        .await
        .expect_err("500");
    assert_eq!((err.reason.as_str(), err.transient), ("http 500", true));
    client
        .deliver(&url, secret, "ImagenRechazada", "dlv-1", body, now + 30)
        .await
        .expect("200");
    let got = receiver.requests();
    assert_eq!(got.len(), 2);
    for (req, at) in got.iter().zip([now, now + 30]) {
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/hooks/alpes"));
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header(webhook::EVENT_HEADER), Some("ImagenRechazada"));
        assert_eq!(req.header(webhook::DELIVERY_HEADER), Some("dlv-1"));
        assert_eq!(&req.body[..], &body[..]);
        let sig = req.header(webhook::SIGNATURE_HEADER).expect("signed");
        assert_eq!(sig, webhook::signature_header(secret, at, body));
        assert!(webhook::verify(secret, sig, &req.body, at + 60, 300), "{sig}");
        assert!(
            !webhook::verify(secret, sig, br#"{"evento":"ImagenAceptada","imagen_id":"img-42"}"#, at, 300),
            "tampered body"
        );
        assert!(!webhook::verify(b"another secret", sig, &req.body, at, 300), "another secret");
        assert!(!webhook::verify(secret, sig, &req.body, at + 301, 300), "too late");
    }
}

#[tokio::test]
async fn webhook_failures_are_classified_and_redirects_not_followed() {
    let receiver = Recorder::start(&[404, 408, 307, 503]).await;
    let client = WebhookClient::new().expect("client");
    let url = format!("{}/hook", receiver.base);
    for (reason, transient) in [("http 404", false), ("http 408", true), ("http 307", false), ("http 503", true)] {
        let err = client.deliver(&url, b"k", "E", "d", b"{}", 0).await.expect_err(reason);
        assert_eq!((err.reason.as_str(), err.transient), (reason, transient));
    }
    let paths: Vec<String> = receiver.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/hook"; 4], "the redirect's target was never asked");
    let closed = format!("http://127.0.0.1:{}/hook", closed_port());
    let err = client.deliver(&closed, b"k", "E", "d", b"{}", 0).await.expect_err("refused");
    assert_eq!((err.reason.as_str(), err.transient), ("connect refused", true));
}
