//! The last JSON body `GET /imagenes/{id}` rendered for each image, with its
//! ETag, reused while the image reads the same: the hot read of one image
//! then serializes and hashes it once, not once per request.
//!
//! - An entry answers only for the image value it was rendered from (compared
//!   field by field), so a state change, a new report or a new price list is
//!   rendered afresh; the body never outlives the data it shows.
//! - The body does not depend on the caller (who may see the image is decided
//!   before), so every caller shares it.
//! - It is bounded: past [`CAPACITY`] entries it starts again empty.

use alpes_domain::catalog::CatalogImage;
use axum::http::HeaderValue;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Images whose body is kept.
pub const CAPACITY: usize = 16_384;

/// One rendered body.
#[derive(Debug, Clone)]
pub struct Body {
    /// The JSON.
    pub bytes: Bytes,
    /// Its `ETag` header, quoted.
    pub etag: HeaderValue,
}

/// Rendered bodies by image id.
#[derive(Debug, Default)]
pub struct Rendered {
    entries: RwLock<HashMap<String, (Arc<CatalogImage>, Body)>>,
}

impl Rendered {
    /// The body of `image`: the one rendered for the same value, else `render`'s (kept).
    pub fn body<E>(&self, image: &Arc<CatalogImage>, render: impl FnOnce() -> Result<Body, E>) -> Result<Body, E> {
        if let Ok(entries) = self.entries.read() {
            if let Some((seen, body)) = entries.get(&image.image_id) {
                if Arc::ptr_eq(seen, image) || **seen == **image {
                    return Ok(body.clone());
                }
            }
        }
        let body = render()?;
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CAPACITY && !entries.contains_key(&image.image_id) {
                entries.clear();
            }
            entries.insert(image.image_id.clone(), (Arc::clone(image), body.clone()));
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alpes_domain::catalog::Estado;

    fn image(id: &str, estado: Estado) -> Arc<CatalogImage> {
        Arc::new(CatalogImage {
            image_id: id.into(),
            provider_id: "p".into(),
            estado,
            created_at: 1,
            modality: None,
            tipo_imagen: None,
            region_anatomica: None,
            anonymized: None,
            rejection_reason: None,
        })
    }

    fn render(n: &mut usize, text: &str) -> Result<Body, ()> {
        *n += 1;
        Ok(Body {
            bytes: Bytes::from(text.to_owned()),
            etag: HeaderValue::from_static("\"x\""),
        })
    }

    #[test]
    fn a_body_is_reused_for_the_same_image_value_and_rendered_again_when_it_changes() {
        let cache = Rendered::default();
        let mut renders = 0;
        let a = image("a", Estado::Registrada);
        assert_eq!(cache.body(&a, || render(&mut renders, "1")).expect("body").bytes, "1");
        // The same value read again (another Arc, as a store read gives) reuses the body.
        let again = Arc::new((*a).clone());
        assert_eq!(cache.body(&again, || render(&mut renders, "2")).expect("body").bytes, "1");
        assert_eq!(renders, 1);
        let changed = image("a", Estado::Anonimizada);
        assert_eq!(cache.body(&changed, || render(&mut renders, "3")).expect("body").bytes, "3");
        assert_eq!(renders, 2);
    }

    #[test]
    fn a_failed_render_keeps_nothing_and_the_cache_stays_bounded() {
        let cache = Rendered::default();
        let a = image("a", Estado::Registrada);
        assert!(cache.body(&a, || Err::<Body, _>("no")).is_err());
        assert!(cache.entries.read().expect("lock").is_empty());
        let mut renders = 0;
        for i in 0..=CAPACITY {
            cache
                .body(&image(&i.to_string(), Estado::Registrada), || render(&mut renders, "x"))
                .expect("body");
        }
        assert!(cache.entries.read().expect("lock").len() <= CAPACITY);
    }
}
