//! YAML with locations: a small tree of the manifest where every node keeps its byte span.
//!
//! serde's YAML deserializers stop at the first error and forget where values came from, so
//! validation first loads the text into this [`Node`] tree (with `yaml-rust2`'s marked event
//! parser), checks it against the manifest's JSON Schema collecting *every* problem, and only
//! then deserializes the typed [`crate::spec::Cluster`].

use crate::diag::{Diagnostic, Location};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML value with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Byte offset where the value starts.
    pub offset: usize,
    /// Byte length of the value's text (scalars; 0 for collections).
    pub len: usize,
}

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar: its text and whether it was quoted or a block scalar (then never a number,
    /// boolean or null).
    Scalar {
        /// The scalar's text.
        text: String,
        /// True for quoted and block scalars.
        quoted: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order (keys are kept as nodes for their locations).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The text of a scalar node.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for a plain `null`, `~` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, quoted: false } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What kind of YAML value this is, for messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Scalar { .. } if self.is_null() => "null",
            Value::Scalar { .. } => "a scalar",
        }
    }

    /// The location of this node in `src`.
    pub fn location(&self, src: &str) -> Location {
        Location::from_offset(src, self.offset, self.len)
    }
}

#[derive(Default)]
struct Builder {
    stack: Vec<(Node, Option<usize>)>,
    pending_keys: Vec<Option<Node>>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((parent, _)) => match &mut parent.value {
                Value::Seq(items) => items.push(node),
                Value::Map(entries) => {
                    let slot = self.pending_keys.last_mut();
                    match slot {
                        Some(slot @ None) => *slot = Some(node),
                        Some(slot) => {
                            if let Some(key) = slot.take() {
                                entries.push((key, node));
                            }
                        }
                        None => {}
                    }
                }
                Value::Scalar { .. } => {}
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = !matches!(style, TScalarStyle::Plain);
                let len = if quoted { text.len() + 2 } else { text.len() };
                let node = Node {
                    value: Value::Scalar { text, quoted },
                    offset: mark.index(),
                    len,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_value(node);
            }
            Event::Alias(id) => {
                let mut node = self.anchors.get(&id).cloned().unwrap_or(Node {
                    value: Value::Scalar {
                        text: String::new(),
                        quoted: false,
                    },
                    offset: mark.index(),
                    len: 0,
                });
                node.offset = mark.index();
                self.push_value(node);
            }
            Event::SequenceStart(anchor, _) => {
                let node = Node {
                    value: Value::Seq(Vec::new()),
                    offset: mark.index(),
                    len: 0,
                };
                self.stack.push((node, (anchor > 0).then_some(anchor)));
            }
            Event::MappingStart(anchor, _) => {
                let node = Node {
                    value: Value::Map(Vec::new()),
                    offset: mark.index(),
                    len: 0,
                };
                self.stack.push((node, (anchor > 0).then_some(anchor)));
                self.pending_keys.push(None);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if matches!(ev, Event::MappingEnd) {
                    self.pending_keys.pop();
                }
                if let Some((mut node, anchor)) = self.stack.pop() {
                    // A block mapping's start mark is at its first `:`; point at the first key.
                    if let Value::Map(entries) = &node.value {
                        if let Some((k, _)) = entries.first() {
                            node.offset = node.offset.min(k.offset);
                        }
                    }
                    if let Some(a) = anchor {
                        self.anchors.insert(a, node.clone());
                    }
                    self.push_value(node);
                }
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Parse YAML text into located documents (a file may hold several, separated by `---`).
///
/// # Errors
/// A syntax error, located at the scanner's position.
pub fn parse(src: &str) -> Result<Vec<Node>, Box<Diagnostic>> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(src);
    match parser.load(&mut builder, true) {
        Ok(()) => Ok(builder.docs),
        Err(e) => {
            let m = e.marker();
            Err(Box::new(
                Diagnostic::error("yaml-syntax", format!("invalid YAML: {}", e.info()))
                    .at(Some(Location::from_offset(src, m.index(), 0)))
                    .with_help("fix the YAML syntax (indentation, `key: value` pairs, quoting)"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_offsets_of_scalars() {
        let src = "a: 1\nb:\n  - x\n  - \"y\"\n";
        let docs = parse(src).unwrap();
        let Value::Map(entries) = &docs[0].value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.as_scalar(), Some("a"));
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("not a seq")
        };
        assert_eq!(
            &src[items[1].offset..items[1].offset + items[1].len],
            "\"y\""
        );
        assert_eq!(items[0].location(src).line, 3);
        assert_eq!(items[0].location(src).col, 5);
    }

    #[test]
    fn reports_syntax_error_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.location.is_some());
        assert!(err.message.starts_with("invalid YAML"));
    }

    #[test]
    fn aliases_resolve_to_anchored_value() {
        let docs = parse("a: &x {k: v}\nb: *x\n").unwrap();
        let Value::Map(entries) = &docs[0].value else {
            panic!()
        };
        assert!(matches!(entries[1].1.value, Value::Map(ref m) if m.len() == 1));
    }
}
