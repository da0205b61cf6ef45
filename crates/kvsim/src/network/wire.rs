//! Reading a replica's datagram: only the fields the simulator needs.
//!
//! The whole datagram is still checked to be one JSON object (the classic simulator counts
//! anything else as incorrect), but values of other fields are skipped without being built,
//! and the string fields we keep borrow from the receive buffer unless they hold escapes.

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

use raft::NodeId;

/// A field of interest: absent, a string, or something else (a number, a list...).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field<'a> {
    #[default]
    Missing,
    Str(Cow<'a, str>),
    Other,
}

impl<'a> Field<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Field::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_missing(&self) -> bool {
        matches!(self, Field::Missing)
    }

    /// A valid ID: a string of exactly four hexadecimal characters (either case).
    pub fn id(&self) -> Option<NodeId> {
        self.as_str().and_then(NodeId::parse)
    }

    /// The ID only if written canonically (upper case), the way the classic simulator's
    /// tables spell replica and client IDs; `"000a"` is valid but names nobody.
    pub fn canonical_id(&self) -> Option<NodeId> {
        let s = self.as_str()?;
        let id = NodeId::parse(s)?;
        (id.to_hex() == s.as_bytes()).then_some(id)
    }
}

/// The fields the simulator reads from a datagram.
#[derive(Debug, Default)]
pub struct Header<'a> {
    pub src: Field<'a>,
    pub dst: Field<'a>,
    pub leader: Field<'a>,
    pub kind: Field<'a>,
    pub mid: Field<'a>,
    /// Read for kvsim's stand-ins, which serve requests (`stand_in`); routing ignores it.
    pub key: Field<'a>,
    pub value: Field<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    NotJson,
    NotObject,
}

/// Parses a datagram. Duplicate keys: the last one wins, as in Python's `json.loads`.
pub fn parse(buf: &[u8]) -> Result<Header<'_>, WireError> {
    let mut de = serde_json::Deserializer::from_slice(buf);
    let header = match Header::deserialize(&mut de) {
        Ok(h) => h,
        Err(e) if e.is_data() => return Err(WireError::NotObject),
        Err(_) => return Err(WireError::NotJson),
    };
    de.end().map_err(|_| WireError::NotJson)?;
    Ok(header)
}

enum FieldName {
    Src,
    Dst,
    Leader,
    Type,
    Mid,
    Key,
    Value,
    Other,
}

impl<'de> Deserialize<'de> for FieldName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FieldName, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FieldName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<FieldName, E> {
                Ok(match s {
                    "src" => FieldName::Src,
                    "dst" => FieldName::Dst,
                    "leader" => FieldName::Leader,
                    "type" => FieldName::Type,
                    "MID" => FieldName::Mid,
                    "key" => FieldName::Key,
                    "value" => FieldName::Value,
                    _ => FieldName::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Field<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Field<'de>, E> {
                Ok(Field::Str(Cow::Owned(s)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Field<'de>, E> {
                Ok(Field::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Field<'de>, E> {
                Ok(Field::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Field<'de>, E> {
                Ok(Field::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Field<'de>, E> {
                Ok(Field::Other)
            }
            fn visit_unit<E>(self) -> Result<Field<'de>, E> {
                Ok(Field::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Field::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Header<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Header<'de>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Header<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header<'de>, A::Error> {
                let mut h = Header::default();
                while let Some(key) = map.next_key::<FieldName>()? {
                    let slot = match key {
                        FieldName::Src => &mut h.src,
                        FieldName::Dst => &mut h.dst,
                        FieldName::Leader => &mut h.leader,
                        FieldName::Type => &mut h.kind,
                        FieldName::Mid => &mut h.mid,
                        FieldName::Key => &mut h.key,
                        FieldName::Value => &mut h.value,
                        FieldName::Other => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value::<Field<'de>>()?;
                }
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_needed_fields_and_skips_the_rest() {
        let raw = br#"{"src": "0001", "dst": "FFFF", "leader": "0001", "type": "append",
                      "entries": [{"k": "x", "v": [1, 2, {"a": null}]}], "MID": "AB\u0043", "value": 7}"#;
        let h = parse(raw).unwrap();
        assert_eq!(h.src.canonical_id(), Some(NodeId(1)));
        assert_eq!(h.dst.id(), Some(NodeId::BROADCAST));
        assert_eq!(h.kind.as_str(), Some("append"));
        assert_eq!(h.mid.as_str(), Some("ABC"));
        assert_eq!(h.value, Field::Other);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(parse(b"hello").unwrap_err(), WireError::NotJson);
        assert_eq!(
            parse(b"{\"src\": \"0001\"").unwrap_err(),
            WireError::NotJson
        );
        assert_eq!(parse(b"[1, 2]").unwrap_err(), WireError::NotObject);
        assert_eq!(parse(b"\"str\"").unwrap_err(), WireError::NotObject);
        assert_eq!(parse(b"{} {}").unwrap_err(), WireError::NotJson);
        assert_eq!(parse(&[0xff, 0xfe]).unwrap_err(), WireError::NotJson);
        let h = parse(br#"{"src": 1, "dst": "000a"}"#).unwrap();
        assert_eq!(h.src, Field::Other);
        assert_eq!(h.dst.id(), Some(NodeId(10)));
        assert_eq!(h.dst.canonical_id(), None);
        assert!(h.leader.is_missing());
    }
}
