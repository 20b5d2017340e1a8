//! A queued delivery's request as stored: method, path and query, headers and peer, then
//! the body, in one blob. The secret and other credentials are never stored.
//!
//! The blob is written once, on the way in ([`StoredRequest::of`]); the file keeps it as it
//! is, an attempt reads its body as a slice of it, and its head is decoded only when a
//! handler asks for the request.

use std::net::SocketAddr;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::web::Bytes;

use crate::access::secret::{is_credential, without_secret};

/// The request of a delivery, without its credentials.
#[derive(Debug, Clone)]
pub(crate) struct RequestHead {
    pub(crate) method: Method,
    /// The path and, when there is one, `?` and the query (without the secret).
    pub(crate) uri: String,
    pub(crate) headers: HeaderMap,
    pub(crate) peer: Option<SocketAddr>,
}

/// A delivery's request as stored: the blob, and where its body starts in it.
#[derive(Debug, Clone)]
pub(crate) struct StoredRequest {
    blob: Bytes,
    body_start: usize,
}

impl StoredRequest {
    /// What is kept of a live request and its body, in the blob's form.
    pub(crate) fn of(req: &actix_web::HttpRequest, body: &[u8]) -> Self {
        let query = without_secret(req.query_string());
        let mut blob = Vec::with_capacity(512 + body.len());
        blob.extend_from_slice(req.method().as_str().as_bytes());
        blob.push(b' ');
        blob.extend_from_slice(req.path().as_bytes());
        if !query.is_empty() {
            blob.push(b'?');
            blob.extend_from_slice(query.as_bytes());
        }
        blob.push(b' ');
        match req.peer_addr() {
            Some(peer) => write_peer(&mut blob, peer),
            None => blob.push(b'-'),
        }
        blob.push(b'\n');
        for (name, value) in req.headers() {
            if !is_credential(name.as_str()) {
                header_line(&mut blob, name, value);
            }
        }
        blob.push(b'\n');
        let body_start = blob.len();
        blob.extend_from_slice(body);
        StoredRequest {
            blob: Bytes::from(blob),
            body_start,
        }
    }

    /// A blob read back from storage, checked whole (a damaged one is an error, never a
    /// request half read).
    pub(crate) fn from_blob(blob: Bytes) -> Result<Self, String> {
        let (_, body) = RequestHead::decode(&blob)?;
        let body_start = blob.len() - body.len();
        Ok(StoredRequest { blob, body_start })
    }

    /// The blob, as stored.
    pub(crate) fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// The body (a slice of the blob: no copy).
    pub(crate) fn body(&self) -> Bytes {
        self.blob.slice(self.body_start..)
    }

    /// The head, decoded.
    pub(crate) fn head(&self) -> RequestHead {
        RequestHead::decode(&self.blob[..self.body_start])
            .map(|(head, _)| head)
            .expect("a stored request is whole: written here, or checked when read back")
    }

    /// How many bytes it holds.
    pub(crate) fn len(&self) -> usize {
        self.blob.len()
    }
}

/// `peer` as `Display` writes it (an IPv4 one without `fmt`: the common case, and the
/// slow part of writing a blob).
fn write_peer(out: &mut Vec<u8>, peer: SocketAddr) {
    match peer {
        SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(itoa::Buffer::new().format(octet).as_bytes());
            }
            out.push(b':');
            out.extend_from_slice(itoa::Buffer::new().format(v4.port()).as_bytes());
        }
        SocketAddr::V6(_) => out.extend_from_slice(peer.to_string().as_bytes()),
    }
}

/// `name: value\n`.
fn header_line(out: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

impl RequestHead {
    /// An actix-web request with this head, for the handler's parameters.
    pub(crate) fn to_request(&self) -> actix_web::HttpRequest {
        let mut request = actix_web::test::TestRequest::default()
            .method(self.method.clone())
            .uri(&self.uri);
        for (name, value) in &self.headers {
            request = request.append_header((name.clone(), value.clone()));
        }
        if let Some(peer) = self.peer {
            request = request.peer_addr(peer);
        }
        request.to_http_request()
    }

    /// The head and the body of a blob, or why it is not one.
    pub(crate) fn decode(blob: &[u8]) -> Result<(Self, &[u8]), String> {
        let bad = |what: &str| format!("a stored request is damaged ({what})");
        let mut lines = blob.split_inclusive(|&b| b == b'\n');
        let mut used = 0;
        let first = lines.next().ok_or_else(|| bad("empty"))?;
        used += first.len();
        let first = std::str::from_utf8(first).map_err(|_| bad("first line"))?;
        let mut parts = first.trim_end_matches('\n').split(' ');
        let (Some(method), Some(uri), Some(peer), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("first line"));
        };
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| bad("method"))?;
        let peer = match peer {
            "-" => None,
            peer => Some(peer.parse().map_err(|_| bad("peer"))?),
        };
        let mut headers = HeaderMap::new();
        loop {
            let line = lines.next().ok_or_else(|| bad("no end of headers"))?;
            used += line.len();
            let line = &line[..line.len() - 1];
            if line.is_empty() {
                break;
            }
            let colon = line
                .windows(2)
                .position(|w| w == b": ")
                .ok_or_else(|| bad("header"))?;
            let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| bad("header name"))?;
            let value =
                HeaderValue::from_bytes(&line[colon + 2..]).map_err(|_| bad("header value"))?;
            headers.append(name, value);
        }
        let head = RequestHead {
            method,
            uri: uri.to_owned(),
            headers,
            peer,
        };
        Ok((head, &blob[used..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_survives_the_blob_without_its_secret() {
        let req = actix_web::test::TestRequest::post()
            .uri("/webhooks/x?secret=s3&tag=a%20b")
            .insert_header(("x-webhook-secret", "s3"))
            .insert_header(("authorization", "Bearer t"))
            .insert_header(("webhook-id", "abc"))
            .append_header(("x-many", "1"))
            .append_header(("x-many", "2"))
            .insert_header((
                "x-odd",
                HeaderValue::from_bytes(b"caf\xc3\xa9: \t").unwrap(),
            ))
            .peer_addr("127.0.0.1:4000".parse().unwrap())
            .to_http_request();
        let body = b"{\"a\":\n\n1}\n".as_slice();
        let stored = StoredRequest::of(&req, body);
        let (back, rest) = RequestHead::decode(stored.blob()).unwrap();
        let pairs = |headers: &HeaderMap| -> Vec<(String, Vec<u8>)> {
            let mut all: Vec<_> = headers
                .iter()
                .filter(|(n, _)| !is_credential(n.as_str()))
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect();
            all.sort();
            all
        };
        let peer = req.peer_addr();
        assert_eq!((&back.method, back.peer), (req.method(), peer));
        assert_eq!(pairs(&back.headers), pairs(req.headers()));
        assert_eq!(rest, body);
        // Read back from storage: the same head, the body a slice of the blob.
        let again = StoredRequest::from_blob(stored.blob.clone()).unwrap();
        let live = again.head();
        assert_eq!(
            (&live.method, &live.uri, live.peer),
            (&back.method, &back.uri, back.peer)
        );
        assert_eq!(pairs(&live.headers), pairs(&back.headers));
        assert_eq!((&stored.body()[..], &again.body()[..]), (body, body));
        // The query is re-encoded without the secret (same values).
        assert_eq!(back.uri, "/webhooks/x?tag=a+b");
        assert!(back.headers.get("x-webhook-secret").is_none());
        assert!(back.headers.get("authorization").is_none());
        assert_eq!(back.headers.get_all("x-many").count(), 2);
        let request = back.to_request();
        assert_eq!(request.path(), "/webhooks/x");
        assert_eq!(request.query_string(), "tag=a+b");
        assert_eq!(request.peer_addr(), peer);
        assert_eq!(request.headers().get("webhook-id").unwrap(), "abc");
    }

    #[test]
    fn a_peer_is_written_as_display_writes_it() {
        for peer in [
            "127.0.0.1:4000",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "[::1]:80",
            "[fe80::1%2]:8080",
        ] {
            let peer: SocketAddr = peer.parse().unwrap();
            let mut out = Vec::new();
            write_peer(&mut out, peer);
            assert_eq!(String::from_utf8(out).unwrap(), peer.to_string());
        }
    }

    #[test]
    fn damaged_blobs_are_errors() {
        for blob in [
            &b""[..],
            b"POST",
            b"POST /x - extra\n\n",
            b"POST /x -\nno-colon\n\n",
            b"POST /x -\na: b\n",
        ] {
            assert!(RequestHead::decode(blob).is_err(), "{blob:?}");
            assert!(StoredRequest::from_blob(Bytes::copy_from_slice(blob)).is_err());
        }
        assert!(RequestHead::decode(b"POST /x -\n\n").is_ok());
    }
}
