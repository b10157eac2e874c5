//! Where `yunshu serve` finds the store key (issue 16 item 6): the file of
//! `--store-key-file`, or the key itself in `YUNSHU_STORE_KEY`. Either holds
//! 32 random bytes as 64 hex digits or as standard base64, e.g.
//! `head -c 32 /dev/urandom | base64`.

use std::path::{Path, PathBuf};

use yunshu_pki::envelope::EnvelopeError;
pub use yunshu_pki::envelope::MasterKey;

/// The environment variable holding the key itself.
pub const STORE_KEY_ENV: &str = "YUNSHU_STORE_KEY";

#[derive(Debug, thiserror::Error)]
pub enum StoreKeyError {
    #[error("give the store key once: --store-key-file or YUNSHU_STORE_KEY, not both")]
    Both,
    #[error("cannot read the store key file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the store key in {origin} is unusable")]
    Format {
        origin: String,
        #[source]
        source: EnvelopeError,
    },
}

/// The store key from `file` or from `env_value` (the value of
/// [`STORE_KEY_ENV`]); `None` when neither is given.
pub fn load(
    file: Option<&Path>,
    env_value: Option<&str>,
) -> Result<Option<MasterKey>, StoreKeyError> {
    // An empty variable is as good as none (`YUNSHU_STORE_KEY=` in a unit file).
    let env_value = env_value.filter(|v| !v.trim().is_empty());
    match (file, env_value) {
        (Some(_), Some(_)) => Err(StoreKeyError::Both),
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).map_err(|source| StoreKeyError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            MasterKey::parse(&text)
                .map(Some)
                .map_err(|source| StoreKeyError::Format {
                    origin: path.display().to_string(),
                    source,
                })
        }
        (None, Some(value)) => {
            MasterKey::parse(value)
                .map(Some)
                .map_err(|source| StoreKeyError::Format {
                    origin: STORE_KEY_ENV.to_owned(),
                    source,
                })
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_key_comes_from_a_file_or_the_environment_not_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("store-key");
        std::fs::write(&file, format!("{}\n", "0f".repeat(32))).expect("write");
        let from_file = load(Some(&file), None).expect("file").expect("a key");
        let from_env = load(None, Some("Dw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8="))
            .expect("env")
            .expect("a key");
        assert_eq!(from_file.id(), from_env.id());
        assert!(load(None, Some("")).expect("empty").is_none());
        assert!(matches!(
            load(Some(&file), Some(&"0f".repeat(32))),
            Err(StoreKeyError::Both)
        ));
        let err = load(None, Some("too short")).expect_err("bad");
        let chain = yunshu_domain::error::chain(&err);
        assert!(
            chain.contains("YUNSHU_STORE_KEY") && chain.contains("32 bytes"),
            "{chain}"
        );
        assert!(matches!(
            load(Some(&dir.path().join("missing")), None),
            Err(StoreKeyError::Read { .. })
        ));
    }
}
