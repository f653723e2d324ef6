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
use crate::syntax::tag_for_keyword;
use std::collections::HashMap;

/// The largest script accepted, in bytes.
pub const MAX_SCRIPT_BYTES: usize = 4 * 1024 * 1024;
/// The deepest nesting of parentheses and `!` accepted in one condition.
pub const MAX_NESTING: usize = 64;
/// The most signatures accepted in one script.
pub const MAX_SIGNATURES: usize = 100_000;

/// The longest piece of script text quoted in an error.
const QUOTE_CHARS: usize = 40;

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

/// A comparison applied to an element's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Predicate {
    Equals,
    EqualsIgnoreCase,
    Contains,
    ContainsIgnoreCase,
    StartsWith,
    StartsWithIgnoreCase,
    EndsWith,
    EndsWithIgnoreCase,
    IsBlank,
}

impl Predicate {
    fn from_name(name: &str) -> Option<Predicate> {
        Some(match name {
            "equals" => Predicate::Equals,
            "equalsIgnoreCase" => Predicate::EqualsIgnoreCase,
            "contains" => Predicate::Contains,
            "containsIgnoreCase" => Predicate::ContainsIgnoreCase,
            "startsWith" => Predicate::StartsWith,
            "startsWithIgnoreCase" => Predicate::StartsWithIgnoreCase,
            "endsWith" => Predicate::EndsWith,
            "endsWithIgnoreCase" => Predicate::EndsWithIgnoreCase,
            "isBlank" => Predicate::IsBlank,
            _ => return None,
        })
    }

    fn ignores_case(self) -> bool {
        matches!(
            self,
            Predicate::EqualsIgnoreCase | Predicate::ContainsIgnoreCase | Predicate::StartsWithIgnoreCase | Predicate::EndsWithIgnoreCase
        )
    }
}

/// A boolean condition over element values. Its depth is bounded by [`MAX_NESTING`] at parse time.
#[derive(Debug, Clone)]
enum Condition {
    /// `true` or `false`.
    Const(bool),
    /// `element.predicate("argument")`; for the `IgnoreCase` predicates the argument is stored ASCII-lowercased.
    Test {
        tag: u32,
        predicate: Predicate,
        argument: String,
    },
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

/// Element values fetched once per [`RuleLibrary::first_match`] call: tag -> (trimmed value, lowercased value if needed).
struct ValueCache<'f> {
    fetch: &'f dyn Fn(u32) -> Option<String>,
    entries: HashMap<u32, (String, Option<String>)>,
}

impl<'f> ValueCache<'f> {
    fn new(fetch: &'f dyn Fn(u32) -> Option<String>) -> Self {
        ValueCache {
            fetch,
            entries: HashMap::new(),
        }
    }

    fn test(&mut self, tag: u32, predicate: Predicate, argument: &str) -> bool {
        let fetch = self.fetch;
        let (value, lower) = self
            .entries
            .entry(tag)
            .or_insert_with(|| (fetch(tag).map(|v| trim_value(&v).to_owned()).unwrap_or_default(), None));
        let value = value.as_str();
        match predicate {
            Predicate::Equals => value == argument,
            Predicate::EqualsIgnoreCase => value.eq_ignore_ascii_case(argument),
            Predicate::Contains => value.contains(argument),
            Predicate::StartsWith => value.starts_with(argument),
            Predicate::EndsWith => value.ends_with(argument),
            Predicate::StartsWithIgnoreCase => {
                value.len() >= argument.len() && value.as_bytes()[..argument.len()].eq_ignore_ascii_case(argument.as_bytes())
            }
            Predicate::EndsWithIgnoreCase => {
                value.len() >= argument.len() && value.as_bytes()[value.len() - argument.len()..].eq_ignore_ascii_case(argument.as_bytes())
            }
            Predicate::ContainsIgnoreCase => lower.get_or_insert_with(|| value.to_ascii_lowercase()).contains(argument),
            Predicate::IsBlank => value.trim_matches(|c: char| c.is_whitespace() || c == '\0').is_empty(),
        }
    }
}

/// Trims leading and trailing spaces and NULs (the padding of DICOM string values).
fn trim_value(v: &str) -> &str {
    v.trim_matches([' ', '\0'])
}

impl Condition {
    fn eval(&self, cache: &mut ValueCache<'_>) -> bool {
        match self {
            Condition::Const(b) => *b,
            Condition::Test { tag, predicate, argument } => cache.test(*tag, *predicate, argument),
            Condition::Not(c) => !c.eval(cache),
            Condition::And(cs) => cs.iter().all(|c| c.eval(cache)),
            Condition::Or(cs) => cs.iter().any(|c| c.eval(cache)),
        }
    }

    fn collect_tags(&self, out: &mut Vec<u32>) {
        match self {
            Condition::Const(_) => {}
            Condition::Test { tag, .. } => out.push(*tag),
            Condition::Not(c) => c.collect_tags(out),
            Condition::And(cs) | Condition::Or(cs) => cs.iter().for_each(|c| c.collect_tags(out)),
        }
    }
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

/// A short, single-line piece of script text for an error message.
fn quote(s: &str) -> String {
    let mut q: String = s.chars().take(QUOTE_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if s.chars().nth(QUOTE_CHARS).is_some() {
        q.push('…');
    }
    q
}

/// The script-level parser: splits text into signatures, rectangles and comments.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    signatures: Vec<Signature>,
}

impl<'a> Parser<'a> {
    fn run(mut self) -> Result<RuleLibrary> {
        // Each step consumes the text up to the next `{` or newline, so the whole scan is linear in the script.
        while self.pos < self.text.len() {
            let rest = &self.text[self.pos..];
            match rest.find(['{', '\n']) {
                Some(open) if rest.as_bytes()[open] == b'{' => {
                    self.outside_text(&rest[..open])?;
                    self.pos += open;
                    self.signature()?;
                }
                Some(newline) => {
                    self.outside_text(&rest[..newline])?;
                    self.pos += newline + 1;
                    self.line += 1;
                }
                None => {
                    self.outside_text(rest)?;
                    self.pos = self.text.len();
                }
            }
        }
        Ok(RuleLibrary {
            signatures: self.signatures,
        })
    }

    /// Text outside any signature on one line: rectangles for the last signature, or a comment.
    fn outside_text(&mut self, text: &str) -> Result<()> {
        if !is_rectangle_line(text) {
            return Ok(());
        }
        let line = self.line;
        let regions = parse_rectangles(text, line)?;
        match self.signatures.last_mut() {
            Some(sig) => sig.regions.extend(regions),
            None => return Err(rules_error(line, "rectangle before any signature")),
        }
        Ok(())
    }

    /// Parses one signature starting at `self.pos` (an opening brace) and leaves `pos` just after its closing brace.
    fn signature(&mut self) -> Result<()> {
        let start_line = self.line;
        let bytes = self.text.as_bytes();
        let body_start = self.pos + 1;
        let mut i = body_start;
        let mut depth = 1usize;
        let mut in_string = false;
        let mut in_comment = false;
        let mut line = self.line;
        let body_end = loop {
            let Some(&b) = bytes.get(i) else {
                return Err(rules_error(start_line, "signature has no closing `}`"));
            };
            match b {
                b'\n' => {
                    line += 1;
                    in_comment = false;
                    if in_string {
                        return Err(rules_error(line - 1, "unterminated string"));
                    }
                }
                _ if in_string => match b {
                    b'\\' if matches!(bytes.get(i + 1), Some(b'"' | b'\\')) => i += 1,
                    b'"' => in_string = false,
                    _ => {}
                },
                // In a `//` comment quotes and `{` do not count, but `}` does (in CTP a `}` always ends a signature).
                b'"' if !in_comment => in_string = true,
                b'/' if !in_comment && bytes.get(i + 1) == Some(&b'/') => {
                    in_comment = true;
                    i += 1;
                }
                b'{' if !in_comment => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        break i;
                    }
                }
                _ => {}
            }
            i += 1;
        };
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(rules_error(start_line, format!("more than {MAX_SIGNATURES} signatures")));
        }
        let condition = ConditionParser::new(&self.text[body_start..body_end], start_line).parse()?;
        self.signatures.push(Signature {
            line: start_line,
            regions: Vec::new(),
            condition,
        });
        self.pos = body_end + 1;
        self.line = line;
        Ok(())
    }
}

/// Whether a piece of text outside any signature starts with a rectangle-like group: digits, signs and spaces with at
/// least one comma. `(2019) notes` and `(see below)` are comments; `(0,0,512)` is a (malformed) rectangle.
fn is_rectangle_line(text: &str) -> bool {
    let Some(rest) = text.trim_start().strip_prefix('(') else {
        return false;
    };
    let inner = rest.split(')').next().unwrap_or("");
    inner.contains(',')
        && inner
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b',' || b == b'+' || b == b'-' || b.is_ascii_whitespace())
}

/// Parses a rectangle line: `(x,y,w,h)` groups separated by spaces or commas, optionally followed by a `//` comment.
fn parse_rectangles(text: &str, line: usize) -> Result<Vec<Region>> {
    let mut regions = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() || rest.starts_with("//") {
            return Ok(regions);
        }
        let Some(inner) = rest.strip_prefix('(') else {
            return Err(rules_error(line, format!("unexpected text after rectangles: `{}`", quote(rest))));
        };
        let Some(close) = inner.find(')') else {
            return Err(rules_error(line, format!("rectangle has no closing `)`: `({}`", quote(inner))));
        };
        let region = Region::parse(&inner[..close]).map_err(|_| {
            rules_error(
                line,
                format!(
                    "invalid rectangle `({})`: expected (x,y,w,h) with non-negative integers",
                    quote(&inner[..close])
                ),
            )
        })?;
        regions.push(region);
        rest = &inner[close + 1..];
    }
}

/// A token of a condition.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Operand,
    End,
}

/// Recursive-descent parser for one condition; recursion depth is bounded by [`MAX_NESTING`].
struct ConditionParser<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> ConditionParser<'a> {
    fn new(text: &'a str, line: usize) -> Self {
        ConditionParser { text, pos: 0, line }
    }

    fn parse(mut self) -> Result<Condition> {
        if self.peek()? == Token::End {
            return Err(rules_error(self.line, "empty condition"));
        }
        let c = self.or(0)?;
        match self.peek()? {
            Token::End => Ok(c),
            Token::RParen => Err(rules_error(self.line, "unbalanced `)`")),
            _ => Err(rules_error(
                self.line,
                format!("expected `*`, `+` or the end of the condition at `{}`", quote(self.rest())),
            )),
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// Skips whitespace and `//` comments, counting lines.
    fn skip_blank(&mut self) {
        loop {
            let rest = self.rest();
            let Some(c) = rest.chars().next() else { return };
            if c == '\n' {
                self.line += 1;
                self.pos += 1;
            } else if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else if rest.starts_with("//") {
                self.pos += rest.find('\n').unwrap_or(rest.len());
            } else {
                return;
            }
        }
    }

    /// The next token, without consuming it (an operand is only recognised by its first character).
    fn peek(&mut self) -> Result<Token> {
        self.skip_blank();
        let Some(c) = self.rest().chars().next() else {
            return Ok(Token::End);
        };
        Ok(match c {
            '(' => Token::LParen,
            ')' => Token::RParen,
            '*' => Token::And,
            '+' => Token::Or,
            '!' => Token::Not,
            '[' => Token::Operand,
            c if c.is_ascii_alphabetic() => Token::Operand,
            c => {
                return Err(rules_error(
                    self.line,
                    format!("unexpected character `{}` in condition", c.escape_debug()),
                ))
            }
        })
    }

    fn bump(&mut self) {
        if let Some(c) = self.rest().chars().next() {
            self.pos += c.len_utf8();
        }
    }

    fn or(&mut self, depth: usize) -> Result<Condition> {
        let mut terms = vec![self.and(depth)?];
        while self.peek()? == Token::Or {
            self.bump();
            terms.push(self.and(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.swap_remove(0)
        } else {
            Condition::Or(terms)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Condition> {
        let mut factors = vec![self.unary(depth)?];
        while self.peek()? == Token::And {
            self.bump();
            factors.push(self.unary(depth)?);
        }
        Ok(if factors.len() == 1 {
            factors.swap_remove(0)
        } else {
            Condition::And(factors)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Condition> {
        match self.peek()? {
            Token::Not => {
                self.nest(depth)?;
                self.bump();
                Ok(Condition::Not(Box::new(self.unary(depth + 1)?)))
            }
            Token::LParen => {
                self.nest(depth)?;
                let open_line = self.line;
                self.bump();
                let inner = self.or(depth + 1)?;
                match self.peek()? {
                    Token::RParen => {
                        self.bump();
                        Ok(inner)
                    }
                    Token::End => Err(rules_error(open_line, "unbalanced `(`")),
                    _ => Err(rules_error(self.line, format!("expected `)` at `{}`", quote(self.rest())))),
                }
            }
            Token::Operand => self.operand(),
            Token::End => Err(rules_error(self.line, "condition ends where an element test was expected")),
            _ => Err(rules_error(
                self.line,
                format!("expected an element test at `{}`", quote(self.rest())),
            )),
        }
    }

    fn nest(&self, depth: usize) -> Result<()> {
        if depth >= MAX_NESTING {
            return Err(rules_error(self.line, format!("condition nested deeper than {MAX_NESTING} levels")));
        }
        Ok(())
    }

    /// `Keyword.predicate("arg")`, `[gggg,eeee].predicate("arg")`, `x.isBlank()`, `true` or `false`.
    fn operand(&mut self) -> Result<Condition> {
        let line = self.line;
        let tag = if let Some(rest) = self.rest().strip_prefix('[') {
            let Some(close) = rest.find(']') else {
                return Err(rules_error(line, format!("tag has no closing `]`: `[{}`", quote(rest))));
            };
            let inside = &rest[..close];
            let tag = parse_bracket_tag(inside).ok_or_else(|| {
                rules_error(
                    line,
                    format!("invalid tag `[{}]`: expected [gggg,eeee] in hexadecimal", quote(inside)),
                )
            })?;
            self.pos += close + 2;
            tag
        } else {
            let rest = self.rest();
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            let name = &rest[..end];
            self.pos += end;
            match name {
                "true" => return Ok(Condition::Const(true)),
                "false" => return Ok(Condition::Const(false)),
                _ => {}
            }
            tag_for_keyword(name).ok_or_else(|| rules_error(line, format!("unknown DICOM keyword `{}`", quote(name))))?
        };
        self.skip_blank();
        if !self.rest().starts_with('.') {
            return Err(rules_error(
                self.line,
                format!("expected `.predicate(...)` after the element at `{}`", quote(self.rest())),
            ));
        }
        self.bump();
        self.skip_blank();
        let rest = self.rest();
        let end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
        let name = &rest[..end];
        let predicate = match Predicate::from_name(name) {
            Some(p) => p,
            None if name == "matches" => {
                return Err(rules_error(
                    self.line,
                    "`matches` (regular expressions) is not supported; use equals, contains, startsWith or endsWith",
                ));
            }
            None => return Err(rules_error(self.line, format!("unknown predicate `{}`", quote(name)))),
        };
        self.pos += end;
        self.skip_blank();
        if !self.rest().starts_with('(') {
            return Err(rules_error(self.line, format!("expected `(` after `{name}`")));
        }
        self.bump();
        self.skip_blank();
        let argument = if predicate == Predicate::IsBlank {
            String::new()
        } else {
            let s = self.string()?;
            if predicate.ignores_case() {
                s.to_ascii_lowercase()
            } else {
                s
            }
        };
        self.skip_blank();
        if !self.rest().starts_with(')') {
            let what = if predicate == Predicate::IsBlank {
                "`isBlank` takes no argument"
            } else {
                "expected `)` after the string"
            };
            return Err(rules_error(self.line, format!("{what} at `{}`", quote(self.rest()))));
        }
        self.bump();
        Ok(Condition::Test { tag, predicate, argument })
    }

    /// A quoted string: `\"` is a quote, `\\` a backslash, any other backslash is literal.
    fn string(&mut self) -> Result<String> {
        let line = self.line;
        let Some(body) = self.rest().strip_prefix('"') else {
            return Err(rules_error(line, format!("expected a quoted string at `{}`", quote(self.rest()))));
        };
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += 1 + i + 1;
                    return Ok(out);
                }
                '\n' => break,
                '\\' => match body[i + 1..].chars().next() {
                    Some(e @ ('"' | '\\')) => {
                        out.push(e);
                        chars.next();
                    }
                    _ => out.push('\\'),
                },
                c => out.push(c),
            }
        }
        Err(rules_error(line, "unterminated string"))
    }
}

/// `gggg,eeee` (1 to 4 hex digits each, spaces allowed) as `(group << 16) | element`.
fn parse_bracket_tag(inside: &str) -> Option<u32> {
    let (g, e) = inside.split_once(',')?;
    let hex = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(s, 16).ok())
            .flatten()
    };
    Some((hex(g)? << 16) | hex(e)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const MODALITY: u32 = 0x0008_0060;
    const MANUFACTURER: u32 = 0x0008_0070;
    const SERIES_DESCRIPTION: u32 = 0x0008_103E;
    const IMAGE_TYPE: u32 = 0x0008_0008;
    const ROWS: u32 = 0x0028_0010;
    const COLUMNS: u32 = 0x0028_0011;
    const BURNED_IN: u32 = 0x0028_0301;
    const SOP_CLASS: u32 = 0x0008_0016;

    fn object(pairs: &[(u32, &str)]) -> HashMap<u32, String> {
        pairs.iter().map(|(t, v)| (*t, (*v).to_owned())).collect()
    }

    fn first_line(lib: &RuleLibrary, obj: &HashMap<u32, String>) -> Option<usize> {
        lib.first_match(&|t| obj.get(&t).cloned()).map(|s| s.line)
    }

    /// Whether a one-signature script matches an object.
    fn holds(condition: &str, obj: &[(u32, &str)]) -> bool {
        let lib = RuleLibrary::parse(&format!("{{ {condition} }}\n(0,0,1,1)")).expect("test");
        let obj = object(obj);
        lib.first_match(&|t| obj.get(&t).cloned()).is_some()
    }

    fn parse_error(text: &str) -> (usize, String) {
        match RuleLibrary::parse(text) {
            Err(Error::Rules { line, reason }) => (line, reason),
            other => panic!("expected a rules error, got {other:?}"),
        }
    }

    #[test]
    fn equals_is_exact() {
        assert!(holds(r#"Modality.equals("CT")"#, &[(MODALITY, "CT")]));
        assert!(!holds(r#"Modality.equals("CT")"#, &[(MODALITY, "ct")]));
        assert!(!holds(r#"Modality.equals("C")"#, &[(MODALITY, "CT")]));
    }

    #[test]
    fn equals_ignore_case_folds_ascii_case() {
        assert!(holds(r#"Modality.equalsIgnoreCase("cT")"#, &[(MODALITY, "Ct")]));
        assert!(!holds(r#"Modality.equalsIgnoreCase("CTX")"#, &[(MODALITY, "ct")]));
    }

    #[test]
    fn contains_and_contains_ignore_case_search_substrings() {
        let obj = [(MANUFACTURER, "GE MEDICAL SYSTEMS")];
        assert!(holds(r#"Manufacturer.contains("MEDICAL")"#, &obj));
        assert!(!holds(r#"Manufacturer.contains("medical")"#, &obj));
        assert!(holds(r#"Manufacturer.containsIgnoreCase("medical sys")"#, &obj));
        assert!(!holds(r#"Manufacturer.containsIgnoreCase("Philips")"#, &obj));
    }

    #[test]
    fn starts_with_predicates_compare_prefixes() {
        let obj = [(MANUFACTURER, "Philips Medical")];
        assert!(holds(r#"Manufacturer.startsWith("Philips")"#, &obj));
        assert!(!holds(r#"Manufacturer.startsWith("PHILIPS")"#, &obj));
        assert!(holds(r#"Manufacturer.startsWithIgnoreCase("PHILIPS")"#, &obj));
        assert!(!holds(r#"Manufacturer.startsWithIgnoreCase("Medical")"#, &obj));
        assert!(!holds(r#"Manufacturer.startsWithIgnoreCase("Philips Medical Systems")"#, &obj));
    }

    #[test]
    fn ends_with_predicates_compare_suffixes() {
        let obj = [(SERIES_DESCRIPTION, "CT Dose Report")];
        assert!(holds(r#"SeriesDescription.endsWith("Report")"#, &obj));
        assert!(!holds(r#"SeriesDescription.endsWith("report")"#, &obj));
        assert!(holds(r#"SeriesDescription.endsWithIgnoreCase("DOSE REPORT")"#, &obj));
        assert!(!holds(r#"SeriesDescription.endsWithIgnoreCase("CT")"#, &obj));
    }

    #[test]
    fn is_blank_holds_for_empty_padded_and_missing_values() {
        assert!(holds("SeriesDescription.isBlank()", &[(SERIES_DESCRIPTION, "")]));
        assert!(holds("SeriesDescription.isBlank( )", &[(SERIES_DESCRIPTION, "  \0")]));
        assert!(holds("SeriesDescription.isBlank()", &[]));
        assert!(!holds("SeriesDescription.isBlank()", &[(SERIES_DESCRIPTION, "x")]));
    }

    #[test]
    fn missing_elements_are_the_empty_string() {
        assert!(holds(r#"Modality.equals("")"#, &[]));
        assert!(!holds(r#"Modality.equals("CT")"#, &[]));
        assert!(holds(r#"Modality.startsWith("")"#, &[]));
        assert!(holds(r#"!Modality.contains("CT")"#, &[]));
    }

    #[test]
    fn values_are_trimmed_of_spaces_and_nuls_but_keep_backslashes() {
        assert!(holds(r#"Modality.equals("CT")"#, &[(MODALITY, " CT \0")]));
        assert!(holds(
            r#"ImageType.equals("ORIGINAL\PRIMARY\AXIAL")"#,
            &[(IMAGE_TYPE, "ORIGINAL\\PRIMARY\\AXIAL ")]
        ));
        assert!(holds(
            r#"ImageType.contains("PRIMARY\\AXIAL")"#,
            &[(IMAGE_TYPE, "ORIGINAL\\PRIMARY\\AXIAL")]
        ));
    }

    #[test]
    fn quoted_strings_support_escaped_quotes_and_braces() {
        assert!(holds(
            r#"SeriesDescription.equals("say \"hi\"")"#,
            &[(SERIES_DESCRIPTION, "say \"hi\"")]
        ));
        assert!(holds(
            r#"SeriesDescription.equals("a } b { (c")"#,
            &[(SERIES_DESCRIPTION, "a } b { (c")]
        ));
        let lib = RuleLibrary::parse("{ SeriesDescription.contains(\"}\") }\n(1,2,3,4)\n{ Modality.contains(\"{\") }").expect("test");
        assert_eq!(lib.len(), 2);
        assert_eq!(lib.signatures()[0].regions, vec![Region { x: 1, y: 2, w: 3, h: 4 }]);
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        let ct = [(MODALITY, "CT")];
        // a + b * c  ==  a + (b * c)
        assert!(holds(
            r#"Modality.equals("CT") + Modality.equals("MR") * Modality.equals("US")"#,
            &ct
        ));
        // (a + b) * c is false when c is false
        assert!(!holds(
            r#"(Modality.equals("CT") + Modality.equals("MR")) * Modality.equals("US")"#,
            &ct
        ));
        // !a * b  ==  (!a) * b
        assert!(!holds(r#"!Modality.equals("CT") * Modality.equals("CT")"#, &ct));
        // !(a * b)
        assert!(holds(r#"!(Modality.equals("CT") * Modality.equals("MR"))"#, &ct));
        // !a + b  ==  (!a) + b
        assert!(holds(r#"!Modality.equals("CT") + Modality.equals("CT")"#, &ct));
        assert!(holds(r#"!!Modality.equals("CT")"#, &ct));
        assert!(holds("true * !false", &ct));
        assert!(!holds("false + false", &ct));
    }

    #[test]
    fn bracket_tags_name_elements_in_hex() {
        let obj = [(SERIES_DESCRIPTION, "Dose Report"), (MANUFACTURER, "GE")];
        assert!(holds(
            r#"[0008,103e].containsIgnoreCase("dose") * [0008,103E].contains("Report")"#,
            &obj
        ));
        assert!(holds(r#"[ 0008 , 0070 ].equals("GE")"#, &obj));
        assert!(holds(r#"[0009,1001].isBlank()"#, &obj));
        let (line, reason) = parse_error("{ [0008,10G3].equals(\"x\") }");
        assert_eq!(line, 1);
        assert!(reason.contains("invalid tag"), "{reason}");
    }

    #[test]
    fn multi_line_conditions_and_comments_inside_them_parse() {
        let text =
            "title\n{ Modality.equals(\"CT\") * // the modality\n  Rows.equals(\"512\") *\n\n  Columns.equals(\"512\") }\n(0,0,512,110)\n";
        let lib = RuleLibrary::parse(text).expect("test");
        assert_eq!(lib.len(), 1);
        assert_eq!(lib.signatures()[0].line, 2);
        // A `}` inside a `//` comment still closes the signature, as in CTP; a `{` or quote there does not count.
        let commented = RuleLibrary::parse("{ true // a \"note {\n * true // closes here }\n(1,1,1,1)").expect("test");
        assert_eq!(commented.signatures()[0].regions.len(), 1);
        let obj = object(&[(MODALITY, "CT"), (ROWS, "512"), (COLUMNS, "512")]);
        assert_eq!(first_line(&lib, &obj), Some(2));
        let obj = object(&[(MODALITY, "CT"), (ROWS, "512"), (COLUMNS, "1024")]);
        assert_eq!(first_line(&lib, &obj), None);
    }

    #[test]
    fn comment_lines_are_ignored() {
        let text = "\
*****************
   CT (vendor notes)
*****************
Title line with words, commas, and a (parenthesis) too.
(see the wiki) for the format
{ Modality.equals(\"CT\") }
(0,0,10,10)
Next vendor: a title between signatures
{ Modality.equals(\"MR\") }
";
        let lib = RuleLibrary::parse(text).expect("test");
        assert_eq!(lib.len(), 2);
        assert_eq!(lib.signatures()[0].regions.len(), 1);
        assert!(lib.signatures()[1].regions.is_empty());
    }

    #[test]
    fn multiple_rectangles_attach_to_their_signature() {
        let text = "{ Modality.equals(\"US\") } (0,0,640,40)\n(0,440,640,40) , ( 1 , 2 , 3 , 4 ) // bottom\n\nnote\n(5,6,7,8)\n{ Modality.equals(\"CT\") }";
        let lib = RuleLibrary::parse(text).expect("test");
        let s = &lib.signatures()[0];
        assert_eq!(
            s.regions,
            vec![
                Region { x: 0, y: 0, w: 640, h: 40 },
                Region {
                    x: 0,
                    y: 440,
                    w: 640,
                    h: 40
                },
                Region { x: 1, y: 2, w: 3, h: 4 },
                Region { x: 5, y: 6, w: 7, h: 8 },
            ]
        );
        assert!(lib.signatures()[1].regions.is_empty());
    }

    #[test]
    fn a_signature_without_rectangles_still_stops_the_search() {
        let lib = RuleLibrary::parse("{ Modality.equals(\"CT\") }\n{ true }\n(0,0,5,5)").expect("test");
        let obj = object(&[(MODALITY, "CT")]);
        let hit = lib.first_match(&|t| obj.get(&t).cloned()).expect("test");
        assert_eq!(hit.line, 1);
        assert!(hit.regions.is_empty());
    }

    #[test]
    fn the_first_matching_signature_wins() {
        let text =
            "{ Modality.equals(\"MR\") }\n(1,1,1,1)\n{ Modality.equals(\"CT\") }\n(2,2,2,2)\n{ Modality.startsWith(\"C\") }\n(3,3,3,3)";
        let lib = RuleLibrary::parse(text).expect("test");
        assert_eq!(first_line(&lib, &object(&[(MODALITY, "CT")])), Some(3));
        assert_eq!(first_line(&lib, &object(&[(MODALITY, "CR")])), Some(5));
        assert_eq!(first_line(&lib, &object(&[(MODALITY, "US")])), None);
        assert!(lib.signatures()[0].matches(&|t| (t == MODALITY).then(|| "MR".to_owned())));
    }

    #[test]
    fn unknown_keywords_are_errors_with_their_line_number() {
        let (line, reason) = parse_error("comment\n\n{ Modality.equals(\"CT\") *\n  NoSuchKeyword.equals(\"x\") }\n(0,0,1,1)");
        assert_eq!(line, 4);
        assert!(reason.contains("NoSuchKeyword"), "{reason}");
    }

    #[test]
    fn malformed_scripts_are_errors_with_their_line_number() {
        assert_eq!(parse_error("x\n{ Modality.equals(\"CT\")\n(0,0,1,1)").0, 2);
        assert!(parse_error("{ Modality.equals(\"CT\") }\n(0,0,1)").1.contains("invalid rectangle"));
        assert!(parse_error("{ Modality.equals(\"CT\") }\n(0,0,-1,1)")
            .1
            .contains("invalid rectangle"));
        assert!(parse_error("{ Modality.equals(\"CT\") }\n(0,0,1,1) trailing")
            .1
            .contains("unexpected text"));
        assert_eq!(parse_error("(0,0,1,1)\n{ Modality.equals(\"CT\") }").0, 1);
        assert!(parse_error("{ }").1.contains("empty"));
        assert!(parse_error("{ Modality.equals(CT) }").1.contains("quoted string"));
        assert!(parse_error("{ Modality.equals(\"CT) }").1.contains("closing"));
        assert!(parse_error("{ Modality.equals(\"CT\n\") }").1.contains("unterminated"));
        assert!(parse_error("{ Modality.matches(\"C.*\") }").1.contains("not supported"));
        assert!(parse_error("{ Modality.isCT(\"x\") }").1.contains("unknown predicate"));
        assert!(parse_error("{ Modality.isBlank(\"x\") }").1.contains("no argument"));
        assert!(parse_error("{ Modality }").1.contains("predicate"));
        assert!(parse_error("{ (Modality.isBlank() }").1.contains("unbalanced"));
        assert!(parse_error("{ Modality.isBlank()) }").1.contains("unbalanced"));
        assert!(parse_error("{ Modality.isBlank() Rows.isBlank() }").1.contains("expected"));
        assert!(parse_error("{ Modality.isBlank() * }").1.contains("ends"));
        assert!(parse_error("{ Modality.isBlank() & Rows.isBlank() }")
            .1
            .contains("unexpected character"));
        assert_eq!(parse_error("{ true }\n\n{ true *\n\n * true }").0, 5);
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!("{{ {}true{} }}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(RuleLibrary::parse(&ok).is_ok());
        let deep = format!("{{ {}true{} }}", "(".repeat(MAX_NESTING + 1), ")".repeat(MAX_NESTING + 1));
        assert!(parse_error(&deep).1.contains("nested"));
        let nots = format!("{{ {}true }}", "!".repeat(MAX_NESTING + 1));
        assert!(parse_error(&nots).1.contains("nested"));
        let mixed = format!("{{ {}true{} }}", "!(".repeat(MAX_NESTING / 2 + 1), ")".repeat(MAX_NESTING / 2 + 1));
        assert!(parse_error(&mixed).1.contains("nested"));
        // Far deeper input is rejected at the bound, without recursing into it.
        let huge = format!("{{ {}true }}", "(".repeat(1_000_000));
        assert!(parse_error(&huge).1.contains("nested"));
    }

    #[test]
    fn size_and_signature_count_are_bounded() {
        let big = " ".repeat(MAX_SCRIPT_BYTES + 1);
        assert_eq!(parse_error(&big).0, 0);
        let at_limit = "{true}\n".repeat(MAX_SIGNATURES);
        assert_eq!(RuleLibrary::parse(&at_limit).map(|l| l.len()).ok(), Some(MAX_SIGNATURES));
        // All on one line: the scan stays linear.
        let one_line = format!("{}(1,2,3,4)", "{true} (0,0,1,1) ".repeat(MAX_SIGNATURES));
        let lib = RuleLibrary::parse(&one_line).expect("test");
        assert_eq!(lib.len(), MAX_SIGNATURES);
        assert_eq!(lib.signatures()[MAX_SIGNATURES - 1].regions.len(), 2);
        let over = "{true}\n".repeat(MAX_SIGNATURES + 1);
        let (line, reason) = parse_error(&over);
        assert_eq!(line, MAX_SIGNATURES + 1);
        assert!(reason.contains("signatures"));
    }

    #[test]
    fn garbage_input_never_panics() {
        // A small deterministic generator (xorshift) over an alphabet rich in the script's own syntax.
        let alphabet: Vec<char> = "{}()[]\"\\.,*+!/ \n\t0123456789abcdefEQ_xyzModalityRowsequalsIgnoreCaseisBlank()ü€\0\r"
            .chars()
            .collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let pieces = [
            "{ Modality.equals(\"CT\") }",
            "(0,0,512,110)",
            "[0008,0070].startsWithIgnoreCase(\"x\")",
            " * ",
            " + ",
            "!",
            "(",
            ")",
            "\"",
            "\\\"",
            "//",
            "\n",
            "{",
            "}",
            "isBlank()",
        ];
        let obj = object(&[(MODALITY, "CT"), (MANUFACTURER, "x")]);
        for round in 0..4000 {
            let len = (next() % 200) as usize;
            let mut s = String::new();
            for _ in 0..len {
                let r = next();
                if round % 2 == 0 {
                    s.push(alphabet[(r % alphabet.len() as u64) as usize]);
                } else {
                    s.push_str(pieces[(r % pieces.len() as u64) as usize]);
                }
            }
            if let Ok(lib) = RuleLibrary::parse(&s) {
                let _ = lib.first_match(&|t| obj.get(&t).cloned());
                let _ = lib.referenced_tags();
            }
            // Every prefix of the input as well (truncation points inside strings and groups).
            let cut = s.char_indices().map(|(i, _)| i).nth((next() % 200) as usize).unwrap_or(s.len());
            let _ = RuleLibrary::parse(&s[..cut]);
        }
    }

    #[test]
    fn a_ctp_style_script_excerpt_loads_and_matches() {
        let text = r#"
*****************************************************************************
CT
*****************************************************************************
CT Dose Series from GE
{ Modality.equals("CT") * Manufacturer.containsIgnoreCase("GE") * SeriesDescription.containsIgnoreCase("Dose Report") }
(0,0,512,110)

Philips US
{ [0008,0070].startsWithIgnoreCase("Philips") * Modality.equals("US") * !ImageType.contains("DERIVED") }
(0,0,640,40) (0,440,640,40)

 Stent planning - indented, multi-line, with a parenthesised or-group
  { [0008,0070].containsIgnoreCase("VITAL Images") *
    ( [0008,103e].containsIgnoreCase("AAA") + [0008,103e].containsIgnoreCase("Report") ) *
    [0028,0010].containsIgnoreCase("1041") }
  (0,0,795,150)

 1024 x 1024 screen captures
  { [0028,0301].containsIgnoreCase("YES") *
    [0008,0070].containsIgnoreCase("GE MEDICAL") *
    Rows.equals("1024") }
  (0,0,300,150)   (724,0,300,150)
"#;
        let lib = RuleLibrary::parse(text).expect("test");
        assert_eq!(lib.len(), 4);
        assert_eq!(lib.signatures().iter().map(|s| s.line).collect::<Vec<_>>(), vec![6, 10, 14, 20]);
        assert_eq!(lib.signatures()[3].regions.len(), 2);

        let ge_dose = object(&[
            (MODALITY, "CT"),
            (MANUFACTURER, "GE MEDICAL SYSTEMS"),
            (SERIES_DESCRIPTION, "Dose Report"),
        ]);
        let hit = lib.first_match(&|t| ge_dose.get(&t).cloned()).expect("test");
        assert_eq!(
            hit.regions,
            vec![Region {
                x: 0,
                y: 0,
                w: 512,
                h: 110
            }]
        );

        let philips = object(&[(MODALITY, "US"), (MANUFACTURER, "PHILIPS"), (IMAGE_TYPE, "ORIGINAL\\PRIMARY")]);
        let hit = lib.first_match(&|t| philips.get(&t).cloned()).expect("test");
        assert_eq!(
            hit.regions,
            vec![
                Region { x: 0, y: 0, w: 640, h: 40 },
                Region {
                    x: 0,
                    y: 440,
                    w: 640,
                    h: 40
                }
            ]
        );
        let derived = object(&[(MODALITY, "US"), (MANUFACTURER, "PHILIPS"), (IMAGE_TYPE, "DERIVED\\PRIMARY")]);
        assert_eq!(first_line(&lib, &derived), None);

        let vital = object(&[(MANUFACTURER, "Vital Images"), (SERIES_DESCRIPTION, "AAA stent"), (ROWS, "1041")]);
        assert_eq!(first_line(&lib, &vital), Some(14));
        let ge_sc = object(&[(BURNED_IN, "YES"), (MANUFACTURER, "GE MEDICAL SYSTEMS"), (ROWS, "1024")]);
        assert_eq!(first_line(&lib, &ge_sc), Some(20));

        assert_eq!(
            lib.referenced_tags(),
            vec![IMAGE_TYPE, MODALITY, MANUFACTURER, SERIES_DESCRIPTION, ROWS, BURNED_IN]
        );
    }

    #[test]
    fn element_values_are_fetched_once_per_match() {
        let lib = RuleLibrary::parse("{ Modality.equals(\"MR\") }\n{ Modality.equals(\"US\") }\n{ Modality.containsIgnoreCase(\"c\") }")
            .expect("test");
        let calls = std::cell::Cell::new(0);
        let hit = lib.first_match(&|t| {
            calls.set(calls.get() + 1);
            (t == MODALITY).then(|| "CT".to_owned())
        });
        assert_eq!(hit.map(|s| s.line), Some(3));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn the_default_library_parses_and_blanks_known_screen_captures() {
        let lib = RuleLibrary::parse(include_str!("../rules/default.script")).expect("test");
        assert!(!lib.is_empty());
        assert_eq!(RuleLibrary::default_library().len(), lib.len());
        assert!(lib.signatures().iter().all(|s| !s.regions.is_empty()));

        let dose = object(&[
            (MODALITY, "CT"),
            (SERIES_DESCRIPTION, "Dose Report"),
            (COLUMNS, "512"),
            (ROWS, "512"),
        ]);
        let hit = lib.first_match(&|t| dose.get(&t).cloned()).expect("test");
        assert!(hit.regions.iter().any(|r| r.x == 0 && r.y == 0 && r.w >= 512));

        let sc = object(&[
            (BURNED_IN, "YES"),
            (SOP_CLASS, "1.2.840.10008.5.1.4.1.1.7\0"),
            (ROWS, "512"),
            (COLUMNS, "512"),
        ]);
        assert!(lib.first_match(&|t| sc.get(&t).cloned()).is_some());
        // VL endoscopic (1.2.840.10008.5.1.4.1.1.77.1.1) is not a secondary capture.
        let vl = object(&[
            (BURNED_IN, "YES"),
            (SOP_CLASS, "1.2.840.10008.5.1.4.1.1.77.1.1"),
            (ROWS, "512"),
            (COLUMNS, "512"),
        ]);
        assert!(lib.first_match(&|t| vl.get(&t).cloned()).is_none());
        // An ordinary CT slice matches nothing.
        let ct = object(&[(MODALITY, "CT"), (SERIES_DESCRIPTION, "Axial 5mm"), (ROWS, "512"), (COLUMNS, "512")]);
        assert!(lib.first_match(&|t| ct.get(&t).cloned()).is_none());
    }
}
