//! WADO-RS rendered images and thumbnails (PS3.18 §10.4.1.1.4, §10.4.1.1.5):
//! `.../instances/{instance}/rendered` (the first frame), `.../frames/{frames}/rendered` (one
//! frame), `/studies/{study}[/series/{series}]/rendered` (every instance's first frame, as
//! `multipart/related`, one part each) and the thumbnails of a study, a series or an
//! instance, as `image/jpeg` (the default) or `image/png`, decoded
//! and windowed from the stored pixels: `window=center,width` (or the file's own window, or the
//! frame's extremes), `viewport=width,height` (scaled to fit, aspect kept), `quality=1..100`
//! (JPEG). A rendered image is pixel data and is metered like a download; a thumbnail (at most
//! 128 pixels a side unless a viewport says otherwise) is not.

use super::wado::{multipart, serve_metered, Served};
use super::{may_use, Target};
use crate::admission::admission_errors;
use crate::openapi::DICOMWEB;
use crate::Shared;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::Authenticated;
use alpes_platform::http::{ApiError, QueryParams};
use alpes_platform::openapi::{binary_content, header_param, path, query, Op};
use alpes_platform::store::CatalogImage;
use axum::extract::{MatchedPath, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use dicom_object::OpenFileOptions;
use dicom_pixeldata::{ConvertOptions, PhotometricInterpretation, PixelDecoder, VoiLutOption, WindowLevel};
use serde_json::json;

/// A thumbnail's longest side when no viewport is asked.
const THUMBNAIL: u32 = 128;
/// JPEG quality when none is asked.
const QUALITY: u8 = 90;
/// The largest viewport side served.
const MAX_SIDE: u32 = 4096;

/// How to render: the window, the viewport, the JPEG quality and the format.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rendering {
    window: Option<(f64, f64)>,
    viewport: Option<(u32, u32)>,
    quality: u8,
    png: bool,
}

/// The image served, and its media type.
#[derive(Debug)]
pub struct Image {
    bytes: Bytes,
    media_type: &'static str,
}

impl Served for Image {
    fn bytes_served(&self) -> u64 {
        self.bytes.len() as u64
    }
}

fn bad(code: &'static str, message: &str) -> ApiError {
    ApiError::bad_request(code, message)
}

/// The rendering a query and an `Accept` header ask for.
fn rendering(pairs: &[(String, String)], headers: &HeaderMap) -> Result<Rendering, ApiError> {
    let mut r = Rendering {
        window: None,
        viewport: None,
        quality: QUALITY,
        png: false,
    };
    for (name, value) in pairs {
        let numbers = || -> Vec<Option<f64>> { value.split(',').map(|n| n.trim().parse::<f64>().ok()).collect() };
        match name.as_str() {
            "window" => match numbers()[..] {
                [Some(center), Some(width), ..] if width >= 1.0 && center.is_finite() && width.is_finite() => {
                    r.window = Some((center, width));
                }
                _ => return Err(bad("bad_window", "window is center,width with a width of at least 1")),
            },
            "viewport" => match numbers()[..] {
                [Some(w), Some(h)] if (1.0..=f64::from(MAX_SIDE)).contains(&w) && (1.0..=f64::from(MAX_SIDE)).contains(&h) => {
                    r.viewport = Some((w as u32, h as u32));
                }
                _ => return Err(bad("bad_viewport", "viewport is width,height, each 1 to 4096")),
            },
            "quality" => {
                r.quality = value
                    .parse::<u8>()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| bad("bad_quality", "quality is 1 to 100"))?;
            }
            _ => return Err(bad("bad_query", "rendered images take window, viewport and quality")),
        }
    }
    r.png = match super::accept::ranges(headers) {
        None => false,
        Some(ranges) => {
            // A multipart/related range (a study's or a series' parts) counts as its `type`.
            let types: Vec<String> = ranges
                .iter()
                .map(|range| match range.param("type") {
                    Some(part) if range.main == "multipart/related" => part.to_owned(),
                    _ => range.main.clone(),
                })
                .collect();
            let has = |t: &str| types.iter().any(|x| x == t);
            if has("image/jpeg") || has("image/*") || has("*/*") {
                false
            } else if has("image/png") {
                true
            } else {
                return Err(ApiError::new(
                    StatusCode::NOT_ACCEPTABLE,
                    "not_acceptable",
                    "rendered images are image/jpeg or image/png",
                ));
            }
        }
    };
    Ok(r)
}

/// `w` × `h` scaled to fit `viewport`, the aspect kept (at least 1 × 1).
fn fit((w, h): (u32, u32), viewport: (u32, u32)) -> (u32, u32) {
    let scale = (f64::from(viewport.0) / f64::from(w)).min(f64::from(viewport.1) / f64::from(h));
    (
        ((f64::from(w) * scale).round() as u32).max(1),
        ((f64::from(h) * scale).round() as u32).max(1),
    )
}

/// `pixels` (`w` × `h`, `samples` a pixel) resampled to `to` (nearest neighbour).
fn resize(pixels: &[u8], (w, h): (u32, u32), samples: usize, to: (u32, u32)) -> Vec<u8> {
    let mut out = Vec::with_capacity(to.0 as usize * to.1 as usize * samples);
    for y in 0..to.1 {
        let sy = (u64::from(y) * u64::from(h) / u64::from(to.1)) as usize;
        for x in 0..to.0 {
            let sx = (u64::from(x) * u64::from(w) / u64::from(to.0)) as usize;
            let at = (sy * w as usize + sx) * samples;
            out.extend_from_slice(&pixels[at..at + samples]);
        }
    }
    out
}

/// Frame `frame` (0-based) of a stored DICOM blob, rendered.
fn render(blob: &[u8], frame: u32, r: Rendering) -> Result<Image, ApiError> {
    let cannot = |why: String| ApiError::new(StatusCode::NOT_ACCEPTABLE, "not_renderable", why);
    let obj = OpenFileOptions::new()
        .from_reader(blob)
        .map_err(|_| ApiError::internal(&"a stored anonymized blob does not parse as DICOM"))?;
    let frames = obj
        .element(dicom_dictionary_std::tags::NUMBER_OF_FRAMES)
        .ok()
        .and_then(|e| e.to_int::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    if frame >= frames {
        return Err(ApiError::not_found(format!("frame {} of an instance with {frames}", frame + 1)));
    }
    let decoded = obj
        .decode_pixel_data_frame(frame)
        .map_err(|e| cannot(format!("the pixels cannot be decoded here: {e}")))?;
    let size = (decoded.columns(), decoded.rows());
    let samples = usize::from(decoded.samples_per_pixel());
    if samples != 1 && samples != 3 {
        return Err(cannot(format!("{samples} samples a pixel are not rendered")));
    }
    let voi = match r.window {
        Some((center, width)) => VoiLutOption::Custom(WindowLevel { center, width }),
        None => VoiLutOption::First,
    };
    let options = ConvertOptions::new().with_voi_lut(voi);
    let unrendered = |e: dicom_pixeldata::Error| cannot(format!("the pixels cannot be rendered: {e}"));
    // Deeper samples are windowed onto 16 bits (the LUT's range follows the stored depth), then
    // taken to their top 8.
    let mut pixels: Vec<u8> = if decoded.bits_stored() > 8 || (samples == 3 && decoded.bits_allocated() > 8) {
        let deep: Vec<u16> = decoded.to_vec_frame_with_options(0, &options).map_err(unrendered)?;
        deep.into_iter().map(|v| (v >> 8) as u8).collect()
    } else {
        decoded.to_vec_frame_with_options(0, &options).map_err(unrendered)?
    };
    if samples == 1 && *decoded.photometric_interpretation() == PhotometricInterpretation::Monochrome1 {
        pixels.iter_mut().for_each(|v| *v = 255 - *v);
    }
    let to = r.viewport.map_or(size, |v| fit(size, v));
    if to != size {
        pixels = resize(&pixels, size, samples, to);
    }
    let mut out = Vec::new();
    if r.png {
        let mut encoder = png::Encoder::new(&mut out, to.0, to.1);
        encoder.set_color(if samples == 3 {
            png::ColorType::Rgb
        } else {
            png::ColorType::Grayscale
        });
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| ApiError::internal(&e))?;
        writer.write_image_data(&pixels).map_err(|e| ApiError::internal(&e))?;
        writer.finish().map_err(|e| ApiError::internal(&e))?;
    } else {
        let colour = if samples == 3 {
            jpeg_encoder::ColorType::Rgb
        } else {
            jpeg_encoder::ColorType::Luma
        };
        let (w, h) = (u16::try_from(to.0), u16::try_from(to.1));
        let (Ok(w), Ok(h)) = (w, h) else {
            return Err(cannot("the image is too large for JPEG; ask a viewport".into()));
        };
        jpeg_encoder::Encoder::new(&mut out, r.quality)
            .encode(&pixels, w, h, colour)
            .map_err(|e| ApiError::internal(&e))?;
    }
    Ok(Image {
        bytes: Bytes::from(out),
        media_type: if r.png { "image/png" } else { "image/jpeg" },
    })
}

/// The path of an instance's rendered image or thumbnail.
#[derive(Debug, serde::Deserialize)]
pub struct InstancePath {
    study: String,
    /// Absent for a study's thumbnail.
    series: Option<String>,
    /// Absent for a study's or a series' thumbnail.
    instance: Option<String>,
    /// The frame of `.../frames/{frames}/rendered` (the path shares its name with the frames route).
    frames: Option<String>,
}

/// How many instances one answer renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The first instance with an anonymized output (an instance, a frame, a thumbnail).
    First,
    /// Every instance (a study's or a series' rendered resource), one part each.
    Every,
}

/// Renders frame `frame` (0-based) of the instances `p` names for the caller, metered or not:
/// the first with an anonymized output, or every one as one multipart/related body.
async fn answer(
    state: Shared,
    caller: alpes_platform::auth::Caller,
    ctx: RequestContext,
    (p, frame, metered, scope): (InstancePath, u32, bool, Scope),
    r: Rendering,
) -> Result<Response, ApiError> {
    let only = may_use(&caller)?;
    let target = Target {
        study: p.study,
        series: p.series,
        instance: p.instance,
    };
    let found = super::instances_under(&state, target, only).await?;
    let with_pixels: Vec<CatalogImage>;
    let chosen = match scope {
        Scope::First => super::first_output(&found),
        // Instances without pixels (a structured report, a key object selection) are left out.
        Scope::Every => {
            with_pixels = found
                .into_iter()
                .filter(|i| i.anonymized.as_ref().is_some_and(|o| o.rows > 0))
                .collect();
            &with_pixels[..]
        }
    };
    let served = serve_metered(&state, &caller, &ctx, metered, chosen, move |blob| render(&blob, frame, r)).await?;
    let media_type = if r.png { "image/png" } else { "image/jpeg" };
    if scope == Scope::Every && !served.is_empty() {
        let boundary = uuid::Uuid::new_v4().simple().to_string();
        let body = multipart(&boundary, served.iter().map(|i| (i.media_type, &i.bytes)));
        let mut res = body.into_response();
        let content_type = format!("multipart/related; type=\"{media_type}\"; boundary={boundary}");
        if let Ok(v) = HeaderValue::from_str(&content_type) {
            res.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        return Ok(res);
    }
    let image = served
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("the instance has no anonymized output"))?;
    let mut res = image.bytes.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(image.media_type));
    Ok(res)
}

/// `.../instances/{instance}/rendered` (the first frame), `.../frames/{frames}/rendered` (one
/// frame), `/studies/{study}[/series/{series}]/rendered` (every instance's first frame, one part
/// each) and the thumbnails (not metered), told apart by the route.
#[tracing::instrument(name = "WADO-RS rendered", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    Path(p): Path<InstancePath>,
    QueryParams(pairs): QueryParams<Vec<(String, String)>>,
    request: Parts,
) -> Result<Response, ApiError> {
    let mut r = rendering(&pairs, &request.headers)?;
    let route = request.extensions.get::<MatchedPath>().map(MatchedPath::as_str);
    let thumbnail = route.is_some_and(|r| r.ends_with("/thumbnail"));
    if thumbnail {
        r.viewport = r.viewport.or(Some((THUMBNAIL, THUMBNAIL)));
    }
    let frame = match p.frames.as_deref() {
        None => 0,
        Some(f) => {
            f.parse::<u32>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| bad("bad_frame_list", "a rendered frame is one 1-based number"))?
                - 1
        }
    };
    // A thumbnail is not pixel data a consumer pays for, and a HEAD sends no bytes.
    let metered = !thumbnail && request.method != Method::HEAD;
    let scope = if !thumbnail && p.instance.is_none() {
        Scope::Every
    } else {
        Scope::First
    };
    answer(state, caller, ctx, (p, frame, metered, scope), r).await
}

/// The operation of a rendered image or thumbnail at `p`.
pub fn op(p: &'static str, id: &str, summary: &str, what: &str, metered: bool) -> Op {
    let mut params = vec![super::study()];
    if p.contains("{series}") {
        params.push(super::series());
    }
    if p.contains("{instance}") {
        params.push(super::instance());
    }
    if p.contains("{frames}") {
        params.push(path("frames", "The frame, 1-based (one number)."));
    }
    let op = Op::get(p, id, DICOMWEB, summary)
        .describe(&format!(
            "WADO-RS (PS3.18 §10.4.1.1.4): {what}, decoded and windowed from the anonymized pixels, as `image/jpeg` \
             (the default) or `image/png`. {}",
            if metered {
                "Pixel data: metered like a download."
            } else {
                "At most 128 pixels a side unless a viewport says otherwise; not metered."
            }
        ))
        .auth(&["consumidor", "admin", "proveedor"])
        .params(params)
        .params([
            query(
                "window",
                json!({ "type": "string", "pattern": "^-?[0-9.]+,[0-9.]+(,[a-z-]+)?$" }),
                "`center,width` (a function after them is read as linear). Default: the file's own window, or the \
                 frame's extremes.",
            ),
            query(
                "viewport",
                json!({ "type": "string", "pattern": "^[0-9]+,[0-9]+$" }),
                "`width,height`, each 1 to 4096: scaled to fit, the aspect kept.",
            ),
            query(
                "quality",
                json!({ "type": "integer", "minimum": 1, "maximum": 100 }),
                "JPEG quality, default 90.",
            ),
        ])
        .param(header_param(
            "Accept",
            json!({ "type": "string", "example": "image/jpeg" }),
            "`image/jpeg` (also for `image/*` and `*/*`) or `image/png`, or `multipart/related` with either as its \
             `type`; anything else is 406.",
        ))
        .ok(
            200,
            "The image; of a study or a series, every instance's image as one part of a `multipart/related` body.",
            Some(binary_content(&[
                "image/jpeg",
                "image/png",
                "multipart/related; type=\"image/jpeg\"",
                "multipart/related; type=\"image/png\"",
            ])),
            &[],
        )
        .error(
            400,
            &["bad_window", "bad_viewport", "bad_quality", "bad_query", "bad_frame_list"],
            "A window, viewport or quality out of range, another query key, or a bad frame number.",
        )
        .standard(404)
        .error(
            406,
            &["not_acceptable", "not_renderable"],
            "`Accept` allows neither JPEG nor PNG, or the stored pixels cannot be decoded or rendered here.",
        );
    if metered {
        admission_errors(op)
    } else {
        op
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn window_viewport_quality_and_accept_are_read_or_refused() {
        let h = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(accept).expect("header"));
            h
        };
        let r = rendering(
            &pairs(&[("window", "40,400"), ("viewport", "64,32"), ("quality", "75")]),
            &HeaderMap::new(),
        )
        .expect("ok");
        assert_eq!(
            (r.window, r.viewport, r.quality, r.png),
            (Some((40.0, 400.0)), Some((64, 32)), 75, false)
        );
        assert!(rendering(&[], &h("image/png")).expect("png").png);
        assert!(!rendering(&[], &h("image/*")).expect("jpeg").png);
        assert_eq!(rendering(&[], &h("image/gif")).expect_err("406").status, StatusCode::NOT_ACCEPTABLE);
        for (k, v, code) in [
            ("window", "40", "bad_window"),
            ("window", "40,0", "bad_window"),
            ("viewport", "0,10", "bad_viewport"),
            ("viewport", "5000,10", "bad_viewport"),
            ("quality", "0", "bad_quality"),
            ("annotation", "patient", "bad_query"),
        ] {
            assert_eq!(rendering(&pairs(&[(k, v)]), &HeaderMap::new()).expect_err(k).code, code, "{k}={v}");
        }
    }

    #[test]
    fn a_viewport_keeps_the_aspect_and_resizing_samples_the_nearest_pixel() {
        assert_eq!(fit((512, 256), (128, 128)), (128, 64));
        assert_eq!(fit((100, 400), (128, 128)), (32, 128));
        assert_eq!(fit((10, 10), (100, 50)), (50, 50));
        let px: Vec<u8> = (0..16).collect();
        assert_eq!(resize(&px, (4, 4), 1, (2, 2)), [0, 2, 8, 10]);
        let rgb: Vec<u8> = (0..12).collect();
        assert_eq!(resize(&rgb, (2, 2), 3, (1, 1)), [0, 1, 2]);
    }
}
