//! The binary's command line, run as a user runs it. (Being an integration test of this
//! package, it also makes `cargo test --workspace` build the binary that the end-to-end
//! tests in `tests/` drive.)

use std::process::Command;

fn ex_messenger(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ex_messenger"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("run ex_messenger")
}

#[test]
fn help_names_the_subcommands_and_their_flags() {
    let top = ex_messenger(&["--help"]);
    assert!(top.status.success());
    let top = String::from_utf8_lossy(&top.stdout);
    for word in ["server", "client", "bench"] {
        assert!(top.contains(word), "{word} missing from:\n{top}");
    }
    assert!(
        !top.contains("bench-client"),
        "the internal subcommand stays hidden"
    );

    let server = ex_messenger(&["server", "--help"]);
    let server = String::from_utf8_lossy(&server.stdout);
    for flag in [
        "--listen",
        "--cookie",
        "--cookie-file",
        "--rate-limit",
        "--tree",
    ] {
        assert!(server.contains(flag), "{flag} missing from:\n{server}");
    }
    let client = ex_messenger(&["client", "--help"]);
    let client = String::from_utf8_lossy(&client.stdout);
    for flag in ["--server", "--nick", "--give-up-after"] {
        assert!(client.contains(flag), "{flag} missing from:\n{client}");
    }
}

#[test]
fn an_invalid_nick_is_refused_before_connecting() {
    let output = ex_messenger(&[
        "client",
        "-s",
        "127.0.0.1:1",
        "-n",
        "two words",
        "--cookie",
        "c",
    ]);
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.trim(),
        "Could not join chatroom, reason: nick_not_allowed: a name cannot contain spaces or control characters"
    );
}
