//! Reads the JSON bodies the hub is sent (Ashby's requests, vendors' callbacks) into typed values,
//! refusing what serde's derived impls would otherwise take by shape alone.
//!
//! A derived `Deserialize` for a struct also reads a sequence, field by field in declaration
//! order, and `serde_json` offers it one whenever the input is an array: `["<id>"]` would be a
//! valid cancel. A derived enum also reads `{"<variant>": null}`. Neither is in any contract the
//! hub implements, so [`from_slice`] wraps `serde_json` in a [`serde::Deserializer`] adapter
//! that, at every depth, reads structs and maps only from JSON objects and enums only from
//! strings, and words what it expected in JSON's terms ("a JSON object", "one of a, b") rather
//! than Rust's ("struct CancelRequest"). `serde_path_to_error` runs on top, so a refusal still
//! names the field. No well-kept crate offers this (serde-rs/serde#1587 is open; its maintainer
//! suggests a separate library), and the adapter is small.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, Unexpected, Visitor};

/// Parses `bytes` as one JSON value of type `T`: structs and maps from objects only, enums from
/// strings only, nothing after the value but whitespace. The error carries the path of the
/// offending field.
pub fn from_slice<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(Strict(&mut de))?;
    // `serde_json::from_slice` does this too: `{…}{…}` or `{…}x` is not one JSON document.
    de.end().map_err(|e| {
        serde_path_to_error::Error::new(serde_path_to_error::Track::new().path(), e)
    })?;
    Ok(value)
}

/// A deserializer that forwards to `D`, except that structs are read as maps and enums as
/// strings. Everything it hands out (visitors, map and sequence access, seeds) wraps the next
/// level the same way.
struct Strict<D>(D);

/// What a wrapped visitor says it expected when the input has the wrong shape.
#[derive(Clone, Copy)]
enum Expect {
    /// Whatever the inner visitor says (a string, a boolean, a UUID string, …).
    Inner,
    Object,
    Array,
}

struct Visit<V> {
    inner: V,
    expect: Expect,
}

impl<V> Visit<V> {
    fn new(inner: V, expect: Expect) -> Self {
        Self { inner, expect }
    }
}

macro_rules! forward_deserialize {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.0.$method(Visit::new(visitor, Expect::Inner))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_unit_struct(name, Visit::new(visitor, Expect::Inner))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_newtype_struct(name, Visit::new(visitor, Expect::Inner))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_seq(Visit::new(visitor, Expect::Array))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_tuple(len, Visit::new(visitor, Expect::Array))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_tuple_struct(name, len, Visit::new(visitor, Expect::Array))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(Visit::new(visitor, Expect::Object))
    }

    /// The point of the adapter: a struct is read as a map, so an array is refused.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(Visit::new(visitor, Expect::Object))
    }

    /// Every enum in the hub's contracts is a string; `{"variant": …}` is refused.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_str(EnumFromStr {
            inner: visitor,
            variants,
        })
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Visit<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expect {
            Expect::Inner => self.inner.expecting(f),
            Expect::Object => f.write_str("a JSON object"),
            Expect::Array => f.write_str("an array"),
        }
    }

    forward_visit!(
        visit_bool: bool,
        visit_i8: i8,
        visit_i16: i16,
        visit_i32: i32,
        visit_i64: i64,
        visit_i128: i128,
        visit_u8: u8,
        visit_u16: u16,
        visit_u32: u32,
        visit_u64: u64,
        visit_u128: u128,
        visit_f32: f32,
        visit_f64: f64,
        visit_char: char,
        visit_str: &str,
        visit_borrowed_str: &'de str,
        visit_string: String,
        visit_bytes: &[u8],
        visit_borrowed_bytes: &'de [u8],
        visit_byte_buf: Vec<u8>,
    );

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_some(Strict(d))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_newtype_struct(Strict(d))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        // Reached by formats (and serde_json's struct variants) that offer a sequence even when
        // a struct was asked for.
        if let Expect::Object = self.expect {
            return Err(de::Error::invalid_type(Unexpected::Seq, &self));
        }
        self.inner.visit_seq(Strict(seq))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(Strict(map))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(Strict(data))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Strict<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0.next_element_seed(Strict(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Strict<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        self.0.next_key_seed(Strict(seed))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.0.next_value_seed(Strict(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Strict<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(Strict(d))
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Strict<A> {
    type Error = A::Error;
    type Variant = Strict<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), Self::Error> {
        let (value, variant) = self.0.variant_seed(Strict(seed))?;
        Ok((value, Strict(variant)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Strict<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.0.newtype_variant_seed(Strict(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .tuple_variant(len, Visit::new(visitor, Expect::Array))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .struct_variant(fields, Visit::new(visitor, Expect::Object))
    }
}

/// Reads an enum from a string: the variant name is handed to the enum's own visitor, which
/// refuses names it does not know ("unknown variant … expected one of …").
struct EnumFromStr<V> {
    inner: V,
    variants: &'static [&'static str],
}

impl<'de, V: Visitor<'de>> Visitor<'de> for EnumFromStr<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.variants {
            [] => f.write_str("nothing (no value is accepted)"),
            [one] => write!(f, "{one}"),
            [a, b] => write!(f, "{a} or {b}"),
            many => write!(f, "one of {}", many.join(", ")),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.inner
            .visit_enum(de::value::StrDeserializer::<E>::new(v))
    }
}

/// Words a JSON parse error for the caller: names the field by its path, never echoes a value
/// (which may be a candidate's name or email).
pub fn describe_json_error(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let inner = e.inner();
    let path = e.path().to_string();
    let at = if path == "." { String::new() } else { path };
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
            return format!(
                "request body is not valid JSON (line {}, column {})",
                inner.line(),
                inner.column()
            );
        }
        serde_json::error::Category::Eof => {
            return "request body is not valid JSON (it ends too early)".into();
        }
        serde_json::error::Category::Data => {}
    }
    let msg = inner.to_string();
    // serde_json appends " at line L column C"; drop it.
    let msg = msg.split(" at line ").next().unwrap_or(&msg);
    let join = |field: &str| {
        if at.is_empty() {
            field.to_owned()
        } else {
            format!("{at}.{field}")
        }
    };
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        return format!("{} is required", join(field));
    }
    if let Some(rest) = msg.strip_prefix("duplicate field `") {
        let field = rest.trim_end_matches('`');
        return format!("{} appears more than once", join(field));
    }
    let subject = if at.is_empty() {
        "request body".to_owned()
    } else {
        at.clone()
    };
    if msg.starts_with("UUID parsing failed") || msg.starts_with("invalid character") {
        return format!("{subject} must be a UUID");
    }
    if let Some((_, expected)) = msg.split_once(", expected ") {
        // serde quotes variant names in backticks: "one of `Hired`, `Archived`".
        let expected = in_json_terms(expected).unwrap_or_else(|| expected.replace('`', ""));
        if !speaks_rust(&expected) {
            return format!("{subject} must be {expected}");
        }
    }
    format!("{subject} is invalid")
}

/// serde's primitive expectations ("u32", "a sequence") in JSON's words.
fn in_json_terms(expected: &str) -> Option<String> {
    macro_rules! whole {
        ($($t:ident),*) => {
            match expected {
                $(stringify!($t) => {
                    return Some(format!("a whole number from {} to {}", $t::MIN, $t::MAX))
                })*
                _ => {}
            }
        };
    }
    whole!(
        u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
    );
    let json = match expected {
        // uuid's own wording is "a formatted UUID string" (and "UUID parsing failed: …").
        e if e.contains("UUID") => "a UUID",
        "f32" | "f64" => "a number",
        "a sequence" => "an array",
        "a map" => "a JSON object",
        _ => return None,
    };
    Some(json.to_owned())
}

/// Whether serde's wording of an expectation names a Rust type ("struct X", "u32", "tuple of 2
/// elements") rather than a JSON one: such text is never shown to a caller. The hub's own types
/// say what they expect in JSON's terms (`crate::json`, custom visitors); this catches any that
/// do not.
fn speaks_rust(expected: &str) -> bool {
    const RUST: [&str; 20] = [
        "struct", "enum", "tuple", "variant", "newtype", "sequence", "unit", "option", "map", "u8",
        "u16", "u32", "u64", "u128", "i8", "i16", "i32", "i64", "i128", "usize",
    ];
    expected
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| RUST.contains(&w.to_ascii_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        inner: Inner,
        #[serde(default)]
        maybe: Option<Inner>,
        #[serde(default)]
        list: Vec<Inner>,
        kind: Kind,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        a: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        InProgress,
        Completed,
    }

    fn refused(body: &str) -> (String, String) {
        let e = from_slice::<Outer>(body.as_bytes()).expect_err("must be refused");
        (e.path().to_string(), e.inner().to_string())
    }

    #[test]
    fn objects_and_strings_parse_as_with_serde_json() {
        let v: Outer = from_slice(
            br#"{"inner":{"a":"x"},"maybe":{"a":"y"},"list":[{"a":"z"}],"kind":"completed"}"#,
        )
        .expect("valid");
        assert_eq!(v.maybe, Some(Inner { a: "y".into() }));
        assert_eq!(v.list, vec![Inner { a: "z".into() }]);
        assert_eq!(v.kind, Kind::Completed);
    }

    #[test]
    fn an_array_in_place_of_an_object_is_refused_at_any_depth_with_its_path() {
        for (body, path) in [
            (r#"[{"a":"x"},null,[],"completed"]"#, "."),
            (r#"{"inner":["x"],"kind":"completed"}"#, "inner"),
            (
                r#"{"inner":{"a":"x"},"maybe":["y"],"kind":"completed"}"#,
                "maybe",
            ),
            (
                r#"{"inner":{"a":"x"},"list":[["z"]],"kind":"completed"}"#,
                "list[0]",
            ),
        ] {
            let (at, msg) = refused(body);
            assert_eq!(at, path, "{body}");
            assert!(msg.contains("expected a JSON object"), "{body}: {msg}");
            assert!(!msg.contains("struct"), "{body}: {msg}");
        }
    }

    #[test]
    fn an_enum_is_read_from_a_string_only_and_named_by_its_values() {
        let (at, msg) = refused(r#"{"inner":{"a":"x"},"kind":{"completed":null}}"#);
        assert_eq!(at, "kind");
        assert!(msg.contains("expected in_progress or completed"), "{msg}");
        let (_, msg) = refused(r#"{"inner":{"a":"x"},"kind":7}"#);
        assert!(msg.contains("expected in_progress or completed"), "{msg}");
        assert!(!msg.contains("enum"), "{msg}");
        let (at, msg) = refused(r#"{"inner":{"a":"x"},"kind":"done"}"#);
        assert_eq!(at, "kind");
        assert!(msg.starts_with("unknown variant"), "{msg}");
    }

    #[test]
    fn anything_after_the_value_is_refused() {
        let one = r#"{"inner":{"a":"x"},"kind":"completed"}"#;
        assert!(from_slice::<Outer>(format!("{one} \n").as_bytes()).is_ok());
        for tail in [one, "x", "[]"] {
            let e = from_slice::<Outer>(format!("{one}{tail}").as_bytes()).expect_err("trailing");
            assert_eq!(e.inner().classify(), serde_json::error::Category::Syntax);
        }
    }
}
