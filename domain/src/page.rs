//! The one page cursor every listing hands out: the keyset position of the
//! last row of a page, `(at, id)`, written `"<kind><at>.<hex of id>"`.
//!
//! `kind` is a letter per listing (`i` images, `u` users, `q` usage, `a`
//! audit, `l` ledger), so a cursor of one listing is refused by another;
//! `at` is the ordering number (a time or a sequence) and `id` breaks ties.
//! Clients treat it as opaque.

use crate::{Error, Result};

/// The position after which the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    /// The ordering number of the last row (a time or a sequence).
    pub at: i64,
    /// The last row's id.
    pub id: String,
}

impl PageCursor {
    /// The cursor after the row `(at, id)`.
    pub fn new(at: i64, id: impl Into<String>) -> PageCursor {
        PageCursor { at, id: id.into() }
    }

    /// `(at, id)`.
    pub fn key(self) -> (i64, String) {
        (self.at, self.id)
    }

    /// The cursor as the listing `kind` hands it out.
    pub fn encode(&self, kind: char) -> String {
        format!("{kind}{}.{}", self.at, hex::encode(&self.id))
    }

    /// Reads a cursor the listing `kind` handed out; [`Error::InvalidCursor`]
    /// for anything else (another listing's, a truncated one, an empty id).
    pub fn decode(kind: char, cursor: &str) -> Result<PageCursor> {
        let (at, id) = cursor
            .strip_prefix(kind)
            .and_then(|c| c.split_once('.'))
            .ok_or(Error::InvalidCursor)?;
        let at = at.parse::<i64>().map_err(|_| Error::InvalidCursor)?;
        let id = hex::decode(id)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|id| !id.is_empty())
            .ok_or(Error::InvalidCursor)?;
        Ok(PageCursor { at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_foreign_one_is_refused() {
        let c = PageCursor::new(1_700_000_000_123, "img.1/ñ");
        assert_eq!(PageCursor::decode('i', &c.encode('i')).expect("ours"), c);
        let negative = PageCursor::new(-5, "a");
        assert_eq!(PageCursor::decode('u', &negative.encode('u')).expect("ours"), negative);
        for bad in [
            "x1.a", "i.a", "inope", "u1.61", "i1.a", "i1.", "i1.zz", "garbage", "", "i1.ff", "i12",
        ] {
            assert!(matches!(PageCursor::decode('i', bad), Err(Error::InvalidCursor)), "{bad}");
        }
    }
}
