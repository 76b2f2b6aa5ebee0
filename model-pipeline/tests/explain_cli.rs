//! `marginwise explain` on what the Functions log: the snapshots' log lines (what the Functions
//! write for the fixtures) from a file and from standard input, and a clear error when the input
//! has none.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// `marginwise <args>` started with its three streams piped.
fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn marginwise(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = spawn(args);
    {
        let mut input = child.stdin.take().unwrap();
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn explains_the_discount_log_of_a_fixture_run() {
    let snapshot = root().join(
        "extensions/offers/src/snapshots/offers__tests__fixtures@compiled_policy_stale.json.snap",
    );
    let (status, out, err) = marginwise(&["explain", snapshot.to_str().unwrap()], None);
    assert_eq!(status, 0, "{err}");
    assert!(
        out.starts_with("mw offer=vip-order-10 policy_compiled_stale,holdout_out,"),
        "{out}"
    );
    assert!(
        out.contains("  outcome: offer \"vip-order-10\" given\n"),
        "{out}"
    );
    assert!(
        out.contains("  policy_compiled_stale: the policy's compiled form does not match its JSON"),
        "{out}"
    );
    assert!(
        out.contains("    what to do: save the policy once"),
        "{out}"
    );
    assert!(
        out.contains("  segment_not_eligible (x2): an offer is for other segments"),
        "{out}"
    );
    assert!(
        out.contains("  holdout_out: the shopper is not held out"),
        "{out}"
    );
}

#[test]
fn explains_cart_transform_lines_from_standard_input() {
    let snapshot = std::fs::read_to_string(root().join(
        "extensions/bundles/src/snapshots/bundles__tests__fixtures@already_transformed.json.snap",
    ))
    .unwrap();
    let (status, out, err) = marginwise(&["explain"], Some(&snapshot));
    assert_eq!(status, 0, "{err}");
    assert!(
        out.contains("  outcome: 0 bundle(s) merged, 0 expanded\n"),
        "{out}"
    );
    assert!(
        out.contains("  bundle_line_marked (x3): a line is the cart transform's own"),
        "{out}"
    );
}

#[test]
fn input_without_a_log_line_is_an_error() {
    let (status, out, err) = marginwise(&["explain", "-"], Some("nothing to see\n"));
    assert_eq!(status, 1);
    assert_eq!(out, "");
    assert!(err.contains("no marginwise log line"), "{err}");

    // A fixture keeps its input and output only: the way to its log line is named, whether the
    // (pretty-printed) file is named or comes on standard input, and so for a run without logs
    // one per line as `shopify app logs --json` prints them.
    let fixture = root().join("tests/fixtures/offers/holdout_in.json");
    let text = std::fs::read_to_string(&fixture).unwrap();
    assert!(text.lines().count() > 10, "the fixture is pretty-printed");
    let streamed = format!(
        "{}\n",
        serde_json::json!({"type": "function_run", "payload": {"logs": "", "input": {}}})
    );
    for (args, stdin) in [
        (vec!["explain", fixture.to_str().unwrap()], None),
        (vec!["explain"], Some(text.as_str())),
        (vec!["explain", "-"], Some(streamed.as_str())),
    ] {
        let (status, _, err) = marginwise(&args, stdin);
        assert_eq!(status, 1, "{args:?}");
        assert!(
            err.contains("a Function run whose logs are empty")
                && err.contains("mw-run -- run FILE"),
            "{args:?}: {err}"
        );
    }
}

/// `shopify app logs` keeps streaming: each line is explained as it arrives, not at the end of
/// the input. Bounded: one line, a 10-second wait.
#[test]
fn explains_a_stream_line_by_line() {
    use std::io::{BufRead as _, BufReader};
    use std::sync::mpsc;
    use std::time::Duration;

    let mut child = spawn(&["explain"]);
    let mut input = child.stdin.take().unwrap();
    let output = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    writeln!(
        input,
        r#"{{"payload":{{"logs":"mw offer=- holdout_in\n"}}}}"#
    )
    .unwrap();
    input.flush().unwrap();
    let first = receiver.recv_timeout(Duration::from_secs(10));
    let second = receiver.recv_timeout(Duration::from_secs(10));
    drop(input);
    let status = child.wait().unwrap();
    assert_eq!(first.as_deref(), Ok("mw offer=- holdout_in"));
    assert_eq!(
        second.as_deref(),
        Ok("  outcome: no personalized offer"),
        "the line was not explained while the input stayed open"
    );
    assert!(status.success());
}
