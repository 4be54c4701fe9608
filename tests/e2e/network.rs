//! A network service end to end: `recipes/web-hello` (Debian's mini-httpd, its libraries resolved
//! from its package's dependencies, run as an unprivileged user; hardened, no console) booted
//! with `--keep-running` under the emulated launch; a page is fetched through its 127.0.0.1
//! forward, Ctrl-C (SIGINT to `boot`) stops it, and the run must say that the entry point got
//! SIGTERM and ended, that `Finished` arrived, and bring the appliance's lines in appliance.log
//! although the image has no console.

use crate::boot::BOOTS;
use crate::support::{Sandbox, free_port, ok};
use snpkit_bundle::{ImageDir, RunDir};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PAGE: &str = "hello from an snpkit appliance";

/// `GET /` over HTTP/1.0; the whole answer, or why not.
fn get(port: u16) -> Result<String, String> {
    let mut s =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(3))
            .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer)
}

#[test]
fn a_service_is_reached_through_its_forward_and_stopped_cleanly() {
    let sb = Sandbox::with_recipe("web-hello");
    let port = free_port();
    sb.edit_recipe(
        "web-hello",
        "\"tcp:8080:8080\"",
        &format!("\"tcp:{port}:8080\""),
    );
    ok(&mut sb.xtask(&["lock", "web-hello"]));
    ok(&mut sb.xtask(&["build", "web-hello"]));
    ok(&mut sb.xtask(&["measure", "web-hello"]));

    let _one = BOOTS.lock().unwrap_or_else(|e| e.into_inner());
    let mut boot = sb.xtask(&[
        "boot",
        "web-hello",
        "--launch",
        "emulated",
        "--keep-running",
        "--json",
    ]);
    let child = boot
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Whatever happens below, the boot does not outlive the test.
    struct Reap(Option<std::process::Child>);
    impl Drop for Reap {
        fn drop(&mut self) {
            if let Some(c) = self.0.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut reap = Reap(Some(child));

    let start = Instant::now();
    let answer = loop {
        match get(port) {
            Ok(a) if a.contains(PAGE) => break a,
            other => {
                assert!(
                    start.elapsed() < Duration::from_secs(150),
                    "no page through 127.0.0.1:{port} after 150 s; last try: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    };
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    // QEMU holds the forward's port on 127.0.0.1 (its argv names no other address: launch.rs).
    assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err());

    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let child = reap.0.take().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "boot after Ctrl-C: {:?}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("stopping the appliance"), "{stderr}");
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["stopped"], true, "{record}");
    // The guest's Finished: the entry script got the host's SIGTERM, stopped the server and ended
    // cleanly (recipes/web-hello/files/serve).
    assert_eq!(record["entry"], "exited with status 0", "{record}");

    // The appliance's lines arrived over the channel, though the image has no console.
    let runs = ImageDir::new(&sb.images(), "web-hello").runs();
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.file_name().unwrap().to_string_lossy().contains('.'))
        .expect("a finished run");
    let log = std::fs::read_to_string(RunDir::at(&run).appliance_log()).unwrap();
    // Its user is the recipe's, and the server saw the SIGTERM the script passed on (stdout and
    // stderr are two pipes, so only each one's own order is certain).
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"web-hello: serving /srv/www on port 8080 as web"),
        "{log}"
    );
    assert!(
        lines.contains(&"/usr/sbin/mini_httpd: exiting due to signal 15")
            && lines.contains(&"web-hello: stopped")
            && lines.len() == 3,
        "{log}"
    );
    assert_eq!(record["appliance_log"]["bytes"], log.len());
    assert!(stderr.contains("  | web-hello: stopped"), "{stderr}");
    let console = std::fs::read_to_string(RunDir::at(&run).console_log()).unwrap();
    assert!(
        !console.contains("web-hello:") && !console.contains("snpkit-init:"),
        "a hardened image's console stays silent:\n{console}"
    );
}
