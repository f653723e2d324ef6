//! A report as PDF (A4, pdf-writer, the standard Helvetica fonts, so nothing is embedded): a
//! first page with the request, the summary and two bar charts (regions blanked by source,
//! images by the safety net's label), then a table of the images, every page numbered. Text is
//! written in ASCII: ids, codes, counts and checksums, never PHI.

use alpes_domain::report::{Alcance, Fila, Reporte, Totales, SOURCES};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use std::collections::BTreeMap;

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
/// Table lines per page.
const ROWS_PER_PAGE: usize = 62;
const ROW_HEIGHT: f32 = 11.0;
/// The table's columns: heading, x offset from the margin, most characters shown.
const TABLE: [(&str, f32, usize); 8] = [
    ("imagen_id", 0.0, 36),
    ("estado", 136.0, 11),
    ("mod.", 180.0, 5),
    ("etiqueta", 202.0, 23),
    ("rule/us/prof/ocr", 290.0, 12),
    ("motivo", 345.0, 15),
    ("sha256 in", 405.0, 12),
    ("sha256 out", 455.0, 12),
];
/// The table's font size.
const TABLE_FONT: f32 = 6.5;
/// Bar colours (RGB), one per bar in order.
const COLOURS: [(f32, f32, f32); 5] = [
    (0.20, 0.40, 0.75),
    (0.85, 0.45, 0.15),
    (0.30, 0.60, 0.30),
    (0.75, 0.20, 0.25),
    (0.50, 0.35, 0.65),
];

/// One page being written: its content and the next line's height.
struct Page {
    content: Content,
    y: f32,
}

impl Page {
    fn new() -> Page {
        Page {
            content: Content::new(),
            y: HEIGHT - MARGIN,
        }
    }

    fn text_at(&mut self, font: Name<'_>, size: f32, x: f32, y: f32, text: &str) {
        self.content.set_fill_rgb(0.0, 0.0, 0.0);
        self.content.begin_text();
        self.content.set_font(font, size);
        self.content.next_line(x, y);
        self.content.show(Str(ascii(text).as_bytes()));
        self.content.end_text();
    }

    /// A line of text at the margin, moving down by `size × 1.5`.
    fn line(&mut self, font: Name<'_>, size: f32, text: &str) {
        self.y -= size * 1.5;
        let y = self.y;
        self.text_at(font, size, MARGIN, y, text);
    }

    fn gap(&mut self, points: f32) {
        self.y -= points;
    }

    /// A horizontal bar chart of `bars` (label, value) under `title`.
    fn chart(&mut self, title: &str, bars: &[(String, i64)]) {
        self.line(BOLD, 11.0, title);
        self.gap(4.0);
        let most = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f32;
        let full = WIDTH - 2.0 * MARGIN - 170.0;
        for (i, (label, value)) in bars.iter().enumerate() {
            self.y -= 16.0;
            let y = self.y;
            self.text_at(REGULAR, 9.0, MARGIN, y + 2.0, label);
            let (r, g, b) = COLOURS[i % COLOURS.len()];
            self.content.set_fill_rgb(r, g, b);
            let w = (*value as f32 / most * full).max(if *value > 0 { 2.0 } else { 0.0 });
            self.content.rect(MARGIN + 120.0, y, w, 11.0);
            self.content.fill_nonzero();
            self.text_at(REGULAR, 9.0, MARGIN + 126.0 + w, y + 2.0, &value.to_string());
        }
        // The axis.
        self.content.set_stroke_rgb(0.3, 0.3, 0.3);
        self.content.move_to(MARGIN + 120.0, self.y - 2.0);
        self.content.line_to(MARGIN + 120.0, self.y + 16.0 * bars.len() as f32 + 2.0);
        self.content.stroke();
        self.gap(8.0);
    }
}

/// Printable ASCII only (the standard fonts' WinAnsi encoding reads it as is).
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
        .collect()
}

fn cut(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        text.to_owned()
    } else {
        text.chars().take(most.saturating_sub(1)).chain(std::iter::once('~')).collect()
    }
}

/// `ms` since the epoch as `2026-12-06T15:04:05Z`.
pub fn utc(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

fn scope(a: &Alcance) -> String {
    let mut parts = Vec::new();
    parts.push(format!("provider {}", a.proveedor_id.as_deref().unwrap_or("all")));
    if let Some(s) = &a.estudio_uid {
        parts.push(format!("study {s}"));
    }
    match (a.creada_desde, a.creada_hasta) {
        (None, None) => parts.push("any upload time".into()),
        (from, to) => parts.push(format!(
            "uploaded from {} to {}",
            from.map_or("the start".into(), utc),
            to.map_or("now".into(), utc)
        )),
    }
    parts.join(", ")
}

fn listed(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

/// The first page: the request, the summary, the charts.
fn summary(r: &Reporte, t: &Totales, generated_at: i64) -> Page {
    let mut p = Page::new();
    p.line(BOLD, 18.0, "Alpes - de-identification report");
    p.gap(6.0);
    for line in [
        format!("Report {}", r.id),
        format!(
            "Requested by {} at {}; generated at {}",
            r.solicitante,
            utc(r.creado_at),
            utc(generated_at)
        ),
        format!("Scope: {}", scope(&r.alcance)),
        "De-identification: DICOM PS3.15 Annex E, the Basic Profile with the options each image asked for;".into(),
        "pixel regions burned by rule, ultrasound region, profile and the burned-in text (OCR) safety net.".into(),
    ] {
        p.line(REGULAR, 9.5, &line);
    }
    p.gap(8.0);
    p.line(BOLD, 12.0, "Summary");
    let mut estados = t.por_estado.clone();
    estados.entry("anonimizada".into()).or_default();
    for line in [
        format!("Images in scope: {}   Studies (anonymized): {}", t.imagenes, t.estudios),
        format!("By state: {}", listed(&estados)),
        format!("Rejected, by reason: {}", listed(&t.rechazos)),
        format!("Held back for residual burned-in text: {}", t.retenidas),
        format!("Burned-in text analysis, by label: {}", listed(&t.etiquetas)),
        format!("Profiles and options, by images: {}", cut(&listed(&t.perfiles), 110)),
        format!(
            "Regions blanked, by source: {}",
            t.regiones.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
        ),
        format!(
            "Attributes handled, by action: {}",
            cut(
                &t.acciones.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
                110
            )
        ),
    ] {
        p.line(REGULAR, 9.5, &line);
    }
    p.gap(10.0);
    let regions: Vec<(String, i64)> = SOURCES
        .iter()
        .map(|s| ((*s).to_owned(), t.regiones.get(*s).copied().unwrap_or(0)))
        .collect();
    p.chart("Regions blanked by source", &regions);
    let labels: Vec<(String, i64)> = ["texto_incrustado", "sin_texto", "no_analizada"]
        .iter()
        .map(|l| ((*l).to_owned(), t.etiquetas.get(*l).copied().map_or(0, |n| n as i64)))
        .collect();
    p.chart("Images by burned-in text label", &labels);
    p.line(
        REGULAR,
        8.5,
        "The images follow, one per line; the CSV format of this report has every column (profile, actions, checksums).",
    );
    p
}

/// Table pages of `filas`.
fn table(filas: &[Fila]) -> Vec<Page> {
    let mut pages = Vec::new();
    for chunk in filas.chunks(ROWS_PER_PAGE) {
        let mut p = Page::new();
        p.line(BOLD, 12.0, "Images");
        p.gap(14.0);
        let y = p.y;
        for (heading, x, _) in TABLE {
            p.text_at(BOLD, TABLE_FONT, MARGIN + x, y, heading);
        }
        p.gap(4.0);
        for f in chunk {
            p.y -= ROW_HEIGHT;
            let n = |s: &str| f.regiones.get(s).copied().unwrap_or(0).to_string();
            let regions = SOURCES.map(n).join("/");
            let label = match (f.etiqueta.as_str(), f.retenida()) {
                (l, true) => format!("{l} (held)"),
                (l, false) => l.to_owned(),
            };
            let cells = [
                f.imagen_id.as_str(),
                f.estado.as_str(),
                f.modalidad.as_str(),
                label.as_str(),
                regions.as_str(),
                f.motivo_rechazo.as_str(),
                f.sha256_entrada.as_str(),
                f.sha256_salida.as_str(),
            ];
            let y = p.y;
            for ((_, x, most), cell) in TABLE.iter().zip(cells) {
                p.text_at(REGULAR, TABLE_FONT, MARGIN + x, y, &cut(cell, *most));
            }
        }
        pages.push(p);
    }
    pages
}

/// The PDF file of report `r` over `filas`.
pub fn render(r: &Reporte, filas: &[Fila], generated_at: i64) -> Vec<u8> {
    let totals = Totales::of(filas);
    let mut pages = vec![summary(r, &totals, generated_at)];
    pages.extend(table(filas));
    let count = pages.len();

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let (regular, bold) = (Ref::new(3), Ref::new(4));
    let ids: Vec<(Ref, Ref)> = (0..count)
        .map(|i| {
            let base = 5 + 2 * i32::try_from(i).unwrap_or(i32::MAX / 2 - 5);
            (Ref::new(base), Ref::new(base + 1))
        })
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(ids.iter().map(|(page, _)| *page))
        .count(i32::try_from(count).unwrap_or(i32::MAX));
    pdf.type1_font(regular).base_font(Name(b"Helvetica"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold"));
    for (i, (mut p, (page_id, content_id))) in pages.into_iter().zip(ids).enumerate() {
        let footer = format!("Alpes de-identification report {} - page {} of {count}", r.id, i + 1);
        p.text_at(REGULAR, 7.5, MARGIN, MARGIN / 2.0, &footer);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
        page.parent(tree);
        page.contents(content_id);
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        fonts.pair(REGULAR, regular);
        fonts.pair(BOLD, bold);
        fonts.finish();
        resources.finish();
        page.finish();
        pdf.stream(content_id, &p.content.finish());
    }
    pdf.finish()
}
