//! `feed-server DIR [--port N] [--delay-ms N]`: serves a feed directory over plain
//! HTTP on 127.0.0.1 with the test [`FeedServer`], prints its URL as the first line
//! of standard output, and runs until killed. For the benchmark script and demos;
//! TEST-ONLY, never expose it beyond loopback.

use airlock_tests::http::FeedServer;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: feed-server DIR [--port N] [--delay-ms N]";

fn usage(msg: &str) -> ExitCode {
    eprintln!("feed-server: {msg}\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut dir: Option<PathBuf> = None;
    let (mut port, mut delay_ms) = (0u16, 0u64);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" | "--delay-ms" => {
                let Some(v) = args.next() else {
                    return usage(&format!("{a} needs a value"));
                };
                let parsed = if a == "--port" {
                    v.parse().map(|p| port = p).is_ok()
                } else {
                    v.parse().map(|d| delay_ms = d).is_ok()
                };
                if !parsed {
                    return usage(&format!("{a} '{v}' is not a number in range"));
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if a.starts_with('-') => return usage(&format!("unknown option {a}")),
            _ if dir.is_some() => return usage("give one DIR"),
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let Some(dir) = dir else {
        return usage("missing DIR");
    };
    if !dir.is_dir() {
        return usage(&format!("{} is not a directory", dir.display()));
    }
    let server = match FeedServer::bind(&dir, port, None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("feed-server: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::from(1);
        }
    };
    server.set_delay(Duration::from_millis(delay_ms));
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{}", server.url())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::from(1);
    }
    drop(out);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
