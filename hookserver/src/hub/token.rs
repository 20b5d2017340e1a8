//! The Hugging Face token, found where `huggingface_hub` finds it: `HF_TOKEN` (or the older
//! `HUGGING_FACE_HUB_TOKEN`), else the token file that `hf auth login` writes
//! (`$HF_TOKEN_PATH`, else `$HF_HOME/token`, else `~/.cache/huggingface/token`).

#![cfg_attr(not(feature = "hub"), allow(dead_code))]

use std::fmt;
use std::path::PathBuf;

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
    let path = token_file(set)?;
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| Token::new(&text))
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
    fn the_token_is_never_shown() {
        let token = Token::new("hf_secret_value").unwrap();
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        assert_eq!(
            token.scrub("bad token hf_secret_value!"),
            "bad token <token>!"
        );
    }
}
