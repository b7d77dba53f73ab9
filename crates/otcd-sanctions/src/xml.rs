//! A small, bounded walk over an XML document for the attribute-style (EU) and element-style (UN, UK) list
//! files: each element's local name (namespaces ignored), its attributes on open, its text on close.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::error::LoadError;
use crate::limits::{MAX_FIELD_BYTES, MAX_XML_DEPTH};

/// What the walk reports to its visitor.
pub(crate) enum Node<'a> {
    /// An element opened (also for an empty element, which is closed right after): its local name, the local
    /// name of its parent, and its attributes (unescaped, each cut to [`MAX_FIELD_BYTES`]).
    Open { name: &'a [u8], parent: &'a [u8], attributes: &'a [(Vec<u8>, String)] },
    /// An element closed: its local name, its parent's, and its text (trimmed, cut to [`MAX_FIELD_BYTES`]).
    Close { name: &'a [u8], parent: &'a [u8], text: String },
}

/// Walks `xml`, calling `visit` for every element. Malformed XML or nesting deeper than [`MAX_XML_DEPTH`] is an
/// error naming `file`.
pub(crate) fn walk(xml: &[u8], file: &'static str, mut visit: impl FnMut(Node<'_>)) -> Result<(), LoadError> {
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    let mut attributes = Vec::new();
    loop {
        let event = reader.read_event().map_err(|error| LoadError::Xml {
            file,
            position: reader.error_position(),
            message: error.to_string(),
        })?;
        match event {
            Event::Start(start) => {
                if path.len() >= MAX_XML_DEPTH {
                    return Err(LoadError::TooDeep { file, limit: MAX_XML_DEPTH });
                }
                let name = start.local_name().as_ref().to_vec();
                read_attributes(&start, &mut attributes);
                let parent = path.last().map_or(&[][..], Vec::as_slice);
                visit(Node::Open { name: &name, parent, attributes: &attributes });
                path.push(name);
                texts.push(String::new());
            }
            Event::Empty(start) => {
                let name = start.local_name().as_ref().to_vec();
                read_attributes(&start, &mut attributes);
                let parent = path.last().map_or(&[][..], Vec::as_slice);
                visit(Node::Open { name: &name, parent, attributes: &attributes });
                visit(Node::Close { name: &name, parent, text: String::new() });
            }
            Event::Text(content) => {
                let decoded = content
                    .unescape()
                    .unwrap_or_else(|_| String::from_utf8_lossy(content.as_ref()).into_owned().into());
                if let Some(text) = texts.last_mut() {
                    append_limited(text, &decoded);
                }
            }
            Event::CData(content) => {
                if let Some(text) = texts.last_mut() {
                    append_limited(text, &String::from_utf8_lossy(&content));
                }
            }
            Event::End(_) => {
                let (Some(name), Some(text)) = (path.pop(), texts.pop()) else { continue };
                let parent = path.last().map_or(&[][..], Vec::as_slice);
                visit(Node::Close { name: &name, parent, text: text.trim().to_string() });
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(())
}

fn read_attributes(start: &BytesStart<'_>, into: &mut Vec<(Vec<u8>, String)>) {
    into.clear();
    for attribute in start.attributes().flatten() {
        let value = attribute
            .unescape_value()
            .map(|value| value.into_owned())
            .unwrap_or_else(|_| String::from_utf8_lossy(&attribute.value).into_owned());
        let mut kept = String::new();
        append_limited(&mut kept, &value);
        into.push((attribute.key.local_name().as_ref().to_vec(), kept));
    }
}

/// The value of attribute `key`, empty when absent.
pub(crate) fn attribute<'a>(attributes: &'a [(Vec<u8>, String)], key: &[u8]) -> &'a str {
    attributes.iter().find(|(name, _)| name == key).map_or("", |(_, value)| value.trim())
}

fn append_limited(text: &mut String, addition: &str) {
    if text.len() + addition.len() <= MAX_FIELD_BYTES {
        text.push_str(addition);
    }
}
