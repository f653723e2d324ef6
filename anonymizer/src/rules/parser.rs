//! The script grammar: splitting a script into signatures, rectangles and comments, and the
//! recursive-descent parser of one condition.

use super::condition::{Condition, Predicate};
use super::{rules_error, RuleLibrary, Signature, MAX_NESTING, MAX_SIGNATURES};
use crate::error::Result;
use crate::region::Region;
use crate::syntax::tag_for_keyword;

/// The longest piece of script text quoted in an error.
const QUOTE_CHARS: usize = 40;

/// A short, single-line piece of script text for an error message.
fn quote(s: &str) -> String {
    let mut q: String = s.chars().take(QUOTE_CHARS).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if s.chars().nth(QUOTE_CHARS).is_some() {
        q.push('…');
    }
    q
}

/// The script-level parser: splits text into signatures, rectangles and comments.
pub(super) struct Parser<'a> {
    pub(super) text: &'a str,
    pub(super) pos: usize,
    pub(super) line: usize,
    pub(super) signatures: Vec<Signature>,
}

impl<'a> Parser<'a> {
    pub(super) fn run(mut self) -> Result<RuleLibrary> {
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
