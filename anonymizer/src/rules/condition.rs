//! Conditions and their evaluation: the predicates' value semantics over element values.

use std::collections::HashMap;

/// A comparison applied to an element's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Predicate {
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
    pub(super) fn from_name(name: &str) -> Option<Predicate> {
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

    pub(super) fn ignores_case(self) -> bool {
        matches!(
            self,
            Predicate::EqualsIgnoreCase | Predicate::ContainsIgnoreCase | Predicate::StartsWithIgnoreCase | Predicate::EndsWithIgnoreCase
        )
    }
}

/// A boolean condition over element values. Its depth is bounded by [`MAX_NESTING`](super::MAX_NESTING) at parse time.
#[derive(Debug, Clone)]
pub(super) enum Condition {
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

/// Element values fetched once per [`RuleLibrary::first_match`](super::RuleLibrary::first_match) call: tag -> (trimmed value, lowercased value if needed).
pub(super) struct ValueCache<'f> {
    fetch: &'f dyn Fn(u32) -> Option<String>,
    entries: HashMap<u32, (String, Option<String>)>,
}

impl<'f> ValueCache<'f> {
    pub(super) fn new(fetch: &'f dyn Fn(u32) -> Option<String>) -> Self {
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
    pub(super) fn eval(&self, cache: &mut ValueCache<'_>) -> bool {
        match self {
            Condition::Const(b) => *b,
            Condition::Test { tag, predicate, argument } => cache.test(*tag, *predicate, argument),
            Condition::Not(c) => !c.eval(cache),
            Condition::And(cs) => cs.iter().all(|c| c.eval(cache)),
            Condition::Or(cs) => cs.iter().any(|c| c.eval(cache)),
        }
    }

    pub(super) fn collect_tags(&self, out: &mut Vec<u32>) {
        match self {
            Condition::Const(_) => {}
            Condition::Test { tag, .. } => out.push(*tag),
            Condition::Not(c) => c.collect_tags(out),
            Condition::And(cs) | Condition::Or(cs) => cs.iter().for_each(|c| c.collect_tags(out)),
        }
    }
}
