//! Downloads against a small HTTP server on 127.0.0.1 started by each test.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use handgrad_data::mnist::{fetch_with, sha256_of_file, FetchConfig, RemoteFile};
use handgrad_data::testing::file_names;
use handgrad_data::DataError;
use sha2::{Digest, Sha256};

/// Starts a server that serves `GET /<name>` from a fixed map, 404 otherwise, one request per
/// connection. Returns the base URL and a counter of requests served.
fn serve(files: HashMap<String, Vec<u8>>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            respond(stream, &files);
        }
    });
    (base, requests)
}

fn respond(mut stream: TcpStream, files: &HashMap<String, Vec<u8>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut header = String::new();
    while reader.read_line(&mut header).unwrap() > 2 {
        header.clear();
    }
    let name = request_line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/');
    let (status, body) = match files.get(name) {
        Some(body) => ("200 OK", body.as_slice()),
        None => ("404 Not Found", &b"not found"[..]),
    };
    let head =
        format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn remote(name: &str, bytes: &[u8]) -> RemoteFile {
    RemoteFile { name: name.into(), sha256: sha256_hex(bytes), size: Some(bytes.len() as u64) }
}

fn config(mirrors: Vec<String>, files: Vec<RemoteFile>) -> FetchConfig {
    FetchConfig {
        mirrors,
        files,
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(20),
    }
}

#[test]
fn downloads_and_verifies_files() {
    let first = vec![7u8; 100_000];
    let second = b"second file".to_vec();
    let files =
        HashMap::from([("a.gz".to_string(), first.clone()), ("b.gz".to_string(), second.clone())]);
    let (base, _) = serve(files);
    let cache = tempfile::tempdir().unwrap();
    let config = config(vec![base], vec![remote("a.gz", &first), remote("b.gz", &second)]);

    let mut reports = Vec::new();
    let dir =
        fetch_with(cache.path(), &config, &mut |done, total| reports.push((done, total))).unwrap();

    assert_eq!(dir, cache.path());
    assert_eq!(std::fs::read(cache.path().join("a.gz")).unwrap(), first);
    assert_eq!(std::fs::read(cache.path().join("b.gz")).unwrap(), second);
    let total = (first.len() + second.len()) as u64;
    assert_eq!(reports.last(), Some(&(total, Some(total))));
    assert!(reports.windows(2).all(|pair| pair[0].0 <= pair[1].0));
    assert_eq!(file_names(cache.path()), vec!["a.gz".to_string(), "b.gz".to_string()]);
}

#[test]
fn cached_file_is_not_downloaded_again() {
    let bytes = b"cached".to_vec();
    let (base, requests) = serve(HashMap::from([("c.gz".to_string(), bytes.clone())]));
    let cache = tempfile::tempdir().unwrap();
    let config = config(vec![base], vec![remote("c.gz", &bytes)]);

    fetch_with(cache.path(), &config, &mut |_, _| {}).unwrap();
    fetch_with(cache.path(), &config, &mut |_, _| {}).unwrap();

    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[test]
fn checksum_mismatch_leaves_no_file() {
    let good = b"the real bytes".to_vec();
    let (base, _) = serve(HashMap::from([("d.gz".to_string(), b"tampered bytes".to_vec())]));
    let cache = tempfile::tempdir().unwrap();
    let config = config(vec![base.clone()], vec![remote("d.gz", &good)]);

    let error = fetch_with(cache.path(), &config, &mut |_, _| {}).unwrap_err();

    let DataError::Checksum { url, expected, found } = &error else {
        panic!("expected a checksum error, got {error:?}");
    };
    assert_eq!(url, &format!("{base}d.gz"));
    assert_eq!(expected, &sha256_hex(&good));
    assert_eq!(found, &sha256_hex(b"tampered bytes"));
    assert!(file_names(cache.path()).is_empty(), "{:?}", file_names(cache.path()));
}

#[test]
fn falls_back_to_next_mirror() {
    let good = b"good copy".to_vec();
    let (bad_mirror, _) = serve(HashMap::from([("e.gz".to_string(), b"bad copy".to_vec())]));
    let (missing_mirror, _) = serve(HashMap::new());
    let (good_mirror, _) = serve(HashMap::from([("e.gz".to_string(), good.clone())]));
    let cache = tempfile::tempdir().unwrap();
    let config = config(vec![bad_mirror, missing_mirror, good_mirror], vec![remote("e.gz", &good)]);

    fetch_with(cache.path(), &config, &mut |_, _| {}).unwrap();

    assert_eq!(std::fs::read(cache.path().join("e.gz")).unwrap(), good);
}

#[test]
fn wrong_cached_file_is_replaced() {
    let good = b"fresh".to_vec();
    let (base, requests) = serve(HashMap::from([("f.gz".to_string(), good.clone())]));
    let cache = tempfile::tempdir().unwrap();
    std::fs::write(cache.path().join("f.gz"), b"stale").unwrap();
    let config = config(vec![base], vec![remote("f.gz", &good)]);

    fetch_with(cache.path(), &config, &mut |_, _| {}).unwrap();

    assert_eq!(requests.load(Ordering::SeqCst), 1);
    assert_eq!(sha256_of_file(&cache.path().join("f.gz")).unwrap(), sha256_hex(&good));
}

#[test]
fn http_error_status_is_network_error() {
    let (base, _) = serve(HashMap::new());
    let cache = tempfile::tempdir().unwrap();
    let config = config(vec![base], vec![remote("g.gz", b"x")]);

    let error = fetch_with(cache.path(), &config, &mut |_, _| {}).unwrap_err();

    assert!(matches!(error, DataError::Network { .. }), "{error:?}");
    assert!(error.to_string().contains("g.gz"), "{error}");
}

#[test]
fn closed_port_is_network_error() {
    // Bind and drop a listener so the port is known to refuse connections.
    let address = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let config = config(vec![format!("http://{address}/")], vec![remote("h.gz", b"x")]);

    let error = fetch_with(cache.path(), &config, &mut |_, _| {}).unwrap_err();

    assert!(matches!(error, DataError::Network { .. }), "{error:?}");
    assert!(file_names(cache.path()).is_empty());
}
