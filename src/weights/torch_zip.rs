//! The zip checkpoint format `torch.save` writes since torch 1.6.
//!
//! Layout: `<prefix>/data.pkl` (the pickled object, storages as persistent
//! ids), `<prefix>/data/<key>` (raw little-endian storage bytes),
//! `<prefix>/byteorder` (torch >= 1.13) and bookkeeping files. torch writes
//! every member uncompressed, so members are sliced straight out of the
//! input: no copy, and byte offsets in errors are offsets in the file.

use std::collections::HashMap;
use std::io::Cursor;
use std::rc::Rc;

use super::mapped::FileBytes;

use zip::{CompressionMethod, ZipArchive};

use super::objects::Heap;
use super::pickle;
use super::{torch_pickle, Checkpoint, WeightsError};

/// `file` is the whole archive; contiguous tensors are slices of it.
pub(crate) fn load(file: &FileBytes) -> Result<Checkpoint, WeightsError> {
    let bytes: &[u8] = file;
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| WeightsError::corrupt(0, format!("not a readable zip archive: {e}")))?;

    // torch names the prefix after the file it saved to, so find it from data.pkl.
    let names: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .map(|name| name.into_owned())
        .collect();
    let Some(prefix) = names.iter().find_map(|name| {
        let prefix = name.strip_suffix("/data.pkl")?;
        (!prefix.contains('/')).then(|| prefix.to_string())
    }) else {
        return Err(WeightsError::unsupported(
            0,
            "zip archive has no <prefix>/data.pkl; not a torch checkpoint",
        ));
    };

    let byteorder_name = format!("{prefix}/byteorder");
    if names.contains(&byteorder_name) {
        let (offset, byteorder) = member(&mut archive, bytes, &byteorder_name)?;
        if byteorder != b"little" {
            let order = String::from_utf8_lossy(byteorder);
            return Err(WeightsError::unsupported(
                offset,
                format!("storages are stored `{order}`-endian"),
            ));
        }
    }

    let data_dir = format!("{prefix}/data/");
    let mut storages: HashMap<Rc<str>, &[u8]> = HashMap::new();
    for name in &names {
        if let Some(key) = name.strip_prefix(&data_dir) {
            let (_, data) = member(&mut archive, bytes, name)?;
            storages.insert(key.into(), data);
        }
    }

    let (pickle_offset, pickle_bytes) = member(&mut archive, bytes, &format!("{prefix}/data.pkl"))?;
    let mut heap = Heap::default();
    let (root, _) = pickle::unpickle(pickle_bytes, pickle_offset, &mut heap)?;
    // A checkpoint cannot hold more tensor bytes than the file, except through
    // shared or stride-0 views; allow those a generous but finite factor.
    let mut budget = super::output_budget(bytes.len());
    torch_pickle::build_checkpoint(&heap, &root, &storages, file, &mut budget)
}

/// The stored bytes of member `name` and their offset in the file.
fn member<'b>(
    archive: &mut ZipArchive<Cursor<&'b [u8]>>,
    bytes: &'b [u8],
    name: &str,
) -> Result<(u64, &'b [u8]), WeightsError> {
    let corrupt = |what: String| WeightsError::corrupt(0, format!("zip member {name}: {what}"));
    let index = archive
        .index_for_name(name)
        .ok_or_else(|| corrupt("listed but not found".into()))?;
    let file = archive
        .by_index_raw(index)
        .map_err(|e| corrupt(e.to_string()))?;
    let header = file.header_start();
    if file.encrypted() || file.compression() != CompressionMethod::Stored {
        return Err(WeightsError::unsupported(
            header,
            format!("zip member {name} is compressed or encrypted; torch writes them stored"),
        ));
    }
    let start = file
        .data_start()
        .ok_or_else(|| corrupt("local header not located".into()))?;
    let len = file.compressed_size();
    let end = start
        .checked_add(len)
        .filter(|&end| end <= bytes.len() as u64);
    let Some(end) = end else {
        return Err(WeightsError::Truncated {
            offset: start,
            what: format!("zip member {name}"),
            needed: len,
            available: (bytes.len() as u64).saturating_sub(start),
        });
    };
    if file.size() != len {
        return Err(WeightsError::corrupt(
            header,
            format!("stored zip member {name} has two sizes"),
        ));
    }
    match bytes.get(start as usize..end as usize) {
        Some(data) => Ok((start, data)),
        None => Err(corrupt(
            "range checked above is out of bounds (this is a bug)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use zip::write::SimpleFileOptions;
    use zip::ZipWriter;

    use super::*;
    use crate::weights::load_bytes;

    const TINY_ZIP: &[u8] = include_bytes!("testdata/tiny_zip.pth");

    /// Copies the fixture archive member by member; `edit` may change or drop
    /// (by returning `None`) each member's bytes.
    fn rezip(edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
        let mut archive = ZipArchive::new(Cursor::new(TINY_ZIP)).unwrap();
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        for index in 0..archive.len() {
            let mut file = archive.by_index(index).unwrap();
            let name = file.name().unwrap().to_string();
            let mut data = Vec::new();
            file.read_to_end(&mut data).unwrap();
            if let Some(data) = edit(&name, data) {
                writer.start_file(name, options).unwrap();
                writer.write_all(&data).unwrap();
            }
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn rewritten_archive_still_loads() {
        assert_eq!(
            load_bytes(&rezip(|_, data| Some(data))).unwrap(),
            load_bytes(TINY_ZIP).unwrap()
        );
    }

    #[test]
    fn rejects_big_endian_and_missing_or_short_members() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                rezip(|name, data| {
                    Some(if name.ends_with("/byteorder") {
                        b"big".to_vec()
                    } else {
                        data
                    })
                }),
                "`big`-endian",
            ),
            (
                rezip(|name, data| (!name.ends_with("/data.pkl")).then_some(data)),
                "no <prefix>/data.pkl",
            ),
            (
                rezip(|name, data| (!name.ends_with("/data/0")).then_some(data)),
                "storage `0` is missing",
            ),
            (
                rezip(|name, data| {
                    Some(if name.ends_with("/data/0") {
                        data[..4].to_vec()
                    } else {
                        data
                    })
                }),
                "holds 4 bytes",
            ),
        ];
        for (file, expected) in cases {
            let err = load_bytes(&file).unwrap_err().to_string();
            assert!(err.contains(expected), "`{err}` lacks `{expected}`");
        }
    }

    #[test]
    fn pickle_errors_name_offsets_in_the_file() {
        let file = rezip(|name, mut data| {
            if name.ends_with("/data.pkl") {
                data[2] = 0xff; // the opcode after PROTO
            }
            Some(data)
        });
        let err = load_bytes(&file).unwrap_err();
        let WeightsError::Unsupported { offset, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(file[offset as usize], 0xff);
    }
}
