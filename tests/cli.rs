//! The `smtp-fault` command line: listing, checking, serving and its help, run as a user would.

mod common;

use std::path::Path;

use common::*;
use smtp_fault::scenario::{self, DocumentedError};

/// The head every scenario file needs, so a test can add just the part it is about.
const HEAD: &str = "name = \"test\"\nsummary = \"s\"\n\n[reproduces]\nerror = \"other\"\n\
                    sender_log = \"l\"\n";

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write scenario file");
    path.display().to_string()
}

#[tokio::test]
async fn scenarios_lists_every_built_in_with_the_error_it_reproduces() {
    let output = run_binary(&["scenarios"]).await;

    assert!(output.status.success(), "{}", text(&output.stderr));
    let listing = text(&output.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    let names = scenario::builtin_names();
    assert_eq!(lines.len(), names.len(), "{listing}");
    for (line, name) in lines.iter().zip(&names) {
        let reproduces = builtin(name).reproduces;
        let label = match reproduces.error {
            DocumentedError::Other => reproduces.reply.expect("an `other` names its reply"),
            DocumentedError::None => "none".to_string(),
            error => format!("450 {} {}", error.code(), error.name()),
        };
        let (listed, rest) = line.split_once(' ').expect("name then label");
        assert_eq!(listed, *name);
        assert!(rest.contains(&label), "{name}: {label:?} not in {line:?}");
    }
    assert!(listing.contains("connection-refused"), "{listing}");
    let refused = lines
        .iter()
        .find(|l| l.starts_with("connection-refused "))
        .unwrap();
    assert!(
        refused.ends_with("450 4.4.316 Connection refused"),
        "{refused}"
    );
    let full = lines
        .iter()
        .find(|l| l.starts_with("mailbox-full "))
        .unwrap();
    assert!(full.ends_with("other: 452 4.2.2"), "{full}");
}

#[tokio::test]
async fn check_accepts_every_shipped_scenario_file() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let mut files: Vec<String> = files_in(Path::new(dir))
        .into_iter()
        .filter(|f| f.ends_with(".toml"))
        .map(|f| format!("{dir}/{f}"))
        .collect();
    files.sort();
    assert_eq!(files.len(), scenario::builtin_names().len());
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));

    let output = run_binary(&args).await;

    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    for file in &files {
        assert!(
            report.contains(&format!("{file}: ok (")),
            "{file} not in:\n{report}"
        );
    }
}

#[tokio::test]
async fn check_points_at_the_file_line_and_column_of_the_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // An unknown key is named, at the key.
        (
            "[[faults]]\nstage = \"mail\"\nkind = \"reply\"\ncode = 550\ncolour = \"red\"\n",
            "12:1",
            "unknown field `colour`",
        ),
        // A value out of range is quoted, at the value.
        (
            "[[faults]]\nstage = \"mail\"\nkind = \"delay\"\ndelay_ms = -5\n",
            "11:12",
            "`delay_ms` is -5",
        ),
        // A stage that does not exist.
        (
            "[[faults]]\nstage = \"greeting\"\nkind = \"close\"\n",
            "9:9",
            "unknown stage \"greeting\"",
        ),
        // A parameter that belongs to another kind.
        (
            "[[faults]]\nstage = \"mail\"\nkind = \"close\"\ndelay_ms = 5\n",
            "11:12",
            "`delay_ms` does not apply to a `close` fault",
        ),
        // An enhanced code of the wrong class for its reply code.
        (
            "[[faults]]\nstage = \"rcpt\"\nkind = \"reply\"\ncode = 452\nenhanced = \"5.2.2\"\n",
            "12:12",
            "enhanced code 5.2.2 does not belong with reply code 452",
        ),
    ];
    for (n, (faults, at, message)) in cases.iter().enumerate() {
        let file = write(
            dir.path(),
            &format!("bad{n}.toml"),
            &format!("{HEAD}\n{faults}"),
        );

        let output = run_binary(&["check", &file]).await;

        assert!(!output.status.success(), "{file} passed the check");
        let stderr = text(&output.stderr);
        let expected = format!("{file}:{at}: ");
        assert!(
            stderr.starts_with(&expected),
            "{expected:?} not first in {stderr:?}"
        );
        assert!(stderr.contains(message), "{message:?} not in {stderr:?}");
    }
}

#[tokio::test]
async fn check_stops_at_the_first_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.toml", HEAD);
    let bad = write(
        dir.path(),
        "bad.toml",
        &format!("{HEAD}\n[server]\nlistener = \"maybe\"\n"),
    );
    let after = write(dir.path(), "after.toml", HEAD);

    let output = run_binary(&["check", &good, &bad, &after]).await;

    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("{good}: ok (test, other)")),
        "{stdout}"
    );
    assert!(!stdout.contains(&after), "{stdout}");
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with(&format!("{bad}:9:12: unknown listener \"maybe\"")),
        "{stderr}"
    );
}

/// Runs `smtp-fault serve --scenario SCENARIO` on port 0, asserts that it fails with exit status
/// 1 before printing a listening line, and returns what it said on standard error.
async fn serve_fails(scenario: &str) -> String {
    let output = run_binary(&["serve", "--scenario", scenario, "--listen", "127.0.0.1:0"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), "", "no listening line");
    text(&output.stderr)
}

#[tokio::test]
async fn serve_refuses_a_hostname_its_tls_scenario_cannot_have_a_certificate_for() {
    let args = [
        "serve",
        "--scenario",
        "cert-expired",
        "--listen",
        "127.0.0.1:0",
    ];
    let output = run_binary(&[&args[..], &["--hostname", "mx.example.com"]].concat()).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), "", "no listening line");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("scenario \"cert-expired\" needs TLS"),
        "{stderr}"
    );
    assert!(stderr.contains("under .test"), "{stderr}");
}

#[tokio::test]
async fn serve_refuses_a_hostname_that_is_not_a_host_name() {
    let output = run_binary(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--hostname",
        "mx.lab.test\r\n250 x",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("invalid hostname"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn serve_with_an_unknown_scenario_fails_and_says_where_to_look() {
    let stderr = serve_fails("nonexistent").await;
    assert!(
        stderr.contains("no built-in scenario is called \"nonexistent\""),
        "{stderr}"
    );
    assert!(stderr.contains("`smtp-fault scenarios` lists"), "{stderr}");
}

#[tokio::test]
async fn serve_with_a_missing_or_bad_scenario_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml").display().to_string();
    let bad = write(
        dir.path(),
        "bad.toml",
        &format!("{HEAD}\n[server]\nidle_timeout_ms = 0\n"),
    );

    let stderr = serve_fails(&missing).await;
    assert!(
        stderr.contains(&format!("{missing}: cannot read")),
        "{stderr}"
    );

    let stderr = serve_fails(&bad).await;
    assert!(
        stderr.contains(&format!("{bad}:9:19: `idle_timeout_ms` is 0")),
        "{stderr}"
    );
}

#[tokio::test]
async fn every_help_shows_examples() {
    for (args, example) in [
        (
            vec!["--help"],
            "smtp-fault serve --scenario connection-refused",
        ),
        (
            vec!["serve", "--help"],
            "smtp-fault serve --scenario mailbox-full",
        ),
        (vec!["scenarios", "--help"], "smtp-fault scenarios"),
        (vec!["check", "--help"], "smtp-fault check scenarios/*.toml"),
        (
            vec!["certs", "--help"],
            "smtp-fault certs --out /tmp/lab-certs",
        ),
    ] {
        let output = run_binary(&args).await;

        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        let help = text(&output.stdout);
        assert!(
            help.contains("Example"),
            "{args:?} has no examples:\n{help}"
        );
        assert!(
            help.contains(example),
            "{args:?} lacks {example:?}:\n{help}"
        );
    }
}

#[tokio::test]
async fn the_listening_line_comes_first_and_the_port_is_ready_when_it_does() {
    let serve = Serve::start(&["--scenario", "accept"]).await;

    let line = serve.first_line();
    assert_eq!(line, format!("listening smtp 127.0.0.1:{}\n", serve.port()));
    assert_ne!(serve.port(), 0);
    // Connecting the moment the line is read works: the line means the port is listening.
    Client::ready(serve.addr()).await;
}

#[tokio::test]
async fn serve_takes_a_scenario_file_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "quota.toml",
        &format!(
            "{HEAD}\n[[faults]]\nstage = \"rcpt\"\nkind = \"reply\"\ncode = 452\n\
             enhanced = \"4.2.2\"\ntext = \"Over quota\"\n"
        ),
    );
    let serve = Serve::start(&["--scenario", &file]).await;

    let mut client = Client::ready(serve.addr()).await;
    client
        .command("MAIL FROM:<a@b.test>")
        .await
        .expect(250, "2.1.0");
    let reply = client.command("RCPT TO:<c@d.test>").await;

    reply.expect(452, "4.2.2");
    assert_eq!(reply.lines, ["4.2.2 Over quota"]);
}

#[tokio::test]
async fn serve_uses_the_hostname_it_is_given() {
    let serve = Serve::start(&["--hostname", "mx.other.test"]).await;

    let mut client = Client::connect(serve.addr()).await;
    let greeting = client.reply().await;

    greeting.expect_code(220);
    assert!(
        greeting.lines[0].starts_with("mx.other.test "),
        "{greeting:?}"
    );
}
