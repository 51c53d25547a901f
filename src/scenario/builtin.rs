//! The built-in scenarios: the files of `scenarios/`, compiled into the binary so that
//! `--scenario NAME` works from any directory.

use super::Scenario;

/// Each built-in scenario's file name and text.
pub const BUILTIN: &[(&str, &str)] = &[
    ("accept.toml", include_str!("../../scenarios/accept.toml")),
    (
        "connection-refused.toml",
        include_str!("../../scenarios/connection-refused.toml"),
    ),
    (
        "connection-timed-out.toml",
        include_str!("../../scenarios/connection-timed-out.toml"),
    ),
    (
        "greeting-timeout.toml",
        include_str!("../../scenarios/greeting-timeout.toml"),
    ),
    (
        "service-not-available.toml",
        include_str!("../../scenarios/service-not-available.toml"),
    ),
    (
        "tls-not-offered.toml",
        include_str!("../../scenarios/tls-not-offered.toml"),
    ),
    (
        "close-on-connect.toml",
        include_str!("../../scenarios/close-on-connect.toml"),
    ),
    (
        "reset-on-connect.toml",
        include_str!("../../scenarios/reset-on-connect.toml"),
    ),
    (
        "close-on-mail.toml",
        include_str!("../../scenarios/close-on-mail.toml"),
    ),
    (
        "reset-during-body.toml",
        include_str!("../../scenarios/reset-during-body.toml"),
    ),
    (
        "close-after-final-dot.toml",
        include_str!("../../scenarios/close-after-final-dot.toml"),
    ),
    (
        "stall-after-data.toml",
        include_str!("../../scenarios/stall-after-data.toml"),
    ),
    (
        "mailbox-full.toml",
        include_str!("../../scenarios/mailbox-full.toml"),
    ),
    (
        "unknown-user.toml",
        include_str!("../../scenarios/unknown-user.toml"),
    ),
    (
        "message-rejected.toml",
        include_str!("../../scenarios/message-rejected.toml"),
    ),
    (
        "ehlo-rejected.toml",
        include_str!("../../scenarios/ehlo-rejected.toml"),
    ),
    (
        "slow-greeting.toml",
        include_str!("../../scenarios/slow-greeting.toml"),
    ),
    (
        "cert-expired.toml",
        include_str!("../../scenarios/cert-expired.toml"),
    ),
    (
        "cert-not-yet-valid.toml",
        include_str!("../../scenarios/cert-not-yet-valid.toml"),
    ),
    (
        "cert-wrong-host.toml",
        include_str!("../../scenarios/cert-wrong-host.toml"),
    ),
    (
        "cert-self-signed.toml",
        include_str!("../../scenarios/cert-self-signed.toml"),
    ),
    (
        "cert-untrusted-root.toml",
        include_str!("../../scenarios/cert-untrusted-root.toml"),
    ),
    (
        "cert-incomplete-chain.toml",
        include_str!("../../scenarios/cert-incomplete-chain.toml"),
    ),
    (
        "cert-valid-rsa.toml",
        include_str!("../../scenarios/cert-valid-rsa.toml"),
    ),
    (
        "starttls-refused.toml",
        include_str!("../../scenarios/starttls-refused.toml"),
    ),
    (
        "starttls-dropped.toml",
        include_str!("../../scenarios/starttls-dropped.toml"),
    ),
    (
        "tls-handshake-stall.toml",
        include_str!("../../scenarios/tls-handshake-stall.toml"),
    ),
    (
        "tls-dropped-after-handshake.toml",
        include_str!("../../scenarios/tls-dropped-after-handshake.toml"),
    ),
    (
        "tls-required.toml",
        include_str!("../../scenarios/tls-required.toml"),
    ),
    (
        "tls12-only.toml",
        include_str!("../../scenarios/tls12-only.toml"),
    ),
    (
        "tls13-only.toml",
        include_str!("../../scenarios/tls13-only.toml"),
    ),
    (
        "dns-query-failed.toml",
        include_str!("../../scenarios/dns-query-failed.toml"),
    ),
    (
        "dns-servfail.toml",
        include_str!("../../scenarios/dns-servfail.toml"),
    ),
    (
        "dns-refused.toml",
        include_str!("../../scenarios/dns-refused.toml"),
    ),
    (
        "dns-nxdomain.toml",
        include_str!("../../scenarios/dns-nxdomain.toml"),
    ),
    (
        "dns-no-mx.toml",
        include_str!("../../scenarios/dns-no-mx.toml"),
    ),
    (
        "dns-timeout.toml",
        include_str!("../../scenarios/dns-timeout.toml"),
    ),
    (
        "dns-stale-mx.toml",
        include_str!("../../scenarios/dns-stale-mx.toml"),
    ),
    (
        "greylisting.toml",
        include_str!("../../scenarios/greylisting.toml"),
    ),
    (
        "flaky-first-two.toml",
        include_str!("../../scenarios/flaky-first-two.toml"),
    ),
    (
        "connection-cap.toml",
        include_str!("../../scenarios/connection-cap.toml"),
    ),
    (
        "rate-limited.toml",
        include_str!("../../scenarios/rate-limited.toml"),
    ),
    (
        "outage-window.toml",
        include_str!("../../scenarios/outage-window.toml"),
    ),
    (
        "random-deferrals.toml",
        include_str!("../../scenarios/random-deferrals.toml"),
    ),
];

/// The built-in scenario called `name`, if there is one.
pub fn builtin(name: &str) -> Option<Scenario> {
    BUILTIN
        .iter()
        .find(|(file, _)| file.strip_suffix(".toml") == Some(name))
        .map(|(file, text)| {
            Scenario::from_toml(text, &format!("scenarios/{file}"))
                .expect("built-in scenarios are validated by the test suite")
        })
}

/// The names of the built-in scenarios, in catalogue order.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN
        .iter()
        .map(|(file, _)| file.trim_end_matches(".toml"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_scenario_loads_and_is_named_after_its_file() {
        for (file, text) in BUILTIN {
            let scenario = Scenario::from_toml(text, file).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(format!("{}.toml", scenario.name), *file);
        }
    }

    #[test]
    fn the_files_on_disk_are_exactly_the_built_in_ones() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let mut built_in: Vec<String> = BUILTIN.iter().map(|(f, _)| f.to_string()).collect();
        built_in.sort();
        assert_eq!(on_disk, built_in);
    }

    #[test]
    fn the_readme_table_is_the_one_generated_from_the_files() {
        let readme = include_str!("../../README.md");
        let begin = "<!-- scenarios:begin -->\n";
        let start = readme.find(begin).expect("README has the begin marker") + begin.len();
        let end = readme
            .find("<!-- scenarios:end -->")
            .expect("README has the end marker");
        assert_eq!(
            &readme[start..end],
            super::super::markdown_table(),
            "regenerate it with `smtp-fault scenarios --markdown`"
        );
    }
}
