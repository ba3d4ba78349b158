//! Base64 images as clients send them: in V1 JSON bodies (`{"b64": ...}`)
//! and in KServe V2 `BYTES` tensors, by the same rules.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use bytes::Bytes;

/// Padding is optional in the wild (and in TF Serving), so both are accepted.
const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard or URL-safe base64, padded or not, optionally as a
/// `data:image/...;base64,` URL as browsers produce them.
pub fn decode_base64(text: &str) -> Result<Bytes, String> {
    let text = match text.strip_prefix("data:") {
        Some(url) => url
            .split_once(";base64,")
            .map(|(_, data)| data)
            .ok_or_else(|| "a data: URL must be base64 (data:<type>;base64,...)".to_owned())?,
        None => text,
    };
    let engine = if text.contains(['-', '_']) {
        &URL_SAFE
    } else {
        &STANDARD
    };
    let bytes = engine.decode(text).map_err(|e| e.to_string())?;
    if bytes.is_empty() {
        return Err("the image is empty".to_owned());
    }
    Ok(Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_variants_decode() {
        let bytes = [0xfbu8, 0xff, 0xfe, 0x01];
        let standard = base64::engine::general_purpose::STANDARD.encode(bytes);
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        assert_ne!(standard.trim_end_matches('='), url_safe);
        for text in [
            standard.clone(),
            standard.trim_end_matches('=').to_owned(),
            url_safe,
            format!("data:image/png;base64,{standard}"),
        ] {
            assert_eq!(decode_base64(&text).unwrap().as_ref(), bytes, "{text}");
        }
        assert!(decode_base64("data:image/png,raw").is_err());
        assert!(decode_base64("not base64!").is_err());
    }
}
