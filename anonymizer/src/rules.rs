//! The pixel-region rule library: parsing and evaluating scripts written in the syntax of RSNA CTP's
//! `DicomPixelAnonymizer.script`, so that an existing CTP script loads unchanged.
//!
//! A script is free text. A *signature* is a condition in braces, `{ Modality.equals("CT") * Rows.equals("512") }`,
//! followed by the rectangles `(x,y,w,h)` to blank when it matches. Everything else is a comment. The first
//! signature that matches an object wins.
//!
//! This module owns the script grammar, its limits (size, nesting, number of signatures) and the value semantics of
//! the predicates; it never reads a dataset itself: the caller hands [`RuleLibrary::first_match`] a function from a
//! tag to the element's string value.
//!
//! # Layout
//!
//! * A signature starts at a `{` anywhere on a line (text before it on that line is a comment) and ends at the
//!   matching `}`; it may span several lines. Braces inside quoted strings do not count.
//! * A line (or the rest of the line after a closing `}`) that starts with a parenthesised group of digits and commas
//!   is a *rectangle line*: it holds one or more rectangles `(x,y,w,h)` of non-negative integers, separated by spaces
//!   or commas and optionally followed by a `//` comment. Every rectangle line between a signature and the next one
//!   belongs to that signature, as in CTP. A malformed rectangle is an error rather than being skipped, so that a typo
//!   cannot silently leave a region unblanked.
//! * A signature without rectangles is legal: it means "matched, nothing to blank" and still stops the search.
//!
//! # Conditions
//!
//! * An element is named by DICOM keyword (`Modality`) or by tag in brackets (`[0008,0070]`, hexadecimal).
//! * Predicates: `equals`, `equalsIgnoreCase`, `contains`, `containsIgnoreCase`, `startsWith`, `startsWithIgnoreCase`,
//!   `endsWith`, `endsWithIgnoreCase` (one quoted string; `\"` is a quote, `\\` a backslash, any other backslash is
//!   literal so `"ORIGINAL\PRIMARY"` works), and `isBlank()`. The literals `true` and `false` are operands, as in CTP.
//! * Operators: `!` (not) binds tightest, then `*` (and), then `+` (or); parentheses group. `//` starts a comment
//!   that runs to the end of the line.
//! * Values are compared after trimming leading and trailing spaces and NULs; a missing element is the empty string.
//!   The `IgnoreCase` predicates fold ASCII case only.
//!
//! CTP's `matches("regex")` is not supported: a script that uses it is rejected with an error naming the line.

use crate::error::{Error, Result};
use crate::region::Region;

mod condition;
mod parser;

use condition::{Condition, ValueCache};
use parser::Parser;

/// The largest script accepted, in bytes.
pub const MAX_SCRIPT_BYTES: usize = 4 * 1024 * 1024;
/// The deepest nesting of parentheses and `!` accepted in one condition.
pub const MAX_NESTING: usize = 64;
/// The most signatures accepted in one script.
pub const MAX_SIGNATURES: usize = 100_000;

/// A parsed rule library: signatures in script order.
#[derive(Debug, Clone, Default)]
pub struct RuleLibrary {
    signatures: Vec<Signature>,
}

/// One signature: a condition and the rectangles to blank when it matches.
#[derive(Debug, Clone)]
pub struct Signature {
    /// 1-based line of the signature's opening brace.
    pub line: usize,
    /// The rectangles to blank, in script order; empty means "matched, nothing to blank".
    pub regions: Vec<Region>,
    condition: Condition,
}

impl Signature {
    /// Whether this signature's condition holds; `value(tag)` returns the element's string value or None if absent.
    pub fn matches(&self, value: &dyn Fn(u32) -> Option<String>) -> bool {
        self.condition.eval(&mut ValueCache::new(value))
    }
}

impl RuleLibrary {
    /// Parses a script in CTP `DicomPixelAnonymizer.script` syntax.
    ///
    /// # Errors
    ///
    /// [`Error::Rules`] with the 1-based line of the problem (line 0 for a script over [`MAX_SCRIPT_BYTES`]): an
    /// unterminated signature or string, a malformed condition or rectangle, an unknown keyword or predicate,
    /// nesting deeper than [`MAX_NESTING`], or more than [`MAX_SIGNATURES`] signatures.
    pub fn parse(text: &str) -> Result<RuleLibrary> {
        if text.len() > MAX_SCRIPT_BYTES {
            return Err(rules_error(
                0,
                format!("script is {} bytes; the limit is {} bytes", text.len(), MAX_SCRIPT_BYTES),
            ));
        }
        Parser {
            text,
            pos: 0,
            line: 1,
            signatures: Vec::new(),
        }
        .run()
    }

    /// Alpes' default library (`rules/default.script`).
    pub fn default_library() -> RuleLibrary {
        // The test suite proves the bundled script parses, so the fallback is unreachable in a tested build.
        RuleLibrary::parse(include_str!("../rules/default.script")).unwrap_or_default()
    }

    /// Number of signatures.
    pub fn len(&self) -> usize {
        self.signatures.len()
    }

    /// Whether the library has no signatures.
    pub fn is_empty(&self) -> bool {
        self.signatures.is_empty()
    }

    /// The signatures, in script order.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// Every tag some condition reads, sorted and deduplicated (so a caller can evaluate the rules before removing them).
    pub fn referenced_tags(&self) -> Vec<u32> {
        let mut tags = Vec::new();
        self.signatures.iter().for_each(|s| s.condition.collect_tags(&mut tags));
        tags.sort_unstable();
        tags.dedup();
        tags
    }

    /// First matching signature; `value(tag)` returns the element's string value or None if absent.
    pub fn first_match(&self, value: &dyn Fn(u32) -> Option<String>) -> Option<&Signature> {
        let mut cache = ValueCache::new(value);
        self.signatures.iter().find(|s| s.condition.eval(&mut cache))
    }
}

fn rules_error(line: usize, reason: impl Into<String>) -> Error {
    Error::Rules {
        line,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests;
