//! `models[].weights`: where a model's parameters come from, written as one
//! string in the file (or left out), and the `hf://` URL form it accepts.
//!
//! Parsing lives here, with the rest of the file's syntax, so a malformed URL
//! fails when the config is read and toml's message names the key and line.
//! Finding or downloading the file is the `hub` module's business.

use std::{fmt, path::PathBuf, str::FromStr};

use serde::{Deserialize, Serialize};

use super::validate::WEIGHTS_EXTENSIONS;

/// Where a model's parameters come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WeightsSource {
    /// No `weights` key (or `"pretrained"`): the model's published weights,
    /// `model.safetensors` of `timm/<timm name>` on the Hugging Face Hub. The
    /// repo follows from the model id, so changing `id` alone never pairs a
    /// model with another model's weights.
    #[default]
    Pretrained,
    /// `"hf://<org>/<repo>[@<revision>][/<file>]"`: a file on the Hugging Face
    /// Hub, taken from the local cache when there and downloaded otherwise.
    Hub(HubFile),
    /// A checkpoint (`.pth`, `.pt`, `.bin` or `.safetensors`), relative to the
    /// working directory unless absolute.
    File(PathBuf),
    /// `"random"`: seeded random initialisation, for tests and load testing
    /// without a checkpoint. Never the default, so it cannot happen by accident.
    Random,
}

impl WeightsSource {
    /// The string that selects [`WeightsSource::Random`].
    pub const RANDOM: &'static str = "random";
    /// The string that selects [`WeightsSource::Pretrained`], for a flag or
    /// environment variable that must name the default explicitly.
    pub const PRETRAINED: &'static str = "pretrained";

    /// True for the default, so serialising a config leaves the key out and
    /// reading it back gives the same default.
    pub fn is_pretrained(&self) -> bool {
        *self == Self::Pretrained
    }
}

impl FromStr for WeightsSource {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "" => Err(
                "weights must not be empty: give a checkpoint path, an hf:// URL, \"pretrained\" or \"random\""
                    .into(),
            ),
            Self::RANDOM => Ok(Self::Random),
            Self::PRETRAINED => Ok(Self::Pretrained),
            url if url.starts_with(HubFile::SCHEME) => url.parse().map(Self::Hub),
            url if url.contains("://") => Err(format!(
                "weights {url:?}: only hf:// URLs are fetched (hf://<org>/<repo>[@<revision>][/<file>]); \
                 download other URLs yourself and give the local path"
            )),
            path => Ok(Self::File(PathBuf::from(path))),
        }
    }
}

impl fmt::Display for WeightsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pretrained => f.write_str(Self::PRETRAINED),
            Self::Hub(file) => file.fmt(f),
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Random => f.write_str(Self::RANDOM),
        }
    }
}

impl Serialize for WeightsSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for WeightsSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One file in a Hugging Face Hub model repository, as `hf://` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubFile {
    /// `<org>/<repo>`, e.g. `timm/seresnext50_32x4d.gluon_in1k`.
    pub repo_id: String,
    /// Branch, tag or 40-hex commit; `main` unless the URL says `@<revision>`.
    /// A commit pins the exact bytes; a branch is read from the cache's `refs/`.
    pub revision: String,
    /// Path inside the repo; `model.safetensors`, as timm publishes it.
    pub filename: String,
}

impl HubFile {
    /// The URL scheme that selects the Hub.
    pub const SCHEME: &'static str = "hf://";
    /// The branch used when the URL names none (as huggingface_hub does).
    pub const DEFAULT_REVISION: &'static str = "main";
    /// The file used when the URL names none: timm's published weights.
    pub const DEFAULT_FILENAME: &'static str = "model.safetensors";

    /// `model.safetensors` at `main` of `repo_id`: what timm publishes.
    pub fn published(repo_id: impl Into<String>) -> Self {
        Self {
            repo_id: repo_id.into(),
            revision: Self::DEFAULT_REVISION.to_owned(),
            filename: Self::DEFAULT_FILENAME.to_owned(),
        }
    }
}

impl FromStr for HubFile {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            format!("invalid weights URL {url:?}: {why}; expected hf://<org>/<repo>[@<revision>][/<file>]")
        };
        let rest = url
            .strip_prefix(Self::SCHEME)
            .ok_or_else(|| bad("it does not start with hf://"))?;
        let (org, rest) = rest.split_once('/').ok_or_else(|| {
            bad("the repo must be <org>/<repo>, e.g. timm/seresnext50_32x4d.gluon_in1k")
        })?;
        let (repo_and_revision, filename) = match rest.split_once('/') {
            Some((head, file)) => (head, Some(file)),
            None => (rest, None),
        };
        let (repo, revision) = match repo_and_revision.split_once('@') {
            Some((repo, revision)) => (repo, Some(revision)),
            None => (repo_and_revision, None),
        };
        for (what, name) in [("org", org), ("repo", repo)] {
            if !is_repo_name_part(name) {
                return Err(bad(&format!(
                    "{what} {name:?} must be non-empty letters, digits, '-', '_' or '.'"
                )));
            }
        }
        let revision = match revision {
            Some("") => return Err(bad("the revision after '@' is empty")),
            Some(revision) => revision,
            None => Self::DEFAULT_REVISION,
        };
        let filename = match filename {
            Some(file) if !is_relative_file_path(file) => {
                return Err(bad(&format!(
                    "file {file:?} must be a relative path without empty, '.' or '..' parts"
                )))
            }
            Some(file) => file,
            None => Self::DEFAULT_FILENAME,
        };
        let extension = filename.rsplit_once('.').map_or("", |(_, ext)| ext);
        if !WEIGHTS_EXTENSIONS.contains(&extension) {
            return Err(bad(&format!(
                "file {filename:?} is not a .safetensors, .pth, .pt or .bin checkpoint"
            )));
        }
        Ok(Self {
            repo_id: format!("{org}/{repo}"),
            revision: revision.to_owned(),
            filename: filename.to_owned(),
        })
    }
}

/// The characters the Hub allows in an org or repo name; `.` and `..` would
/// escape the cache directory, so they are refused too.
fn is_repo_name_part(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A path that stays inside the snapshot directory it is joined to.
fn is_relative_file_path(path: &str) -> bool {
    !path.contains('\\')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

impl fmt::Display for HubFile {
    /// The shortest URL that parses back to `self`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::SCHEME, self.repo_id)?;
        if self.revision != Self::DEFAULT_REVISION {
            write!(f, "@{}", self.revision)?;
        }
        if self.filename != Self::DEFAULT_FILENAME {
            write!(f, "/{}", self.filename)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(url: &str) -> HubFile {
        url.parse().unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn hub_error(url: &str) -> String {
        url.parse::<HubFile>().expect_err(url)
    }

    #[test]
    fn hub_urls_default_the_revision_and_file() {
        let file = hub("hf://timm/seresnext50_32x4d.gluon_in1k");
        assert_eq!(
            file,
            HubFile::published("timm/seresnext50_32x4d.gluon_in1k")
        );
        assert_eq!(file.revision, "main");
        assert_eq!(file.filename, "model.safetensors");

        let file = hub("hf://timm/seresnext50_32x4d.gluon_in1k@v1.0/weights/model.bin");
        assert_eq!(file.repo_id, "timm/seresnext50_32x4d.gluon_in1k");
        assert_eq!(file.revision, "v1.0");
        assert_eq!(file.filename, "weights/model.bin");
        let file = hub("hf://my-org/my_repo/pytorch_model.bin");
        assert_eq!(
            (file.revision.as_str(), file.filename.as_str()),
            ("main", "pytorch_model.bin")
        );
    }

    #[test]
    fn hub_urls_display_as_they_parse() {
        for url in [
            "hf://timm/seresnext50_32x4d.gluon_in1k",
            "hf://timm/seresnext50_32x4d.gluon_in1k@0123456789abcdef0123456789abcdef01234567",
            "hf://a/b@dev/sub/file.pth",
        ] {
            assert_eq!(hub(url).to_string(), url);
        }
        assert_eq!(
            hub("hf://timm/x@main/model.safetensors").to_string(),
            "hf://timm/x"
        );
    }

    #[test]
    fn malformed_hub_urls_say_what_is_wrong() {
        for (url, part) in [
            ("hf://", "<org>/<repo>"),
            ("hf://seresnext50_32x4d.gluon_in1k", "<org>/<repo>"),
            ("hf:///repo", "org \"\""),
            ("hf://timm/", "repo \"\""),
            ("hf://timm/a b", "repo \"a b\""),
            ("hf://../x", "org \"..\""),
            ("hf://timm/x@", "revision after '@' is empty"),
            ("hf://timm/x/", "file \"\""),
            ("hf://timm/x/../../etc/passwd.bin", "relative path"),
            ("hf://timm/x//model.bin", "relative path"),
            ("hf://timm/x/config.json", "not a .safetensors"),
        ] {
            let message = hub_error(url);
            assert!(message.contains(part), "{url}: {message}");
            assert!(
                message.contains("hf://<org>/<repo>[@<revision>][/<file>]"),
                "{message}"
            );
        }
    }

    #[test]
    fn weights_strings_select_their_source() {
        assert_eq!("random".parse(), Ok(WeightsSource::Random));
        assert_eq!("pretrained".parse(), Ok(WeightsSource::Pretrained));
        assert_eq!(
            "hf://timm/x".parse(),
            Ok(WeightsSource::Hub(HubFile::published("timm/x")))
        );
        assert_eq!(
            "w/a-90cf2d6e.pth".parse(),
            Ok(WeightsSource::File(PathBuf::from("w/a-90cf2d6e.pth")))
        );
        let message = "https://huggingface.co/timm/x"
            .parse::<WeightsSource>()
            .expect_err("url");
        assert!(message.contains("only hf:// URLs"), "{message}");
        assert!("hf://timm".parse::<WeightsSource>().is_err());
        for source in [
            WeightsSource::Pretrained,
            WeightsSource::Random,
            WeightsSource::Hub(hub("hf://a/b@c/d.pt")),
            WeightsSource::File(PathBuf::from("/w/m.safetensors")),
        ] {
            assert_eq!(source.to_string().parse(), Ok(source.clone()));
        }
        assert_eq!(WeightsSource::default(), WeightsSource::Pretrained);
    }
}
