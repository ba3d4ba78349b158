//! Cache resolution, settings and error texts, all offline: every test gets
//! its own temp cache laid out exactly as Python's huggingface_hub writes it,
//! and settings are built from explicit values, never the process environment.

use std::path::{Path, PathBuf};

use super::*;

pub(super) const REPO: &str = "timm/seresnext50_32x4d.gluon_in1k";
pub(super) const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
/// Blob names are the file's ETag: the SHA-256 for LFS files.
const ETAG: &str = "9a129038d9a00aed0cf6a7ea059ca50a813449061ab87848cf1a13eafdf33b2c";

/// Writes `bytes` as huggingface_hub does: `blobs/<etag>`, a relative symlink
/// `snapshots/<commit>/<file>` → `../../blobs/<etag>`, and `refs/<branch>`.
pub(super) fn python_style_cache(cache_dir: &Path, branch: &str, filename: &str, bytes: &[u8]) {
    let repo = cache_dir.join("models--timm--seresnext50_32x4d.gluon_in1k");
    std::fs::create_dir_all(repo.join("blobs")).expect("blobs dir");
    std::fs::write(repo.join("blobs").join(ETAG), bytes).expect("blob");
    let snapshot = repo.join("snapshots").join(COMMIT).join(filename);
    let parent = snapshot.parent().expect("snapshot has a parent");
    std::fs::create_dir_all(parent).expect("snapshot dir");
    let depth = filename.matches('/').count() + 2;
    let target = PathBuf::from("../".repeat(depth)).join("blobs").join(ETAG);
    std::os::unix::fs::symlink(target, &snapshot).expect("symlink");
    std::fs::create_dir_all(repo.join("refs")).expect("refs dir");
    std::fs::write(repo.join("refs").join(branch), COMMIT).expect("ref");
}

pub(super) fn settings(cache_dir: &Path, offline: bool) -> HubSettings {
    HubSettings {
        cache_dir: cache_dir.to_owned(),
        offline,
        endpoint: None,
    }
}

fn file(url: &str) -> HubFile {
    url.parse().expect("valid hf:// URL")
}

#[test]
fn repo_dirs_are_named_as_huggingface_hub_names_them() {
    assert_eq!(
        cache::repo_dir(Path::new("/c"), REPO),
        PathBuf::from("/c/models--timm--seresnext50_32x4d.gluon_in1k")
    );
}

#[test]
fn a_python_cached_file_resolves_without_the_network() {
    let dir = tempfile::tempdir().expect("temp dir");
    python_style_cache(dir.path(), "main", "model.safetensors", b"weights");
    let expected = dir
        .path()
        .join("models--timm--seresnext50_32x4d.gluon_in1k/snapshots")
        .join(COMMIT)
        .join("model.safetensors");
    // Online too: a cached file must not cost a request (there is no Hub
    // here, so a request would fail the test).
    for offline in [true, false] {
        let path = resolve(
            &file("hf://timm/seresnext50_32x4d.gluon_in1k"),
            &settings(dir.path(), offline),
        )
        .expect("cached");
        assert_eq!(path, expected);
        assert_eq!(
            std::fs::read(&path).expect("read through symlink"),
            b"weights"
        );
    }
}

#[test]
fn revisions_select_refs_or_name_a_commit_directly() {
    let dir = tempfile::tempdir().expect("temp dir");
    python_style_cache(dir.path(), "v1", "sub/model.bin", b"weights");
    let offline = settings(dir.path(), true);
    let by_tag = resolve(
        &file("hf://timm/seresnext50_32x4d.gluon_in1k@v1/sub/model.bin"),
        &offline,
    )
    .expect("tag");
    let by_commit = resolve(
        &file(&format!(
            "hf://timm/seresnext50_32x4d.gluon_in1k@{COMMIT}/sub/model.bin"
        )),
        &offline,
    )
    .expect("commit");
    assert_eq!(by_tag, by_commit);
    assert!(resolve(
        &file("hf://timm/seresnext50_32x4d.gluon_in1k/sub/model.bin"),
        &offline
    )
    .is_err());
}

#[test]
fn broken_caches_count_as_not_cached() {
    let dir = tempfile::tempdir().expect("temp dir");
    python_style_cache(dir.path(), "main", "model.safetensors", b"weights");
    let repo = cache::repo_dir(dir.path(), REPO);
    let wanted = file("hf://timm/seresnext50_32x4d.gluon_in1k");
    std::fs::remove_file(repo.join("blobs").join(ETAG)).expect("remove blob");
    assert_eq!(
        cache::cached_path(dir.path(), &wanted),
        None,
        "dangling symlink"
    );

    std::fs::write(repo.join("refs/main"), "../../elsewhere").expect("ref");
    assert_eq!(
        cache::cached_path(dir.path(), &wanted),
        None,
        "ref leaving snapshots/"
    );
    std::fs::remove_file(repo.join("refs/main")).expect("remove ref");
    assert_eq!(cache::cached_path(dir.path(), &wanted), None, "no ref");
}

#[test]
fn offline_and_uncached_says_where_it_looked_and_how_to_provide_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let error = resolve(
        &file("hf://timm/seresnext50_32x4d.gluon_in1k"),
        &settings(dir.path(), true),
    )
    .expect_err("nothing cached");
    assert!(
        matches!(error, HubError::NotCachedOffline { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    let repo = cache::repo_dir(dir.path(), REPO);
    for part in [
        "hf://timm/seresnext50_32x4d.gluon_in1k is not in the Hugging Face cache",
        "HF_HUB_OFFLINE",
        &repo
            .join("snapshots/<commit>/model.safetensors")
            .display()
            .to_string(),
        &repo.join("refs/main").display().to_string(),
        "hf download timm/seresnext50_32x4d.gluon_in1k model.safetensors`",
        "weights = \"/path/to/model.safetensors\"",
    ] {
        assert!(message.contains(part), "lacks {part:?}: {message}");
    }

    let pinned = file(&format!("hf://timm/x@{COMMIT}/a/b.pth"));
    let message = resolve(&pinned, &settings(dir.path(), true))
        .expect_err("missing")
        .to_string();
    let exact = dir
        .path()
        .join("models--timm--x/snapshots")
        .join(COMMIT)
        .join("a/b.pth");
    assert!(message.contains(&exact.display().to_string()), "{message}");
    assert!(message.contains("/path/to/b.pth"), "{message}");
    assert!(
        message.contains(&format!("hf download timm/x a/b.pth --revision {COMMIT}`")),
        "{message}"
    );
}

#[test]
fn the_cache_dir_follows_huggingface_hub_precedence() {
    let all = HubEnv {
        hf_hub_cache: Some("/hub-cache".into()),
        huggingface_hub_cache: Some("/legacy-cache".into()),
        hf_home: Some("/hf-home".into()),
        xdg_cache_home: Some("/xdg".into()),
        home: Some("/home/u".into()),
        hf_hub_offline: None,
    };
    let cache_of = |env: &HubEnv| HubSettings::new(&HubConfig::default(), env).cache_dir;
    assert_eq!(cache_of(&all), PathBuf::from("/hub-cache"));
    let env = HubEnv {
        hf_hub_cache: None,
        ..all.clone()
    };
    assert_eq!(cache_of(&env), PathBuf::from("/legacy-cache"));
    let env = HubEnv {
        huggingface_hub_cache: None,
        ..env
    };
    assert_eq!(cache_of(&env), PathBuf::from("/hf-home/hub"));
    let env = HubEnv {
        hf_home: None,
        ..env
    };
    assert_eq!(cache_of(&env), PathBuf::from("/xdg/huggingface/hub"));
    let env = HubEnv {
        xdg_cache_home: None,
        ..env
    };
    assert_eq!(
        cache_of(&env),
        PathBuf::from("/home/u/.cache/huggingface/hub")
    );

    let configured = HubConfig {
        cache_dir: "/configured".into(),
        offline: false,
    };
    assert_eq!(
        HubSettings::new(&configured, &all).cache_dir,
        PathBuf::from("/configured")
    );
}

#[test]
fn hf_hub_offline_is_honoured_and_the_config_cannot_undo_it() {
    let offline_with = |value: Option<&str>, configured: bool| {
        let env = HubEnv {
            hf_hub_offline: value.map(str::to_owned),
            ..HubEnv::default()
        };
        let config = HubConfig {
            offline: configured,
            ..HubConfig::default()
        };
        HubSettings::new(&config, &env).offline
    };
    for truthy in ["1", "true", "TRUE", "yes", "On"] {
        assert!(offline_with(Some(truthy), false), "{truthy}");
    }
    for falsy in [None, Some(""), Some("0"), Some("false"), Some("no")] {
        assert!(!offline_with(falsy, false), "{falsy:?}");
    }
    assert!(offline_with(None, true));
    assert!(offline_with(Some("0"), true));
}

#[test]
fn progress_lines_show_bar_percent_and_sizes() {
    use std::time::Duration;
    let line = progress::render(
        "timm/x/model.safetensors",
        55_000_000,
        110_000_000,
        Duration::from_secs(5),
    );
    assert!(line.starts_with("timm/x/model.safetensors ["), "{line}");
    assert!(
        line.contains(&format!("{}{}", "#".repeat(15), ".".repeat(15))),
        "{line}"
    );
    assert!(line.contains(" 50% 55.0/110.0 MB 11.0 MB/s"), "{line}");
    let unknown = progress::render("f", 2_000_000, 0, Duration::ZERO);
    assert_eq!(unknown, "f 2.0 MB 0.0 MB/s");
    let done = progress::render("f", 10, 10, Duration::from_secs(1));
    assert!(
        done.contains(&"#".repeat(30)) && done.contains("100%"),
        "{done}"
    );
}
