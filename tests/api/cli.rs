//! The binary's configuration handling: one-line errors and redaction.

use std::process::Command;

fn roster(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_roster"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("roster runs")
}

#[test]
fn check_config_prints_effective_values_with_secrets_redacted() {
    let out = roster(
        &["check-config"],
        &[
            ("ROSTER_JWT_SECRET", "super-secret-key-super-secret-key-42"),
            (
                "DATABASE_URL",
                "postgres://roster:pg-password@db.internal/roster",
            ),
            ("ROSTER_ADMIN_EMAIL", "root@example.com"),
            ("ROSTER_ADMIN_PASSWORD", "admin-password-99"),
            ("ROSTER_BCRYPT_COST", "10"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    for secret in ["super-secret-key", "pg-password", "admin-password-99"] {
        assert!(!stdout.contains(secret), "{secret} leaked:\n{stdout}");
    }
    assert!(stdout.contains("ROSTER_BCRYPT_COST = 10"), "{stdout}");
    assert!(
        stdout.contains("postgres://roster:[redacted]@db.internal/roster"),
        "{stdout}"
    );
    assert!(stdout.contains("root@example.com"), "{stdout}");
}

#[test]
fn flags_override_the_environment() {
    let out = roster(
        &["check-config", "--bind", "0.0.0.0:9999"],
        &[
            ("ROSTER_BIND", "127.0.0.1:1"),
            ("ROSTER_PUBLIC_URL", "https://id.example.com"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("ROSTER_BIND = 0.0.0.0:9999")
    );
}

#[test]
fn each_bad_value_stops_start_up_with_one_line_naming_it() {
    let cases = [
        ("DATABASE_URL", "mysql://localhost/x"),
        ("ROSTER_JWT_SECRET", "too-short"),
        ("ROSTER_BCRYPT_COST", "40"),
        ("ROSTER_JWT_PRIVATE_KEY_FILE", "/nonexistent/key.pem"),
        ("ROSTER_BIND", "not-an-address"),
    ];
    for (setting, value) in cases {
        // The contract asks check-config for 1; bad configuration elsewhere is 2.
        for (command, code) in [("check-config", 1), ("serve", 2), ("migrate", 2)] {
            let out = roster(&[command], &[(setting, value)]);
            assert_eq!(
                out.status.code(),
                Some(code),
                "{command} with bad {setting}"
            );
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(stderr.lines().count(), 1, "{setting}: {stderr}");
            assert!(stderr.contains(setting), "{setting}: {stderr}");
        }
    }
}

#[test]
fn migrate_status_lists_pending_then_applied() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let env = [("DATABASE_URL", url.as_str())];
    let status = roster(&["migrate", "--status"], &env);
    assert!(status.status.success(), "{status:?}");
    let text = String::from_utf8(status.stdout).unwrap();
    assert!(
        text.lines().count() >= 2 && text.lines().all(|l| l.starts_with("pending")),
        "{text}"
    );

    let applied = roster(&["migrate"], &env);
    assert!(applied.status.success(), "{applied:?}");
    let text = String::from_utf8(applied.stdout).unwrap();
    assert!(text.lines().all(|l| l.starts_with("applied")), "{text}");
}

fn roster_with_stdin(args: &[&str], env: &[(&str, &str)], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_roster"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn create_admin_exit_codes_and_no_password_in_output() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let env = [("DATABASE_URL", url.as_str()), ("ROSTER_BCRYPT_COST", "4")];
    let password = "a fine admin password";
    let args = ["create-admin", "--email", "Root@X.io", "--password-stdin"];

    let created = roster_with_stdin(&args, &env, &format!("{password}\n"));
    assert_eq!(created.status.code(), Some(0), "{created:?}");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&created.stdout),
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(
        out.contains("root@x.io") && !out.contains(password),
        "{out}"
    );

    let taken = roster_with_stdin(&args, &env, &format!("{password}\n"));
    assert_eq!(taken.status.code(), Some(1), "{taken:?}");

    let mut env_password = env.to_vec();
    env_password.push(("ROSTER_ADMIN_PASSWORD", password));
    let from_env = roster(&["create-admin", "--email", "second@x.io"], &env_password);
    assert_eq!(from_env.status.code(), Some(0), "{from_env:?}");

    let weak = roster_with_stdin(
        &["create-admin", "--email", "third@x.io", "--password-stdin"],
        &env,
        "password\n",
    );
    // Bad input is a usage error: 2.
    assert_eq!(weak.status.code(), Some(2), "{weak:?}");
    let missing = roster(&["create-admin", "--email", "fourth@x.io"], &env);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
}

#[test]
fn exit_codes_distinguish_usage_configuration_and_runtime_failures() {
    let ok = roster(&["check-config"], &[]);
    assert_eq!(ok.status.code(), Some(0));
    let usage = roster(&["no-such-command"], &[]);
    assert_eq!(usage.status.code(), Some(2), "unknown subcommand");
    let usage = roster(&["serve", "--no-such-flag"], &[]);
    assert_eq!(usage.status.code(), Some(2), "unknown flag");
    // A runtime failure: the address is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    let runtime = roster(
        &["serve"],
        &[
            ("ROSTER_BIND", addr.as_str()),
            ("DATABASE_URL", url.as_str()),
        ],
    );
    assert_eq!(runtime.status.code(), Some(1), "{runtime:?}");
    // Another runtime failure: the database cannot be opened.
    let unopenable = roster(
        &["migrate"],
        &[("DATABASE_URL", "sqlite:///nonexistent/dir/x.db?mode=rwc")],
    );
    assert_eq!(unopenable.status.code(), Some(1), "{unopenable:?}");
}

#[test]
fn version_names_the_compiled_in_backends() {
    let out = roster(&["--version"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("roster {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("backends: sqlite, postgres"), "{text}");
}

#[test]
fn completions_for_each_shell_mention_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let out = roster(&["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.is_empty(), "{shell}");
        for command in [
            "serve",
            "migrate",
            "check-config",
            "create-admin",
            "completions",
            "man",
        ] {
            assert!(text.contains(command), "{shell} completions lack {command}");
        }
    }
    // Completions need no valid configuration.
    let out = roster(&["completions", "bash"], &[("ROSTER_BCRYPT_COST", "99")]);
    assert!(out.status.success());
}

#[test]
fn a_man_page_can_be_generated() {
    let out = roster(&["man"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(".TH roster 1") && text.contains("DATABASE_URL"),
        "{}",
        &text[..200.min(text.len())]
    );
}

#[test]
fn audit_prints_recent_events_as_json_lines_with_the_api_filters() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let env = [("DATABASE_URL", url.as_str()), ("ROSTER_BCRYPT_COST", "4")];
    for email in ["one@x.io", "two@x.io"] {
        let created = roster_with_stdin(
            &["create-admin", "--email", email, "--password-stdin"],
            &env,
            "a fine admin password\n",
        );
        assert_eq!(created.status.code(), Some(0), "{created:?}");
    }

    let out = roster(&["audit", "--event", "user.created"], &env);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|e| e["event"] == "user.created"
        && e["actor_id"].is_null()
        && e["details"]["by"] == "operator"));
    assert!(
        lines[0]["at"].as_str() >= lines[1]["at"].as_str(),
        "newest first"
    );

    let newest = roster(&["audit", "--limit", "1"], &env);
    assert_eq!(String::from_utf8(newest.stdout).unwrap().lines().count(), 1);
    let subject = lines[1]["subject_id"].as_str().unwrap();
    let of_user = roster(&["audit", "--user", subject], &env);
    let text = String::from_utf8(of_user.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains(subject));
    let none = roster(&["audit", "--after", "2999-01-01T00:00:00Z"], &env);
    assert_eq!(none.status.code(), Some(0));
    assert!(none.stdout.is_empty());

    for bad in [
        &["audit", "--event", "user.exploded"][..],
        &["audit", "--user", "nobody"],
        &["audit", "--before", "yesterday"],
        &["audit", "--limit", "0"],
    ] {
        let out = roster(bad, &env);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
    }
}
