//! ImageNet-1k class names, shipped with the binary, and the label files of
//! checkpoints of one's own.
//!
//! The table comes from the timm package (`scripts/fixtures/gen_labels.py`), so a
//! class id maps to exactly the description timm prints for it.

use std::path::Path;
use std::sync::OnceLock;

const IMAGENET1K_TSV: &str = include_str!("imagenet1k.tsv");

/// One class: its WordNet synset id and its human-readable label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassLabel {
    pub synset: &'static str,
    pub label: &'static str,
}

/// The 1000 ImageNet-1k classes, indexed by class id.
pub fn imagenet1k() -> &'static [ClassLabel] {
    static LABELS: OnceLock<Vec<ClassLabel>> = OnceLock::new();
    LABELS.get_or_init(|| {
        IMAGENET1K_TSV
            .lines()
            .map(|line| {
                let (synset, label) = line.split_once('\t').unwrap_or((line, line));
                ClassLabel { synset, label }
            })
            .collect()
    })
}

/// The label of `class_id`, or `None` outside the table.
pub fn label(class_id: usize) -> Option<&'static str> {
    imagenet1k().get(class_id).map(|class| class.label)
}

/// A labels file: one label per line, in class order. A final newline (and
/// Windows line ends) do not make an extra class; blank lines inside do, as
/// labels that happen to be empty.
pub fn read_label_file(path: &Path) -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line).to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_file_has_one_label_per_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("labels.txt");
        std::fs::write(&path, "cat\r\ndog\n\nrabbit\n").expect("write");
        let labels = read_label_file(&path).expect("read");
        assert_eq!(labels, ["cat", "dog", "", "rabbit"]);
    }

    #[test]
    fn table_has_one_distinct_synset_per_class() {
        let labels = imagenet1k();
        assert_eq!(labels.len(), 1000);
        let synsets: std::collections::HashSet<_> = labels.iter().map(|c| c.synset).collect();
        assert_eq!(synsets.len(), 1000);
        assert!(labels
            .iter()
            .all(|c| c.synset.starts_with('n') && !c.label.is_empty()));
    }

    #[test]
    fn known_classes_have_timm_labels() {
        assert_eq!(label(0), Some("tench, Tinca tinca"));
        assert_eq!(label(285), Some("Egyptian cat"));
        assert_eq!(label(1000), None);
    }
}
