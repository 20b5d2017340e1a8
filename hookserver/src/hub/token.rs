//! The Hugging Face token, found where `huggingface_hub` finds it: `HF_TOKEN` (or the older
//! `HUGGING_FACE_HUB_TOKEN`), else the token file that `hf auth login` writes
//! (`$HF_TOKEN_PATH`, else `$HF_HOME/token`, else `~/.cache/huggingface/token`).

#![cfg_attr(not(feature = "hub"), allow(dead_code))]

use std::fmt;
use std::path::{Path, PathBuf};

/// A token: sent in the `Authorization` header and nowhere else; never printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Token(String);

impl Token {
    /// A token from its text, trimmed; `None` when empty.
    pub(crate) fn new(text: &str) -> Option<Token> {
        let text = text.trim();
        (!text.is_empty()).then(|| Token(text.to_owned()))
    }

    /// The token itself, for the `Authorization` header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every copy of the token replaced, for a message that quotes the Hub.
    pub(crate) fn scrub(&self, text: &str) -> String {
        text.replace(&self.0, "<token>")
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The token file `huggingface_hub` reads, from the environment.
fn token_file(set: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(path) = set("HF_TOKEN_PATH") {
        return Some(PathBuf::from(path));
    }
    let home = match set("HF_HOME") {
        Some(home) => PathBuf::from(home),
        None => match set("XDG_CACHE_HOME") {
            Some(cache) => PathBuf::from(cache).join("huggingface"),
            None => PathBuf::from(set("HOME")?)
                .join(".cache")
                .join("huggingface"),
        },
    };
    Some(home.join("token"))
}

/// The token from the environment or the token file; `None` when there is none.
pub(crate) fn find(set: &impl Fn(&str) -> Option<String>) -> Option<Token> {
    if let Some(token) = set("HF_TOKEN")
        .or_else(|| set("HUGGING_FACE_HUB_TOKEN"))
        .and_then(|text| Token::new(&text))
    {
        return Some(token);
    }
    read_token_file(&token_file(set)?)
}

/// The most a token file may hold: a token is a few dozen characters.
const TOKEN_FILE_LIMIT: u64 = 4096;

/// The token in `path`, if it is a regular file of at most [`TOKEN_FILE_LIMIT`] bytes of
/// UTF-8. Anything else (a device, a pipe, a folder, a huge file) is no token: reading it
/// could block or never end, and the launch waits for this.
fn read_token_file(path: &Path) -> Option<Token> {
    use std::io::Read;
    if !std::fs::metadata(path).ok()?.is_file() {
        tracing::warn!(path = %path.display(), "the token file is not a regular file: ignored");
        return None;
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(TOKEN_FILE_LIMIT + 1)
        .read_to_string(&mut text)
        .ok()?;
    if text.len() as u64 > TOKEN_FILE_LIMIT {
        tracing::warn!(path = %path.display(), limit = TOKEN_FILE_LIMIT, "the token file is larger than a token: ignored");
        return None;
    }
    Token::new(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn find_in(vars: &[(&str, &str)]) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        find(&|name: &str| vars.get(name).cloned()).map(|t| t.expose().to_owned())
    }

    #[test]
    fn the_environment_comes_first_then_the_file() {
        let dir = std::env::temp_dir().join(format!("hookserver-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "hf_from_file\n").unwrap();
        let path = file.to_str().unwrap();
        assert_eq!(
            find_in(&[("HF_TOKEN", " hf_env "), ("HF_TOKEN_PATH", path)]).as_deref(),
            Some("hf_env")
        );
        assert_eq!(
            find_in(&[("HUGGING_FACE_HUB_TOKEN", "hf_old")]).as_deref(),
            Some("hf_old")
        );
        assert_eq!(
            find_in(&[("HF_TOKEN_PATH", path)]).as_deref(),
            Some("hf_from_file")
        );
        assert_eq!(
            find_in(&[("HF_HOME", dir.to_str().unwrap())]).as_deref(),
            Some("hf_from_file")
        );
        let cache = dir.join("cache");
        std::fs::create_dir_all(cache.join("huggingface")).unwrap();
        std::fs::write(cache.join("huggingface").join("token"), "hf_xdg").unwrap();
        assert_eq!(
            find_in(&[("XDG_CACHE_HOME", cache.to_str().unwrap())]).as_deref(),
            Some("hf_xdg")
        );
        // An empty variable or file is no token.
        std::fs::write(&file, "\n").unwrap();
        assert_eq!(find_in(&[("HF_TOKEN", ""), ("HF_TOKEN_PATH", path)]), None);
        assert_eq!(find_in(&[("HF_TOKEN_PATH", "/nonexistent/token")]), None);
        assert_eq!(find_in(&[]), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_token_file_that_is_no_token_file_is_ignored_without_blocking() {
        let dir = std::env::temp_dir().join(format!("hookserver-token-odd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A device that never ends, a folder: no token, at once.
        assert_eq!(find_in(&[("HF_TOKEN_PATH", "/dev/zero")]), None);
        assert_eq!(find_in(&[("HF_TOKEN_PATH", dir.to_str().unwrap())]), None);
        // A named pipe nobody writes to (opening it would wait for a writer).
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|status| status.success()) {
            assert_eq!(find_in(&[("HF_TOKEN_PATH", fifo.to_str().unwrap())]), None);
        }
        // A file far larger than a token: no token.
        let big = dir.join("big");
        std::fs::write(&big, "x".repeat(10_000)).unwrap();
        assert_eq!(find_in(&[("HF_TOKEN_PATH", big.to_str().unwrap())]), None);
        // A file that is not text: no token.
        let binary = dir.join("binary");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        assert_eq!(
            find_in(&[("HF_TOKEN_PATH", binary.to_str().unwrap())]),
            None
        );
        // A token with the limit's worth of trailing blank lines is still read.
        let padded = dir.join("padded");
        let text = format!("hf_padded{}", "\n".repeat(4096 - 9));
        std::fs::write(&padded, text).unwrap();
        assert_eq!(
            find_in(&[("HF_TOKEN_PATH", padded.to_str().unwrap())]).as_deref(),
            Some("hf_padded")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_token_is_never_shown() {
        let token = Token::new("hf_secret_value").unwrap();
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        assert_eq!(
            token.scrub("bad token hf_secret_value!"),
            "bad token <token>!"
        );
    }
}
