//! WADO-RS frames (PS3.18 §10.4.1.1.3):
//! `GET /studies/{study}/series/{series}/instances/{instance}/frames/{frames}`, the listed
//! frames (1-based, comma-separated) of one anonymized instance, one per part of a
//! `multipart/related` answer: in the transfer syntax the instance is stored in when the `Accept`
//! allows it (uncompressed frames as `application/octet-stream`, compressed ones in their own
//! media type, `image/jpeg`, `image/jls`, `image/jp2`, `image/jpx`, `image/jphc`,
//! `image/dicom-rle`); else decoded, when it asks `application/octet-stream`; else transcoded by
//! dicom-rs to the first compressed syntax it asks that an encoder exists for (JPEG baseline,
//! JPEG-LS); else 406. A retrieve of frames is pixel data: it is metered like a download.

use super::wado::{multipart, serve_metered, Served};
use super::{may_use, Target};
use crate::admission::admission_errors;
use crate::openapi::DICOMWEB;
use crate::Shared;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::Authenticated;
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{binary_content, header_param, path, Op};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use serde_json::json;

/// Explicit VR Little Endian: what uncompressed frames are served in.
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// The media type PS3.18 table 8.7.3-4 gives the frames of a stored transfer syntax.
fn media_type(ts: &str) -> Option<&'static str> {
    Some(match ts {
        ts if super::is_native(ts) => "application/octet-stream",
        "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51" | "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70" => "image/jpeg",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "image/jp2",
        "1.2.840.10008.1.2.4.92" | "1.2.840.10008.1.2.4.93" => "image/jpx",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => "image/jphc",
        "1.2.840.10008.1.2.5" => "image/dicom-rle",
        _ => return None,
    })
}

/// The transfer syntax PS3.18 (table 8.7.3-5) gives the frames of `media_type` when an `Accept`
/// names none.
fn default_syntax(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "application/octet-stream" => EXPLICIT_LE,
        "image/jpeg" => "1.2.840.10008.1.2.4.70",
        "image/jls" => "1.2.840.10008.1.2.4.80",
        "image/jp2" => "1.2.840.10008.1.2.4.90",
        "image/jpx" => "1.2.840.10008.1.2.4.92",
        "image/jphc" => "1.2.840.10008.1.2.4.201",
        "image/dicom-rle" => "1.2.840.10008.1.2.5",
        _ => return None,
    })
}

/// The compressed transfer syntaxes an `Accept` asks frames in, in its order: of each
/// `multipart/related` range whose `type` is a compressed frame type, its `transfer-syntax` (the
/// type's default when it names none, or `*`), if that syntax's frames are of that type.
fn compressed_asked(headers: &HeaderMap) -> Vec<String> {
    let Some(ranges) = super::accept::ranges(headers) else {
        return Vec::new();
    };
    ranges
        .iter()
        .filter(|r| r.main == "multipart/related")
        .filter_map(|r| {
            let ty = r.param("type").filter(|t| *t != "application/octet-stream")?;
            let ts = match r.param("transfer-syntax") {
                Some(ts) if ts != "*" => ts,
                _ => default_syntax(ty)?,
            };
            (media_type(ts) == Some(ty)).then(|| ts.to_owned())
        })
        .collect()
}

/// The frames `wanted` (1-based) of the instance `blob`, transcoded by dicom-rs to the first of
/// `asked` it can write (the whole instance is transcoded: its encoders take every frame);
/// `None` when it can write none of them.
fn reencoded(blob: &Bytes, asked: Vec<String>, wanted: &[usize]) -> Result<Option<Frames>, ApiError> {
    if asked.is_empty() {
        return Ok(None);
    }
    let instance = match super::transcode::in_syntax(blob.clone(), &super::transcode::Wanted::Syntaxes(asked)) {
        Ok(instance) => instance,
        Err(e) if e.status == StatusCode::NOT_ACCEPTABLE => return Ok(None),
        Err(e) => return Err(e),
    };
    let all = frames_of(&instance.bytes)?;
    let frames = wanted
        .iter()
        .map(|&n| all.frames.get(n - 1).cloned())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::internal(&"a transcoded instance has fewer frames than it had stored"))?;
    Ok(Some(Frames { frames, ..all }))
}

/// The frames of one stored instance: their media type, transfer syntax, and bytes.
#[derive(Debug, PartialEq)]
pub struct Frames {
    media_type: &'static str,
    transfer_syntax: String,
    frames: Vec<Bytes>,
}

fn not_acceptable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_ACCEPTABLE, "not_acceptable", message)
}

/// The frames of a stored DICOM blob. Uncompressed frames are cut from Pixel Data by their size
/// (1-bit frames, packed across byte boundaries, are not served); compressed ones are the
/// fragments of each frame, told apart by the Basic Offset Table, or one fragment a frame.
pub fn frames_of(blob: &[u8]) -> Result<Frames, ApiError> {
    let stored = || ApiError::internal(&"a stored anonymized blob does not parse as DICOM");
    let obj = OpenFileOptions::new().from_reader(blob).map_err(|_| stored())?;
    let ts = obj.meta().transfer_syntax().trim_end_matches('\0').to_owned();
    let media_type = media_type(&ts).ok_or_else(|| not_acceptable(format!("frames of {ts} are not served")))?;
    let int = |tag| obj.element(tag).ok().and_then(|e| e.to_int::<u32>().ok());
    let count = int(tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1) as usize;
    let pixels = obj
        .element(tags::PIXEL_DATA)
        .map_err(|_| ApiError::not_found("the instance has no pixel data"))?
        .value();
    let frames = match (pixels.fragments(), pixels.offset_table()) {
        (Some(fragments), offsets) => encapsulated(fragments, offsets.unwrap_or_default(), count)?,
        (None, _) => {
            let bits = int(tags::BITS_ALLOCATED).unwrap_or(0);
            let (rows, cols, samples) = (int(tags::ROWS), int(tags::COLUMNS), int(tags::SAMPLES_PER_PIXEL).unwrap_or(1));
            let (Some(rows), Some(cols), true) = (rows, cols, bits >= 8 && bits % 8 == 0) else {
                return Err(not_acceptable("frames of 1-bit or unsized pixel data are not served one by one"));
            };
            let size = rows as usize * cols as usize * samples as usize * (bits / 8) as usize;
            let data = pixels.to_bytes().map_err(|_| stored())?;
            if size == 0 || data.len() < size * count {
                return Err(stored());
            }
            data.chunks_exact(size).take(count).map(Bytes::copy_from_slice).collect()
        }
    };
    let transfer_syntax = if super::is_native(&ts) { EXPLICIT_LE.to_owned() } else { ts };
    Ok(Frames {
        media_type,
        transfer_syntax,
        frames,
    })
}

/// The frames `wanted` (1-based) of a blob stored compressed, decoded to native samples (Explicit
/// VR Little Endian's layout). Refused (406) when decoding changes the photometric interpretation (JPEG's
/// YBR comes out as RGB): the metadata would then describe other pixels than the frames.
fn decoded(blob: &[u8], wanted: &[usize]) -> Result<Frames, ApiError> {
    let obj = OpenFileOptions::new()
        .from_reader(blob)
        .map_err(|_| ApiError::internal(&"a stored anonymized blob does not parse as DICOM"))?;
    let stored = obj
        .element(tags::PHOTOMETRIC_INTERPRETATION)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|p| p.trim().to_owned())
        .unwrap_or_default();
    let mut frames = Vec::with_capacity(wanted.len());
    for &n in wanted {
        let frame = u32::try_from(n - 1).map_err(|e| ApiError::internal(&e))?;
        let pixels = dicom_pixeldata::PixelDecoder::decode_pixel_data_frame(&obj, frame)
            .map_err(|e| not_acceptable(format!("these frames cannot be decoded here: {e}")))?;
        if pixels.photometric_interpretation().as_str() != stored {
            return Err(not_acceptable(format!(
                "decoded, these frames would be {} while the instance says {stored}; retrieve them as stored, or \
                 the instance in Explicit VR Little Endian",
                pixels.photometric_interpretation().as_str()
            )));
        }
        frames.push(Bytes::copy_from_slice(pixels.data()));
    }
    Ok(Frames {
        media_type: "application/octet-stream",
        transfer_syntax: EXPLICIT_LE.to_owned(),
        frames,
    })
}

/// Compressed frames: fragments grouped by the offset table (byte offsets of each frame's first
/// item, from the first fragment), or one fragment a frame, or every fragment for one frame.
fn encapsulated(fragments: &[Vec<u8>], offsets: &[u32], count: usize) -> Result<Vec<Bytes>, ApiError> {
    if offsets.len() == count && count > 1 {
        let mut frames = vec![Vec::new(); count];
        let mut at = 0u64;
        for f in fragments {
            let frame = offsets.iter().rposition(|&o| u64::from(o) <= at).unwrap_or(0);
            frames[frame].extend_from_slice(f);
            at += 8 + f.len() as u64;
        }
        return Ok(frames.into_iter().map(Bytes::from).collect());
    }
    if fragments.len() == count {
        return Ok(fragments.iter().map(|f| Bytes::copy_from_slice(f)).collect());
    }
    if count == 1 {
        return Ok(vec![Bytes::from(fragments.concat())]);
    }
    Err(not_acceptable(
        "the frames of this instance cannot be told apart (no offset table); retrieve the instance",
    ))
}

/// The 1-based frame numbers of a `frames` path segment, each at most `count`.
fn frame_list(list: &str, count: usize) -> Result<Vec<usize>, ApiError> {
    let numbers: Vec<usize> = list
        .split(',')
        .map(|n| n.trim().parse::<usize>().ok().filter(|&n| n >= 1))
        .collect::<Option<_>>()
        .ok_or_else(|| ApiError::bad_request("bad_frame_list", "frames are 1-based numbers separated by commas"))?;
    match numbers.iter().find(|&&n| n > count) {
        Some(n) => Err(ApiError::not_found(format!("frame {n} of an instance with {count}"))),
        None => Ok(numbers),
    }
}

/// Whether `Accept` allows `media_type` in transfer syntax `ts` inside `multipart/related`.
fn acceptable(headers: &HeaderMap, media_type: &str, ts: &str) -> bool {
    let Some(ranges) = super::accept::ranges(headers) else {
        return true;
    };
    ranges.iter().any(|range| match range.main.as_str() {
        "*/*" | "multipart/*" => true,
        "multipart/related" => {
            range.param("type").is_none_or(|t| t == media_type || t == "*/*")
                && range.param("transfer-syntax").is_none_or(|t| t == ts || t == "*")
        }
        _ => false,
    })
}

/// The path of a frames or bulk data retrieval.
#[derive(Debug, serde::Deserialize)]
pub struct FramesPath {
    study: String,
    series: String,
    instance: String,
    /// The frame list (the frames route).
    frames: Option<String>,
    /// The attribute (the bulk data route).
    tag: Option<String>,
}

/// The operation of the frames route (`bulk` false) or of Pixel Data's bulk data (`bulk` true).
pub fn op(bulk: bool) -> Op {
    let (p, id, summary, what, last) = if bulk {
        (
            "/studies/{study}/series/{series}/instances/{instance}/bulkdata/{tag}",
            "retrieveBulkData",
            "Retrieve bulk data (WADO-RS)",
            "an attribute the metadata gives by its `BulkDataURI`: Pixel Data (`7FE00010`) as every frame of an \
             anonymized instance; any other top-level binary attribute (waveform samples, an encapsulated document, \
             ...) as its value, one `application/octet-stream` part (an instance without it, or a tag that is not \
             8 hex digits, is 404)",
            path("tag", "The attribute, 8 hex digits, e.g. `7FE00010` or `54001010`."),
        )
    } else {
        (
            "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
            "retrieveFrames",
            "Retrieve frames (WADO-RS)",
            "the listed frames of an anonymized instance",
            path("frames", "1-based frame numbers, separated by commas, e.g. `1,3`."),
        )
    };
    let op = Op::get(p, id, DICOMWEB, summary)
        .describe(&format!(
            "WADO-RS (PS3.18 §10.4.1.1.3): {what}, one frame per part of a `multipart/related` answer, in the \
             transfer syntax it is stored in: uncompressed as `application/octet-stream` \
             (`transfer-syntax=1.2.840.10008.1.2.1`), compressed in their own type (`image/jpeg`, `image/jls`, \
             `image/jp2`, `image/jpx`, `image/jphc`, `image/dicom-rle`). When the `Accept` does not allow the \
             stored type and syntax: compressed frames are decoded if it allows `application/octet-stream` \
             (Explicit VR Little Endian), unless decoding changes their photometric interpretation (JPEG's YBR); \
             else the instance is transcoded to the first compressed syntax it asks (a `type` without a \
             `transfer-syntax` means that type's default, PS3.18 table 8.7.3-5) that dicom-rs can write (JPEG \
             baseline `1.2.840.10008.1.2.4.50`, JPEG-LS `1.2.840.10008.1.2.4.80`); else 406. Metered like a \
             download (the bytes served)."
        ))
        .auth(&["consumidor", "admin", "proveedor"])
        .params([super::study(), super::series(), super::instance(), last])
        .param(header_param(
            "Accept",
            json!({ "type": "string", "example": "multipart/related; type=\"application/octet-stream\"" }),
            "Must allow `multipart/related` with the stored frames' type and transfer syntax (`*/*`, `multipart/*`, \
             or `multipart/related` with that `type` or none), or `application/octet-stream` to have compressed \
             frames decoded, or a compressed type and syntax dicom-rs can transcode to; else 406.",
        ))
        .ok(
            200,
            "The frames, one per part, in the order asked.",
            Some(binary_content(&["multipart/related"])),
            &[],
        )
        .error(
            400,
            &["bad_frame_list"],
            "The frame list is not 1-based numbers separated by commas.",
        )
        .standard(404)
        .standard(406);
    admission_errors(op)
}

/// `.../frames/{frames}`, and `.../bulkdata/{tag}`: Pixel Data (`7FE00010`) as every frame, any
/// other attribute as its value (`bulkdata.rs`).
#[tracing::instrument(name = "WADO-RS frames", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    method: Method,
    Path(p): Path<FramesPath>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = Target {
        study: p.study,
        series: Some(p.series),
        instance: Some(p.instance),
    };
    // A HEAD sends no bytes, so it is not metered.
    let metered = method != Method::HEAD;
    if let Some(tag) = p.tag.as_deref().filter(|t| !t.eq_ignore_ascii_case("7FE00010")) {
        return super::bulkdata::answer(state, caller, ctx, (target, metered), tag).await;
    }
    answer(state, caller, ctx, (target, metered), &headers, p.frames.as_deref()).await
}

/// The frames `list` names (every frame when `None`) of the instance `target` names, metered.
async fn answer(
    state: Shared,
    caller: alpes_platform::auth::Caller,
    ctx: RequestContext,
    (target, metered): (Target, bool),
    headers: &HeaderMap,
    list: Option<&str>,
) -> Result<Response, ApiError> {
    let only = may_use(&caller)?;
    let found = super::instances_under(&state, target, only).await?;
    let one = super::first_output(&found);
    let (headers, list) = (headers.clone(), list.map(str::to_owned));
    let served = serve_metered(&state, &caller, &ctx, metered, one, move |blob| {
        let stored = frames_of(&blob)?;
        let wanted = match &list {
            Some(list) => frame_list(list, stored.frames.len())?,
            None => (1..=stored.frames.len()).collect(),
        };
        let native = "application/octet-stream";
        if acceptable(&headers, stored.media_type, &stored.transfer_syntax) {
            let frames = wanted.iter().map(|&n| stored.frames[n - 1].clone()).collect();
            return Ok(Frames { frames, ..stored });
        }
        let decode = stored.media_type != native && acceptable(&headers, native, EXPLICIT_LE);
        let refused = match decode.then(|| decoded(&blob, &wanted)) {
            Some(Ok(frames)) => return Ok(frames),
            Some(Err(e)) if e.status != StatusCode::NOT_ACCEPTABLE => return Err(e),
            Some(Err(e)) => Some(e),
            None => None,
        };
        if let Some(frames) = reencoded(&blob, compressed_asked(&headers), &wanted)? {
            return Ok(frames);
        }
        Err(refused.unwrap_or_else(|| {
            not_acceptable(format!(
                "these frames are stored as {}; transfer-syntax={}, decoded as {native}, or transcoded to JPEG \
                 baseline (image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50) or JPEG-LS (image/jls)",
                stored.media_type, stored.transfer_syntax
            ))
        }))
    })
    .await?;
    let Some(f) = served.into_iter().next() else {
        return Err(ApiError::not_found("the instance has no anonymized output"));
    };
    let part_type = format!("{}; transfer-syntax={}", f.media_type, f.transfer_syntax);
    let boundary = uuid::Uuid::new_v4().simple().to_string();
    let mut res = multipart(&boundary, f.frames.iter().map(|b| (part_type.as_str(), b))).into_response();
    let content_type = format!("multipart/related; type=\"{}\"; boundary={boundary}", f.media_type);
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Ok(res)
}

impl Served for Frames {
    fn bytes_served(&self) -> u64 {
        self.frames.iter().map(|f| f.len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lists_are_one_based_and_within_the_instance() {
        assert_eq!(frame_list("1", 1).expect("ok"), [1]);
        assert_eq!(frame_list("3, 1", 3).expect("ok"), [3, 1]);
        for bad in ["0", "", "a", "1,,2", "-1"] {
            assert_eq!(frame_list(bad, 3).expect_err(bad).code, "bad_frame_list", "{bad}");
        }
        assert_eq!(frame_list("4", 3).expect_err("past").status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn fragments_are_grouped_by_the_offset_table_or_one_a_frame() {
        let f = |n: u8, len: usize| vec![n; len];
        // Frame 1 in two fragments (8 + 4 and 8 + 2 bytes), frame 2 in one.
        let frames = encapsulated(&[f(1, 4), f(2, 2), f(3, 6)], &[0, 22], 2).expect("grouped");
        assert_eq!(frames, [Bytes::from(vec![1, 1, 1, 1, 2, 2]), Bytes::from(f(3, 6))]);
        let one_each = encapsulated(&[f(1, 2), f(2, 2)], &[], 2).expect("one a frame");
        assert_eq!(one_each.len(), 2);
        assert_eq!(encapsulated(&[f(1, 2), f(2, 2)], &[], 1).expect("one frame")[0].len(), 4);
        assert_eq!(
            encapsulated(&[f(1, 2), f(2, 2), f(3, 2)], &[], 2).expect_err("ambiguous").code,
            "not_acceptable"
        );
    }

    #[test]
    fn an_accept_asks_compressed_syntaxes_in_its_order_with_each_type_s_default() {
        let asked = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
            compressed_asked(&h)
        };
        assert_eq!(
            asked(
                "multipart/related; type=\"image/jls\", multipart/related; type=\"image/jpeg\"; \
                 transfer-syntax=1.2.840.10008.1.2.4.50, multipart/related; type=\"image/jpx\"; transfer-syntax=*"
            ),
            ["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.92"]
        );
        // Octets are decoded, not transcoded; a syntax whose frames are of another type is no ask.
        assert!(asked("multipart/related; type=\"application/octet-stream\"").is_empty());
        assert!(asked("multipart/related; type=\"image/jp2\"; transfer-syntax=1.2.840.10008.1.2.4.80").is_empty());
        assert!(asked("multipart/related; type=\"image/png\"").is_empty());
        assert!(compressed_asked(&HeaderMap::new()).is_empty());
    }

    #[test]
    fn accept_must_allow_the_stored_type_and_syntax_in_multipart() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
            acceptable(&h, "image/jpeg", "1.2.840.10008.1.2.4.50")
        };
        assert!(acceptable(&HeaderMap::new(), "image/jpeg", "1.2.840.10008.1.2.4.50"));
        assert!(with("*/*"));
        assert!(with("multipart/related"));
        assert!(with("multipart/related; type=\"image/jpeg\""));
        assert!(with(
            "multipart/related; type=\"image/jpeg\"; transfer-syntax=1.2.840.10008.1.2.4.50"
        ));
        assert!(with(
            "multipart/related; type=\"application/octet-stream\", multipart/related; type=\"image/jpeg\""
        ));
        assert!(!with("multipart/related; type=\"application/octet-stream\""));
        assert!(!with(
            "multipart/related; type=\"image/jpeg\"; transfer-syntax=1.2.840.10008.1.2.4.70"
        ));
        assert!(!with("image/jpeg"));
    }
}
