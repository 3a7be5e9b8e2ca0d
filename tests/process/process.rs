//! The real `roster` binary as a child process, with its stdout collected.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tempfile::TempDir;

/// A running `roster serve`.
pub struct Process {
    child: Child,
    /// Base URL.
    pub address: String,
    lines: Arc<Mutex<Vec<String>>>,
    /// Its SQLite database.
    pub database_url: String,
    dir: TempDir,
}

impl Process {
    /// Starts the binary on a fresh SQLite database with `env` added.
    pub fn start(env: &[(&str, &str)]) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), env)
    }

    /// Starts the binary on the SQLite database `roster.db` in `dir` (made
    /// when missing) with `env` added.
    pub fn start_in(dir: TempDir, env: &[(&str, &str)]) -> Self {
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("roster.db").display()
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &url)
            .env("ROSTER_BIND", "127.0.0.1:0")
            .env("ROSTER_BCRYPT_COST", "4")
            .env("ROSTER_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            let found = lines.lock().unwrap().iter().find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                (v["message"] == "roster is serving")
                    .then(|| v["port"].as_u64())
                    .flatten()
            });
            if let Some(port) = found {
                break port;
            }
            assert!(
                Instant::now() < deadline,
                "server did not start: {:?}",
                lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            lines,
            database_url: url,
            dir,
        }
    }

    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// SIGTERM, then waits for exit; returns the exit code and every output
    /// line. The database stays until `self` is dropped.
    pub fn stop(&mut self) -> (Option<i32>, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap().code();
        std::thread::sleep(Duration::from_millis(100));
        let lines = self.lines.lock().unwrap().clone();
        (code, lines)
    }
}

impl Process {
    /// SIGKILL: no shutdown of any kind. Returns the database's directory.
    pub fn kill(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    /// Every output line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
