//! The KServe V2 binary tensor data extension, as Triton and `tritonclient`
//! speak it: pure functions over bytes, unit-tested without a server.
//!
//! A binary body is a JSON header followed by raw tensor data. The
//! `Inference-Header-Content-Length` header gives the JSON's length; every
//! tensor whose data is binary says how many bytes it takes
//! (`parameters.binary_data_size`), and the sections follow the JSON in the
//! order those tensors are listed. Numbers are little-endian; a `BYTES`
//! tensor is its elements one after another, each a 4-byte little-endian
//! length followed by that many bytes.
//!
//! Inputs are sliced out of the request body without copies (`Bytes`).

use axum::body::Bytes;
use axum::http::HeaderValue;

use crate::http::error::RequestError;

/// Request and response header holding the length of the JSON part.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// Bytes before each element of a binary `BYTES` tensor: its length.
const LENGTH_PREFIX: usize = 4;

fn invalid(message: impl Into<String>) -> RequestError {
    RequestError::InvalidBinaryData(message.into())
}

/// A request body cut into its JSON header and the binary data after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramedBody {
    pub json: Bytes,
    /// Empty for a JSON-only request.
    pub binary: Bytes,
}

/// Cuts `body` where `Inference-Header-Content-Length` says the JSON ends;
/// without the header the whole body is JSON.
pub fn split_body(
    body: Bytes,
    header_length: Option<&HeaderValue>,
) -> Result<FramedBody, RequestError> {
    let Some(value) = header_length else {
        return Ok(FramedBody {
            json: body,
            binary: Bytes::new(),
        });
    };
    let length = value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .ok_or_else(|| {
            invalid(format!(
                "{HEADER_LENGTH} must be a byte count, got {value:?}"
            ))
        })?;
    if length > body.len() {
        return Err(invalid(format!(
            "{HEADER_LENGTH} is {length} but the body has only {} bytes",
            body.len()
        )));
    }
    let binary = body.slice(length..);
    Ok(FramedBody {
        json: body.slice(..length),
        binary,
    })
}

/// Hands out the binary data sections in the order the tensors claim them,
/// and checks at the end that every byte was claimed: a client whose sizes
/// do not add up would otherwise get answers for misaligned data.
#[derive(Debug)]
pub struct BinarySections {
    data: Bytes,
    offset: usize,
}

impl BinarySections {
    pub fn new(data: Bytes) -> Self {
        Self { data, offset: 0 }
    }

    /// The next `size` bytes, for the tensor called `tensor`.
    pub fn take(&mut self, size: usize, tensor: &str) -> Result<Bytes, RequestError> {
        let left = self.data.len() - self.offset;
        if size > left {
            return Err(invalid(format!(
                "{tensor}: binary_data_size is {size} but only {left} bytes of binary data are left"
            )));
        }
        let section = self.data.slice(self.offset..self.offset + size);
        self.offset += size;
        Ok(section)
    }

    /// Fails when binary data is left over that no tensor claimed.
    pub fn finish(self) -> Result<(), RequestError> {
        let left = self.data.len() - self.offset;
        if left == 0 {
            Ok(())
        } else {
            Err(invalid(format!(
                "{left} bytes of binary data follow the JSON header but no input claims them \
                 (check parameters.binary_data_size and {HEADER_LENGTH})"
            )))
        }
    }
}

/// The elements of a binary `BYTES` tensor, each sliced from `data`.
pub fn decode_bytes_elements(data: &Bytes) -> Result<Vec<Bytes>, RequestError> {
    let mut elements = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let prefix = data.get(offset..offset + LENGTH_PREFIX).ok_or_else(|| {
            invalid(format!(
                "BYTES element {} has a truncated length prefix",
                elements.len()
            ))
        })?;
        let mut length_bytes = [0u8; LENGTH_PREFIX];
        length_bytes.copy_from_slice(prefix);
        let length = u32::from_le_bytes(length_bytes) as usize;
        let start = offset + LENGTH_PREFIX;
        let end = start
            .checked_add(length)
            .filter(|&end| end <= data.len())
            .ok_or_else(|| {
                invalid(format!(
                    "BYTES element {} claims {length} bytes but only {} are left",
                    elements.len(),
                    data.len() - start
                ))
            })?;
        elements.push(data.slice(start..end));
        offset = end;
    }
    Ok(elements)
}

/// A binary `BYTES` tensor from its elements.
pub fn encode_bytes_elements<'a>(elements: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for element in elements {
        // Elements are labels and numbers, far below 4 GiB.
        let length = u32::try_from(element.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(element);
    }
    out
}

/// A binary `FP32` tensor's values.
pub fn decode_f32s(data: &[u8]) -> Result<Vec<f32>, RequestError> {
    if !data.len().is_multiple_of(4) {
        return Err(invalid(format!(
            "FP32 data must be a multiple of 4 bytes, got {}",
            data.len()
        )));
    }
    Ok(data
        .chunks_exact(4)
        .map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        .collect())
}

/// A binary `FP32` tensor from its values, in row-major order.
pub fn encode_f32s<'a>(rows: impl IntoIterator<Item = &'a [f32]>) -> Vec<u8> {
    let mut out = Vec::new();
    for row in rows {
        out.reserve(row.len() * 4);
        for value in row {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> HeaderValue {
        HeaderValue::from_str(text).unwrap()
    }

    #[test]
    fn the_header_length_splits_json_from_binary() {
        let body = Bytes::from_static(b"{\"a\":1}BINARY");
        let framed = split_body(body.clone(), Some(&header("7"))).unwrap();
        assert_eq!(framed.json, Bytes::from_static(b"{\"a\":1}"));
        assert_eq!(framed.binary, Bytes::from_static(b"BINARY"));

        let whole = split_body(body.clone(), None).unwrap();
        assert_eq!((whole.json, whole.binary.len()), (body.clone(), 0));

        for bad in ["99", "-1", "seven", ""] {
            let error = split_body(body.clone(), Some(&header(bad))).unwrap_err();
            assert_eq!(error.error_type(), "invalid_binary_data", "{bad}");
        }
    }

    #[test]
    fn sections_are_taken_in_order_and_must_use_every_byte() {
        let mut sections = BinarySections::new(Bytes::from_static(b"aaabb"));
        assert_eq!(sections.take(3, "x").unwrap(), Bytes::from_static(b"aaa"));
        assert_eq!(sections.take(2, "y").unwrap(), Bytes::from_static(b"bb"));
        sections.finish().unwrap();

        let mut short = BinarySections::new(Bytes::from_static(b"ab"));
        let error = short.take(3, "x").unwrap_err();
        assert!(
            error.to_string().contains("x: binary_data_size is 3"),
            "{error}"
        );

        let mut leftover = BinarySections::new(Bytes::from_static(b"abc"));
        leftover.take(1, "x").unwrap();
        let error = leftover.finish().unwrap_err();
        assert!(error.to_string().contains("2 bytes"), "{error}");
    }

    #[test]
    fn bytes_elements_round_trip_and_refuse_overruns() {
        let encoded = encode_bytes_elements([&b"cat"[..], b"", b"dog!"]);
        assert_eq!(&encoded[..4], &3u32.to_le_bytes());
        let decoded = decode_bytes_elements(&Bytes::from(encoded.clone())).unwrap();
        assert_eq!(decoded, [&b"cat"[..], b"", b"dog!"]);
        assert!(decode_bytes_elements(&Bytes::new()).unwrap().is_empty());

        // One byte short of the last element.
        let truncated = Bytes::from(encoded[..encoded.len() - 1].to_vec());
        let error = decode_bytes_elements(&truncated).unwrap_err();
        assert_eq!(error.error_type(), "invalid_binary_data");
        assert!(error.to_string().contains("element 2"), "{error}");

        // A length prefix cut short.
        let error = decode_bytes_elements(&Bytes::from_static(&[1, 0])).unwrap_err();
        assert!(
            error.to_string().contains("truncated length prefix"),
            "{error}"
        );

        // A length near u32::MAX must not overflow or allocate.
        let huge = Bytes::from(u32::MAX.to_le_bytes().to_vec());
        assert!(decode_bytes_elements(&huge).is_err());
    }

    #[test]
    fn fp32_round_trips_little_endian() {
        let values = [1.0f32, -0.5, f32::MIN_POSITIVE, 3.25e7];
        let encoded = encode_f32s([&values[..2], &values[2..]]);
        assert_eq!(&encoded[..4], &1.0f32.to_le_bytes());
        assert_eq!(decode_f32s(&encoded).unwrap(), values);
        let error = decode_f32s(&encoded[..5]).unwrap_err();
        assert_eq!(error.error_type(), "invalid_binary_data");
    }
}
