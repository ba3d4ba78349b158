//! What a served model *is*: its id (the name in URLs and metrics), the
//! architecture that shapes it, its classes and the preprocessing its weights
//! expect. The three catalog models are constants; a `[[models]]` entry with
//! its own checkpoint becomes one more at start-up.
//!
//! [`ModelId`] is a `Copy` handle to a `'static` [`ModelSpec`], so a model's
//! identity travels through queues, replicas and responses as cheaply as the
//! enum it replaced. Custom specs are leaked once at start-up: a server holds
//! a handful, for its whole life.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};

use super::catalog::{ArchSpec, Architecture, PretrainedCfg};
use crate::labels;

/// Everything that tells one served model from another.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The id clients use in URLs; a catalog id, or `[[models]].id`.
    pub name: Cow<'static, str>,
    pub architecture: Architecture,
    /// Preprocessing and the classifier width the weights were trained with.
    pub cfg: PretrainedCfg,
    /// One label per class; `None`: the ImageNet-1k table (catalog models).
    pub labels: Option<Vec<String>>,
}

/// A served model: a handle to its [`ModelSpec`]. Two ids are equal when
/// their names are (ids are unique within a configuration).
#[derive(Clone, Copy)]
pub struct ModelId(&'static ModelSpec);

const fn catalog(name: &'static str, architecture: Architecture) -> ModelSpec {
    ModelSpec {
        name: Cow::Borrowed(name),
        architecture,
        cfg: architecture.pretrained_cfg(),
        labels: None,
    }
}

const SERESNEXT50_32X4D: ModelSpec =
    catalog("gluon_seresnext50_32x4d", Architecture::SeResNeXt50_32x4d);
const SERESNEXT101_32X4D: ModelSpec =
    catalog("gluon_seresnext101_32x4d", Architecture::SeResNeXt101_32x4d);
const SERESNEXT101_64X4D: ModelSpec =
    catalog("gluon_seresnext101_64x4d", Architecture::SeResNeXt101_64x4d);

/// The catalog models, in a stable order (for listings and tests).
pub const ALL_MODELS: [ModelId; 3] = [
    ModelId::SeResNeXt50_32x4d,
    ModelId::SeResNeXt101_32x4d,
    ModelId::SeResNeXt101_64x4d,
];

#[allow(non_upper_case_globals)]
impl ModelId {
    pub const SeResNeXt50_32x4d: Self = Self(&SERESNEXT50_32X4D);
    pub const SeResNeXt101_32x4d: Self = Self(&SERESNEXT101_32X4D);
    pub const SeResNeXt101_64x4d: Self = Self(&SERESNEXT101_64X4D);

    /// Resolves a catalog id (`gluon_seresnext50_32x4d`) or one of timm's
    /// current names (`seresnext50_32x4d.gluon_in1k`, with or without the
    /// `timm/` hub prefix). Custom models are found by their exact id among
    /// the served ones, not here.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.strip_prefix("timm/").unwrap_or(name);
        ALL_MODELS
            .into_iter()
            .find(|id| id.name() == name || id.timm_name() == name)
    }

    /// A model of its own (checkpoint, classes, preprocessing). Leaks `spec`:
    /// call once per configured model, at start-up.
    pub fn custom(spec: ModelSpec) -> Self {
        Self(Box::leak(Box::new(spec)))
    }

    /// Whether `name` addresses this model: its id, or for a catalog model
    /// also its timm names.
    pub fn answers_to(self, name: &str) -> bool {
        self.name() == name || (self.is_catalog() && Self::parse(name) == Some(self))
    }

    /// One of the three published models (not a checkpoint of one's own).
    pub fn is_catalog(self) -> bool {
        ALL_MODELS.iter().any(|id| id.name() == self.name())
    }

    /// The id used in URLs, configs and responses.
    pub fn name(self) -> &'static str {
        &self.0.name
    }

    pub fn spec(self) -> &'static ModelSpec {
        self.0
    }

    pub fn architecture(self) -> Architecture {
        self.0.architecture
    }

    /// timm's name of the architecture's published weights, also the Hub
    /// repo `timm/<name>`.
    pub fn timm_name(self) -> &'static str {
        self.0.architecture.timm_name()
    }

    /// The architecture's original release file name.
    pub fn release_file(self) -> &'static str {
        self.0.architecture.release_file()
    }

    /// Where the architecture's published weights can be downloaded.
    pub fn weights_sources(self) -> String {
        self.0.architecture.weights_sources()
    }

    /// The network's shape.
    pub fn arch(self) -> ArchSpec {
        self.0.architecture.arch()
    }

    /// The evaluation settings (and classifier width) of this model's weights.
    pub fn pretrained_cfg(self) -> PretrainedCfg {
        self.0.cfg
    }

    /// The label of `class_id`, or `None` outside the model's classes.
    pub fn label(self, class_id: usize) -> Option<&'static str> {
        match &self.0.labels {
            None => labels::label(class_id),
            Some(names) => names.get(class_id).map(String::as_str),
        }
    }
}

impl PartialEq for ModelId {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for ModelId {}

impl Hash for ModelId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl PartialOrd for ModelId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Catalog models first, in catalog order, then custom ones by id.
impl Ord for ModelId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let rank = |id: &Self| ALL_MODELS.iter().position(|m| m == id);
        match (rank(self), rank(other)) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => self.name().cmp(other.name()),
        }
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({})", self.name())
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `class_0`, `class_1`, …: the labels of a checkpoint that names none.
pub fn numbered_labels(num_classes: usize) -> Vec<String> {
    (0..num_classes)
        .map(|class| format!("class_{class}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_canonical_and_timm_names() {
        for id in ALL_MODELS {
            assert_eq!(ModelId::parse(id.name()), Some(id));
            assert_eq!(ModelId::parse(id.timm_name()), Some(id));
            assert_eq!(
                ModelId::parse(&format!("timm/{}", id.timm_name())),
                Some(id)
            );
            assert!(id.is_catalog());
        }
        assert_eq!(ModelId::parse("resnet50"), None);
        assert_eq!(ModelId::parse("../gluon_seresnext50_32x4d"), None);
    }

    #[test]
    fn a_custom_model_has_its_own_name_classes_and_labels() {
        let mut cfg = Architecture::SeResNeXt50_32x4d.pretrained_cfg();
        cfg.num_classes = 3;
        let id = ModelId::custom(ModelSpec {
            name: "pets".into(),
            architecture: Architecture::SeResNeXt50_32x4d,
            cfg,
            labels: Some(numbered_labels(3)),
        });
        assert!(!id.is_catalog());
        assert!(id.answers_to("pets"));
        assert!(!id.answers_to("seresnext50_32x4d.gluon_in1k"));
        assert_eq!(id.label(2), Some("class_2"));
        assert_eq!(id.label(3), None);
        assert_eq!(id.pretrained_cfg().num_classes, 3);
        assert!(ModelId::SeResNeXt101_64x4d < id);
        assert!(ModelId::SeResNeXt50_32x4d.answers_to("seresnext50_32x4d.gluon_in1k"));
    }
}
