//! [`TensorData`]: a KServe V2 JSON tensor's `data`, flattened while it is
//! parsed. The protocol allows flat and nested arrays (and a bare scalar);
//! the datatype decides later whether numbers or strings were right.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// A JSON tensor's `data`, flattened: the protocol allows nested arrays as
/// well as flat ones, and a bare scalar. Collected straight into `f32`s or
/// strings, so an image of 150,528 floats costs 600 KB, not a `Value` tree.
#[derive(Debug, Default)]
pub enum TensorData {
    #[default]
    Empty,
    Numbers(Vec<f32>),
    Strings(Vec<String>),
}

impl TensorData {
    fn push_number<E: serde::de::Error>(&mut self, value: f32) -> Result<(), E> {
        match self {
            Self::Empty => *self = Self::Numbers(vec![value]),
            Self::Numbers(values) => values.push(value),
            Self::Strings(_) => return Err(E::custom("data mixes strings and numbers")),
        }
        Ok(())
    }

    fn push_string<E: serde::de::Error>(&mut self, value: String) -> Result<(), E> {
        match self {
            Self::Empty => *self = Self::Strings(vec![value]),
            Self::Strings(values) => values.push(value),
            Self::Numbers(_) => return Err(E::custom("data mixes strings and numbers")),
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for TensorData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut data = TensorData::Empty;
        Flatten(&mut data).deserialize(deserializer)?;
        Ok(data)
    }
}

/// Visits one JSON value, recursing into arrays, appending to the collector.
struct Flatten<'a>(&'a mut TensorData);

impl<'de> DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("numbers or strings, in a flat or nested array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Flatten(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<(), E> {
        // Rounds to the nearest f32: exact for every value a client had as an f32.
        self.0.push_number(value as f32)
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<(), E> {
        self.0.push_number(value as f32)
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<(), E> {
        self.0.push_number(value as f32)
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<(), E> {
        self.0.push_string(value.to_owned())
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<(), E> {
        self.0.push_string(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<TensorData, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn nested_arrays_flatten_in_row_major_order() {
        let TensorData::Numbers(values) = parse("[[[1, 2.5], [-3]], [[4e-1]]]").unwrap() else {
            panic!("numbers expected")
        };
        assert_eq!(values, [1.0, 2.5, -3.0, 0.4]);
        let TensorData::Strings(texts) = parse(r#"[["a"], ["b", "c"]]"#).unwrap() else {
            panic!("strings expected")
        };
        assert_eq!(texts, ["a", "b", "c"]);
        assert!(matches!(parse("[]").unwrap(), TensorData::Empty));
        assert!(matches!(parse("7").unwrap(), TensorData::Numbers(v) if v == [7.0]));
    }

    #[test]
    fn mixed_kinds_booleans_and_objects_are_refused() {
        for bad in [
            r#"[1, "a"]"#,
            r#"["a", [2]]"#,
            "[true]",
            r#"[{"a": 1}]"#,
            "null",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_f32_survives_its_json_round_trip_exactly() {
        let values = [0.1f32, -2.117_904_1, 1e-30, 3.402_823_5e38];
        let json = serde_json::to_string(&values).unwrap();
        let TensorData::Numbers(parsed) = parse(&json).unwrap() else {
            panic!("numbers expected")
        };
        assert_eq!(parsed, values);
    }
}
