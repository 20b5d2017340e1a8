//! A public tunnel for local debugging: `.share(true)` or `HOOKSERVER_SHARE=1`.
//!
//! The tunnel is [bore](https://github.com/ekzhang/bore) (`bore-cli`, used as a library):
//! the server asks a bore server for a public port and forwards each connection made to
//! it to the local listener. The public bore server is the default; a team can run its
//! own (`bore server`) and point `HOOKSERVER_SHARE_SERVER` at it, with its secret in
//! `HOOKSERVER_SHARE_SECRET`. A tunnel is plain TCP: the public URLs are `http://`.

use std::fmt;

use crate::error::{Error, Result};

/// The public bore server, used when no other is chosen.
pub const DEFAULT_SHARE_SERVER: &str = "bore.pub";
/// The port of a bore server's control connection; `bore-cli` has no setting for another.
pub const BORE_CONTROL_PORT: u16 = 7835;

/// Where and how to open the tunnel.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Share {
    /// The bore server's host name or IP address (no port, no brackets).
    pub(crate) server: String,
    /// The bore server's secret, if it requires one.
    pub(crate) secret: Option<String>,
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share")
            .field("server", &self.server)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Reads an on/off setting: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`.
pub(crate) fn parse_switch(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(Error::Config(format!(
            "{name} must be 1 or 0 (true/false, yes/no, on/off), not {value:?}"
        ))),
    }
}

/// Reads `host[:port]` (an IPv6 address in brackets when a port follows). The port, if
/// any, must be bore's control port: `bore-cli` connects to no other.
pub(crate) fn parse_server(value: &str) -> Result<String> {
    let value = value.trim();
    let bad = |reason: &str| {
        Error::Config(format!(
            "HOOKSERVER_SHARE_SERVER must be host[:port], not {value:?}: {reason}"
        ))
    };
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("a '[' without its ']'"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(bad("only :port may follow ']'")),
            },
        }
    } else {
        match value.split_once(':') {
            // One colon: host:port. More: an IPv6 address without a port.
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            _ => (value, None),
        }
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    if host.contains(['/', ' ', '@', '?', '#']) {
        return Err(bad("a host name, not a URL"));
    }
    if let Some(port) = port {
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
        if port != BORE_CONTROL_PORT {
            return Err(bad(&format!(
                "a bore server takes tunnels on port {BORE_CONTROL_PORT} only (bore-cli has no setting for another)"
            )));
        }
    }
    Ok(host.to_owned())
}

/// `http://HOST:PORT`, with brackets around an IPv6 address.
#[cfg_attr(not(feature = "share"), allow(dead_code))]
pub(crate) fn public_base(server: &str, port: u16) -> String {
    if server.contains(':') {
        format!("http://[{server}]:{port}")
    } else {
        format!("http://{server}:{port}")
    }
}

/// An open tunnel: the public URL, and the task that forwards connections.
#[cfg(feature = "share")]
pub(crate) async fn open(share: &Share, local_host: &str, local_port: u16) -> Result<String> {
    let client = bore_cli::client::Client::new(
        local_host,
        local_port,
        &share.server,
        0,
        share.secret.as_deref(),
    )
    .await
    .map_err(|err| Error::Share {
        server: format!("{}:{BORE_CONTROL_PORT}", share.server),
        reason: format!("{err:#}"),
    })?;
    let url = public_base(&share.server, client.remote_port());
    let server = share.server.clone();
    actix_web::rt::spawn(async move {
        match client.listen().await {
            Ok(()) => {
                tracing::error!(%server, "the tunnel server closed the tunnel; deliveries through it stop")
            }
            Err(err) => {
                tracing::error!(%server, error = %format!("{err:#}"), "the tunnel failed; deliveries through it stop")
            }
        }
    });
    Ok(url)
}

/// Without the `share` feature, asking for a tunnel is an error.
#[cfg(not(feature = "share"))]
pub(crate) async fn open(share: &Share, _local_host: &str, _local_port: u16) -> Result<String> {
    Err(Error::Share {
        server: format!("{}:{BORE_CONTROL_PORT}", share.server),
        reason: "hookserver was built without its `share` feature".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        assert_eq!(parse_server("bore.pub").unwrap(), "bore.pub");
        assert_eq!(parse_server(" bore.pub:7835 ").unwrap(), "bore.pub");
        assert_eq!(parse_server("127.0.0.1:7835").unwrap(), "127.0.0.1");
        assert_eq!(parse_server("::1").unwrap(), "::1");
        assert_eq!(parse_server("[::1]").unwrap(), "::1");
        assert_eq!(parse_server("[::1]:7835").unwrap(), "::1");
        for bad in [
            "",
            ":7835",
            "bore.pub:80",
            "bore.pub:x",
            "[::1",
            "[::1]x",
            "http://bore.pub",
            "a b",
        ] {
            let err = parse_server(bad).unwrap_err().to_string();
            assert!(err.contains("HOOKSERVER_SHARE_SERVER"), "{bad:?}: {err}");
        }
        assert!(parse_server("bore.pub:80")
            .unwrap_err()
            .to_string()
            .contains("port 7835 only"));
    }

    #[test]
    fn switches() {
        for on in ["1", "true", "YES", " on "] {
            assert!(parse_switch("X", on).unwrap());
        }
        for off in ["0", "false", "No", "off", ""] {
            assert!(!parse_switch("X", off).unwrap());
        }
        assert!(parse_switch("HOOKSERVER_SHARE", "maybe")
            .unwrap_err()
            .to_string()
            .contains("HOOKSERVER_SHARE must be 1 or 0"));
    }

    #[test]
    fn urls() {
        assert_eq!(public_base("bore.pub", 4321), "http://bore.pub:4321");
        assert_eq!(public_base("::1", 4321), "http://[::1]:4321");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let share = Share {
            server: "tunnel.example".to_owned(),
            secret: Some("hunter2".to_owned()),
        };
        assert!(!format!("{share:?}").contains("hunter2"));
    }
}
