//! The messages the notifier sends, in Spanish and English: [`render`] turns a [`Message`]
//! into a subject and a plain-text body in a [`Lang`].
//!
//! A subject never carries a value (no id, name or code): only the body does. Money is given
//! in minor units and shown with two decimals (`12345` EUR is `123.45 EUR`).

use std::fmt::Write as _;

/// The language of a message: Spanish unless asked otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Spanish.
    #[default]
    Es,
    /// English.
    En,
}

/// A language tag that is neither `es` nor `en`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language (expected es or en)")]
pub struct UnknownLang;

impl std::str::FromStr for Lang {
    type Err = UnknownLang;

    /// `es` or `en`, in any case, with or without a region (`es-CO`, `en_GB`).
    fn from_str(s: &str) -> Result<Lang, UnknownLang> {
        let primary = s.trim().split(['-', '_']).next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("es") {
            Ok(Lang::Es)
        } else if primary.eq_ignore_ascii_case("en") {
            Ok(Lang::En)
        } else {
            Err(UnknownLang)
        }
    }
}

impl Lang {
    /// `s`'s language, or Spanish if it is none of ours (a patient's `idioma`, say).
    pub fn parse_or_default(s: &str) -> Lang {
        s.parse().unwrap_or_default()
    }

    /// The tag: `es` or `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Es => "es",
            Lang::En => "en",
        }
    }
}

/// What the notifier tells whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// To a patient at registration: the two single-use codes.
    PatientConfirmation {
        institution: &'a str,
        confirm_code: &'a str,
        revoke_code: &'a str,
    },
    /// To a doctor: a patient awaits their validation (patient named by its Alpes id only).
    ValidationRequest { patient_id: &'a str },
    /// To a provider: an image was rejected.
    ImageRejected { image_id: &'a str, reason: &'a str },
    /// To a provider: a payment was made.
    PaymentMade {
        amount_minor: i64,
        currency: &'a str,
        reference: &'a str,
    },
    /// To an institution: a patient's consent was revoked.
    ConsentRevoked { patient_id: &'a str },
}

/// A message ready to send: its subject (for email) and its plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, no values in it.
    pub subject: String,
    /// Plain text, lines separated by `\n`, ending with a newline.
    pub text: String,
}

/// An amount in minor units with two decimals: `12345` and `EUR` give `123.45 EUR`.
pub fn money(amount_minor: i64, currency: &str) -> String {
    let sign = if amount_minor < 0 { "-" } else { "" };
    let abs = amount_minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", abs / 100, abs % 100)
}

/// `m` in `lang`.
pub fn render(m: &Message<'_>, lang: Lang) -> Rendered {
    let (subject, mut text) = match lang {
        Lang::Es => spanish(m),
        Lang::En => english(m),
    };
    text.push('\n');
    text.push_str(match lang {
        Lang::Es => "Este mensaje se ha enviado automáticamente; por favor, no responda a él.\n",
        Lang::En => "This message was sent automatically; please do not reply to it.\n",
    });
    Rendered {
        subject: subject.to_owned(),
        text,
    }
}

fn spanish(m: &Message<'_>) -> (&'static str, String) {
    let mut t = String::new();
    let subject = match *m {
        Message::PatientConfirmation {
            institution,
            confirm_code,
            revoke_code,
        } => {
            let _ = write!(
                t,
                "Estimado/a paciente:\n\n\
                 {institution} le ha registrado en Alpes, la plataforma de imágenes médicas. Sus imágenes \
                 solo se ofrecerán, anonimizadas, si usted da su consentimiento.\n\n\
                 Código de confirmación: {confirm_code}\n\
                 Código de revocación: {revoke_code}\n\n\
                 Para dar su consentimiento, envíe el código de confirmación:\n    \
                 POST /pacientes/consentimiento {{\"codigo\": \"{confirm_code}\"}}\n\n\
                 Para retirarlo en cualquier momento, envíe el código de revocación:\n    \
                 POST /pacientes/revocacion {{\"codigo\": \"{revoke_code}\"}}\n\
                 La revocación es definitiva.\n\n\
                 Cada código puede usarse una sola vez. Guarde este mensaje en un lugar seguro y no \
                 comparta los códigos con nadie.\n\n\
                 Si no esperaba este mensaje, no haga nada: sin su confirmación, sus imágenes no se \
                 ofrecerán.\n"
            );
            "Alpes: sus códigos de consentimiento"
        }
        Message::ValidationRequest { patient_id } => {
            let _ = write!(
                t,
                "Estimado/a doctor/a:\n\n\
                 Se ha registrado en Alpes un paciente del que usted figura como médico, y espera su \
                 validación.\n\n\
                 Identificador del paciente en Alpes: {patient_id}\n\n\
                 Revise el registro y valídelo en Alpes. Hasta entonces, las imágenes de este paciente \
                 no se ofrecerán.\n"
            );
            "Alpes: un paciente espera su validación"
        }
        Message::ImageRejected { image_id, reason } => {
            let _ = write!(
                t,
                "Una imagen que usted envió a Alpes ha sido rechazada.\n\n\
                 Imagen: {image_id}\n\
                 Motivo: {reason}\n\n\
                 La imagen no se ofrecerá. Si el problema tiene solución, corríjalo y vuelva a enviar \
                 la imagen.\n"
            );
            "Alpes: una imagen ha sido rechazada"
        }
        Message::PaymentMade {
            amount_minor,
            currency,
            reference,
        } => {
            let _ = write!(
                t,
                "Alpes le ha realizado un pago.\n\n\
                 Importe: {}\n\
                 Referencia: {reference}\n\n\
                 Conserve la referencia por si tiene alguna consulta sobre este pago.\n",
                money(amount_minor, currency)
            );
            "Alpes: le hemos realizado un pago"
        }
        Message::ConsentRevoked { patient_id } => {
            let _ = write!(
                t,
                "Se ha revocado el consentimiento de un paciente de su institución.\n\n\
                 Identificador del paciente en Alpes: {patient_id}\n\n\
                 La revocación es definitiva: las imágenes de este paciente dejan de ofrecerse en \
                 Alpes.\n"
            );
            "Alpes: consentimiento revocado"
        }
    };
    (subject, t)
}

fn english(m: &Message<'_>) -> (&'static str, String) {
    let mut t = String::new();
    let subject = match *m {
        Message::PatientConfirmation {
            institution,
            confirm_code,
            revoke_code,
        } => {
            let _ = write!(
                t,
                "Dear patient,\n\n\
                 {institution} has registered you with Alpes, the medical imaging platform. Your images \
                 will only be offered, anonymized, if you give your consent.\n\n\
                 Confirmation code: {confirm_code}\n\
                 Revocation code: {revoke_code}\n\n\
                 To give your consent, send the confirmation code:\n    \
                 POST /pacientes/consentimiento {{\"codigo\": \"{confirm_code}\"}}\n\n\
                 To withdraw it at any time, send the revocation code:\n    \
                 POST /pacientes/revocacion {{\"codigo\": \"{revoke_code}\"}}\n\
                 Revocation is final.\n\n\
                 Each code can be used only once. Keep this message somewhere safe and do not share \
                 the codes with anyone.\n\n\
                 If you were not expecting this message, do nothing: without your confirmation, your \
                 images will not be offered.\n"
            );
            "Alpes: your consent codes"
        }
        Message::ValidationRequest { patient_id } => {
            let _ = write!(
                t,
                "Dear doctor,\n\n\
                 A patient for whom you are listed as the doctor has been registered with Alpes and \
                 awaits your validation.\n\n\
                 Patient's Alpes ID: {patient_id}\n\n\
                 Please review the registration and validate it in Alpes. Until then, this patient's \
                 images will not be offered.\n"
            );
            "Alpes: a patient awaits your validation"
        }
        Message::ImageRejected { image_id, reason } => {
            let _ = write!(
                t,
                "An image you sent to Alpes has been rejected.\n\n\
                 Image: {image_id}\n\
                 Reason: {reason}\n\n\
                 The image will not be offered. If the problem can be fixed, please correct it and \
                 send the image again.\n"
            );
            "Alpes: an image has been rejected"
        }
        Message::PaymentMade {
            amount_minor,
            currency,
            reference,
        } => {
            let _ = write!(
                t,
                "Alpes has made a payment to you.\n\n\
                 Amount: {}\n\
                 Reference: {reference}\n\n\
                 Please keep the reference in case you have any question about this payment.\n",
                money(amount_minor, currency)
            );
            "Alpes: we have made a payment to you"
        }
        Message::ConsentRevoked { patient_id } => {
            let _ = write!(
                t,
                "The consent of a patient of your institution has been revoked.\n\n\
                 Patient's Alpes ID: {patient_id}\n\n\
                 Revocation is final: this patient's images are no longer offered in Alpes.\n"
            );
            "Alpes: consent revoked"
        }
    };
    (subject, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<(Message<'static>, Vec<&'static str>)> {
        vec![
            (
                Message::PatientConfirmation {
                    institution: "Clínica San Rafael",
                    confirm_code: "ABCD-1234",
                    revoke_code: "WXYZ-9876",
                },
                vec!["Clínica San Rafael", "ABCD-1234", "WXYZ-9876"],
            ),
            (
                Message::ValidationRequest {
                    patient_id: "3f1c2a9e-pat",
                },
                vec!["3f1c2a9e-pat"],
            ),
            (
                Message::ImageRejected {
                    image_id: "img-42",
                    reason: "burned_in_text",
                },
                vec!["img-42", "burned_in_text"],
            ),
            (
                Message::PaymentMade {
                    amount_minor: 12345,
                    currency: "EUR",
                    reference: "PAGO-2026-001",
                },
                vec!["123.45 EUR", "PAGO-2026-001"],
            ),
            (Message::ConsentRevoked { patient_id: "7e8d-pat" }, vec!["7e8d-pat"]),
        ]
    }

    #[test]
    fn every_message_renders_in_both_languages_with_its_values() {
        for (m, values) in all() {
            let es = render(&m, Lang::Es);
            let en = render(&m, Lang::En);
            assert_ne!(es.subject, en.subject, "{m:?}");
            assert_ne!(es.text, en.text, "{m:?}");
            for r in [&es, &en] {
                assert!(r.subject.starts_with("Alpes: ") && !r.subject.contains('\n'), "{r:?}");
                assert!(r.text.ends_with('\n'), "{r:?}");
                for v in &values {
                    assert!(r.text.contains(v), "{v} missing from {r:?}");
                    assert!(!r.subject.contains(v), "{v} in the subject {r:?}");
                }
            }
            assert!(es.text.contains("no responda") && en.text.contains("do not reply"));
        }
    }

    #[test]
    fn the_codes_are_each_on_their_own_line_with_how_to_use_them() {
        let m = Message::PatientConfirmation {
            institution: "Hospital Norte",
            confirm_code: "ABCD-1234",
            revoke_code: "WXYZ-9876",
        };
        let es = render(&m, Lang::Es).text;
        let lines: Vec<&str> = es.lines().collect();
        assert!(lines.contains(&"Código de confirmación: ABCD-1234"), "{es}");
        assert!(lines.contains(&"Código de revocación: WXYZ-9876"), "{es}");
        assert!(es.contains(r#"POST /pacientes/consentimiento {"codigo": "ABCD-1234"}"#), "{es}");
        assert!(es.contains(r#"POST /pacientes/revocacion {"codigo": "WXYZ-9876"}"#), "{es}");
        let en = render(&m, Lang::En).text;
        let lines: Vec<&str> = en.lines().collect();
        assert!(lines.contains(&"Confirmation code: ABCD-1234"), "{en}");
        assert!(lines.contains(&"Revocation code: WXYZ-9876"), "{en}");
        assert!(en.contains(r#"POST /pacientes/consentimiento {"codigo": "ABCD-1234"}"#), "{en}");
        assert!(en.contains(r#"POST /pacientes/revocacion {"codigo": "WXYZ-9876"}"#), "{en}");
    }

    #[test]
    fn money_has_two_decimals() {
        assert_eq!(money(12345, "EUR"), "123.45 EUR");
        assert_eq!(money(5, "USD"), "0.05 USD");
        assert_eq!(money(100, "COP"), "1.00 COP");
        assert_eq!(money(0, "EUR"), "0.00 EUR");
        assert_eq!(money(-250, "EUR"), "-2.50 EUR");
        assert_eq!(money(i64::MIN, "EUR"), "-92233720368547758.08 EUR");
    }

    #[test]
    fn languages_parse_and_default_to_spanish() {
        assert_eq!("es".parse(), Ok(Lang::Es));
        assert_eq!("EN".parse(), Ok(Lang::En));
        assert_eq!("es-CO".parse(), Ok(Lang::Es));
        assert_eq!("en_GB".parse(), Ok(Lang::En));
        assert_eq!("fr".parse::<Lang>(), Err(UnknownLang));
        assert_eq!(Lang::default(), Lang::Es);
        assert_eq!(Lang::parse_or_default("de"), Lang::Es);
        assert_eq!(Lang::parse_or_default("en"), Lang::En);
        assert_eq!(Lang::En.as_str(), "en");
    }
}
