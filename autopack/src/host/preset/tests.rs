//! Presets: argv, output readers on real samples, prompts.

use super::*;
use autopack_core::message::{AuditorRequest, BuilderRequest, CiFailure};
use serde_json::json;

fn argv(inv: &Invocation) -> Vec<String> {
    std::iter::once(&inv.program)
        .chain(&inv.args)
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn builder_request() -> BuilderRequest {
    serde_json::from_value(json!({
        "run_id": "run-1", "tier_id": "t1", "phase_id": "p-users", "phase_index": 2,
        "name": "Add the users index", "description": "Create an index on users.email.",
        "task_category": "schema_change", "complexity": "medium", "attempt": 2,
        "max_attempts": 3, "incident_token_cap": 50000,
        "scope": ["migrations/**", "src/db/*.rs"],
        "feedback": ["CI: test_indexes failed", "Auditor: name the index"]
    }))
    .expect("a valid builder request")
}

fn auditor_request(patch: Option<&str>) -> AuditorRequest {
    serde_json::from_value(json!({
        "run_id": "run-1", "tier_id": "t1", "phase_id": "p-users",
        "auditor_profile": "schema_review", "reason": "attempts_exhausted", "attempt": 1,
        "patch": patch, "failures": ["gate: outside scope: README.md"]
    }))
    .expect("a valid auditor request")
}

#[test]
fn names_round_trip_and_unknown_lists_the_valid_ones() {
    for preset in AgentPreset::ALL {
        assert_eq!(AgentPreset::from_name(preset.name()), Ok(preset));
        assert_eq!(preset.to_string(), preset.name());
    }
    assert_eq!(
        AgentPreset::from_name("claude-code"),
        Ok(AgentPreset::ClaudeCode)
    );
    assert_eq!("Codex".parse::<AgentPreset>(), Ok(AgentPreset::Codex));
    let err = AgentPreset::from_name("gemini").unwrap_err();
    assert_eq!(err.name, "gemini");
    let text = err.to_string();
    for name in AgentPreset::NAMES {
        assert!(text.contains(name), "{text} lacks {name}");
    }
    let programs: Vec<_> = AgentPreset::ALL
        .iter()
        .map(|p| p.default_program())
        .collect();
    assert_eq!(programs, ["codex", "claude", "aider", "sh"]);
}

#[test]
fn codex_invocation() {
    let inv =
        AgentPreset::Codex.invocation(None, AgentRole::Builder, "Do it", Path::new("/ws/one"));
    assert_eq!(
        argv(&inv),
        [
            "codex",
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            "-C",
            "/ws/one",
            "Do it"
        ]
    );
    assert_eq!(inv.stdin, StdinUse::Empty);
    let other = AgentPreset::Codex.invocation(
        Some(OsStr::new("/opt/codex")),
        AgentRole::Auditor,
        "Do it",
        Path::new("/ws/one"),
    );
    assert_eq!(other.program, "/opt/codex");
    assert_eq!(other.args, inv.args);
}

#[test]
fn claude_invocation() {
    let inv =
        AgentPreset::ClaudeCode.invocation(None, AgentRole::Builder, "Do it", Path::new("/ws"));
    assert_eq!(
        argv(&inv),
        [
            "claude",
            "-p",
            "Do it",
            "--output-format",
            "json",
            "--dangerously-skip-permissions"
        ]
    );
    assert_eq!(inv.stdin, StdinUse::Empty);
}

#[test]
fn aider_invocation() {
    let inv = AgentPreset::Aider.invocation(None, AgentRole::Builder, "Do it", Path::new("/ws"));
    assert_eq!(
        argv(&inv),
        [
            "aider",
            "--yes-always",
            "--no-auto-commits",
            "--no-dirty-commits",
            "--no-gitignore",
            "--no-check-update",
            "--no-analytics",
            "--no-show-release-notes",
            "--no-show-model-warnings",
            "--no-pretty",
            "--no-fancy-input",
            "--chat-history-file",
            "/dev/null",
            "--input-history-file",
            "/dev/null",
            "--message",
            "Do it"
        ]
    );
    assert_eq!(inv.stdin, StdinUse::Empty);
}

#[test]
fn command_invocation_runs_the_line_under_sh_with_the_request_on_stdin() {
    let inv = AgentPreset::Command.invocation(
        Some(OsStr::new("my-agent --fast | tee log")),
        AgentRole::Builder,
        "ignored",
        Path::new("/ws"),
    );
    assert_eq!(argv(&inv), ["sh", "-c", "my-agent --fast | tee log"]);
    assert_eq!(inv.stdin, StdinUse::RequestJson);
    let none = AgentPreset::Command.invocation(None, AgentRole::Auditor, "x", Path::new("/"));
    assert_eq!(none.args[0], "-c");
    assert!(none.args[1].to_string_lossy().contains("exit 2"));
}

#[test]
fn a_prompt_starting_with_a_dash_is_not_an_option() {
    let inv =
        AgentPreset::ClaudeCode.invocation(None, AgentRole::Builder, "--help me", Path::new("/"));
    assert_eq!(inv.args[1], " --help me");
}

const CODEX_OK: &str = r#"Reading prompt from stdin...
{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}
{"type":"turn.started"}
{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"","exit_code":null,"status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"src\n","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"First thought."}}
{"type":"item.completed","item":{"id":"item_3","type":"file_change","changes":[{"path":"src/a.rs","kind":"update"}],"status":"completed"}}
{"type":"item.completed","item":{"id":"item_4","type":"agent_message","text":"Done: added the index."}}
{"type":"turn.completed","usage":{"input_tokens":24763,"cached_input_tokens":24448,"output_tokens":122}}
"#;

#[test]
fn codex_success_sums_input_and_output_but_not_cached() {
    let report = AgentPreset::Codex.read_output(CODEX_OK, "", 0).unwrap();
    assert_eq!(report.tokens_used, 24763 + 122);
    assert_eq!(report.final_message, "Done: added the index.");
    assert_eq!(report.failed, None);
}

#[test]
fn codex_sums_several_turns_and_tolerates_unknown_events_and_fields() {
    let out = concat!(
        r#"{"type":"thread.started","thread_id":"t","future":1}"#,
        "\n",
        r#"{"type":"item.plan.delta","item_id":"x","delta":"…"}"#,
        "\n",
        r#"{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":0,"output_tokens":5,"reasoning_output_tokens":3}}"#,
        "\n",
        "not json at all\n",
        r#"{"type":"turn.completed","usage":{"input_tokens":100,"output_tokens":50}}"#,
        "\n",
    );
    let report = AgentPreset::Codex.read_output(out, "", 0).unwrap();
    assert_eq!(report.tokens_used, 165);
    assert_eq!(report.failed, None);
    assert_eq!(report.final_message, "");
}

#[test]
fn codex_failures() {
    let out = concat!(
        r#"{"type":"thread.started","thread_id":"t"}"#,
        "\n",
        r#"{"type":"turn.started"}"#,
        "\n",
        r#"{"type":"error","message":"stream disconnected"}"#,
        "\n",
        r#"{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized"}}"#,
        "\n",
    );
    let report = AgentPreset::Codex.read_output(out, "", 1).unwrap();
    assert_eq!(
        report.failed.as_deref(),
        Some("unexpected status 401 Unauthorized")
    );
    assert_eq!(report.tokens_used, 0);

    // An error event the turn recovered from is not a failure.
    let recovered = concat!(
        r#"{"type":"error","message":"Reconnecting... 1/5"}"#,
        "\n",
        r#"{"type":"turn.completed","usage":{"input_tokens":1,"output_tokens":1}}"#,
        "\n",
    );
    assert_eq!(
        AgentPreset::Codex
            .read_output(recovered, "", 0)
            .unwrap()
            .failed,
        None
    );

    let fatal = r#"{"type":"error","message":"quota exceeded"}"#;
    let report = AgentPreset::Codex.read_output(fatal, "", 1).unwrap();
    assert_eq!(report.failed.as_deref(), Some("quota exceeded"));

    let cut_short = r#"{"type":"turn.started"}"#;
    let report = AgentPreset::Codex.read_output(cut_short, "", 0).unwrap();
    assert!(report.failed.unwrap().contains("turn.completed"));

    let bad_exit = AgentPreset::Codex
        .read_output(CODEX_OK, "boom\n", 3)
        .unwrap();
    assert_eq!(
        bad_exit.failed.as_deref(),
        Some("codex exited with code 3; stderr: boom")
    );

    // Died before printing any event: a failure with stderr, not a format error.
    let usage = "error: unexpected argument '--nope' found\n";
    let report = AgentPreset::Codex.read_output("", usage, 2).unwrap();
    assert!(report.failed.unwrap().contains("--nope"));
}

#[test]
fn codex_garbage_and_malformed_usage_are_errors_naming_codex() {
    let err = AgentPreset::Codex
        .read_output("Hello from the human output mode\n", "", 0)
        .unwrap_err();
    assert!(matches!(
        err,
        PresetError::Unrecognised {
            preset: AgentPreset::Codex,
            ..
        }
    ));
    assert!(
        err.to_string()
            .starts_with("codex printed no JSON Lines events"),
        "{err}"
    );
    assert!(err.to_string().contains("Hello from"), "{err}");

    let bad = r#"{"type":"turn.completed","usage":{"input_tokens":"many","output_tokens":1}}"#;
    let err = AgentPreset::Codex.read_output(bad, "", 0).unwrap_err();
    assert!(matches!(
        err,
        PresetError::Malformed {
            preset: AgentPreset::Codex,
            ..
        }
    ));
    assert!(
        err.to_string()
            .contains("line 1: turn.completed usage.input_tokens"),
        "{err}"
    );

    let missing = r#"{"type":"turn.completed"}"#;
    let err = AgentPreset::Codex.read_output(missing, "", 0).unwrap_err();
    assert!(
        err.to_string().contains("has no usage.input_tokens"),
        "{err}"
    );
}

const CLAUDE_OK: &str = r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":20011,"duration_api_ms":19321,"num_turns":6,"result":"Added the index.","session_id":"0ae2","total_cost_usd":0.0712,"usage":{"input_tokens":33,"cache_creation_input_tokens":9472,"cache_read_input_tokens":67010,"output_tokens":1191,"server_tool_use":{"web_search_requests":0},"service_tier":"standard"},"modelUsage":{},"permission_denials":[],"uuid":"u","new_field":{"x":1}}"#;

#[test]
fn claude_success_counts_every_usage_figure() {
    let report = AgentPreset::ClaudeCode
        .read_output(CLAUDE_OK, "", 0)
        .unwrap();
    assert_eq!(report.tokens_used, 33 + 9472 + 67010 + 1191);
    assert_eq!(report.final_message, "Added the index.");
    assert_eq!(report.failed, None);

    // A warning line before the object, and counters missing on other providers.
    let out = "warning: something\n{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"ok\",\"usage\":{\"input_tokens\":5,\"output_tokens\":7}}\n";
    let report = AgentPreset::ClaudeCode.read_output(out, "", 0).unwrap();
    assert_eq!(report.tokens_used, 12);
}

#[test]
fn claude_failures() {
    let max_turns = r#"{"type":"result","subtype":"error_max_turns","is_error":false,"num_turns":3,"session_id":"s","total_cost_usd":0.01,"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":90,"output_tokens":20},"permission_denials":[],"errors":[]}"#;
    let report = AgentPreset::ClaudeCode
        .read_output(max_turns, "", 0)
        .unwrap();
    assert_eq!(
        report.failed.as_deref(),
        Some("error_max_turns: no message")
    );
    assert_eq!(report.tokens_used, 120);

    let during = r#"{"type":"result","subtype":"error_during_execution","is_error":true,"usage":{"input_tokens":1,"output_tokens":1},"errors":["tool crashed","then gave up"]}"#;
    let report = AgentPreset::ClaudeCode.read_output(during, "", 1).unwrap();
    assert_eq!(
        report.failed.as_deref(),
        Some("error_during_execution: tool crashed; then gave up")
    );

    let api_error = r#"{"type":"result","subtype":"success","is_error":true,"result":"API Error: 401 invalid x-api-key","usage":{"input_tokens":0,"output_tokens":0}}"#;
    let report = AgentPreset::ClaudeCode
        .read_output(api_error, "", 1)
        .unwrap();
    assert_eq!(
        report.failed.as_deref(),
        Some("success: API Error: 401 invalid x-api-key")
    );

    let report = AgentPreset::ClaudeCode
        .read_output("", "error: unknown option '--x'", 1)
        .unwrap();
    assert_eq!(
        report.failed.as_deref(),
        Some("claude exited with code 1; stderr: error: unknown option '--x'")
    );
}

#[test]
fn claude_garbage_is_an_error_naming_claude() {
    for out in [
        "Added the index.",
        r#"{"type":"assistant","message":{}}"#,
        "",
    ] {
        let err = AgentPreset::ClaudeCode.read_output(out, "", 0).unwrap_err();
        assert!(matches!(
            err,
            PresetError::Unrecognised {
                preset: AgentPreset::ClaudeCode,
                ..
            }
        ));
        assert!(
            err.to_string().starts_with("claude printed no JSON object"),
            "{err}"
        );
    }
    let no_usage = r#"{"type":"result","subtype":"success","result":"x"}"#;
    let err = AgentPreset::ClaudeCode
        .read_output(no_usage, "", 0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "claude output is malformed: the result has no usage object"
    );
    let bad = r#"{"type":"result","subtype":"success","usage":{"input_tokens":-3}}"#;
    let err = AgentPreset::ClaudeCode.read_output(bad, "", 0).unwrap_err();
    assert!(
        err.to_string().contains("usage.input_tokens is -3"),
        "{err}"
    );
}

const AIDER_OK: &str = "Aider v0.86.1
Main model: anthropic/claude-sonnet-4 with diff edit format, infinite output
Weak model: anthropic/claude-3-5-haiku
Git repo: .git with 214 files
Repo-map: using 4096 tokens, auto refresh

I'll add the index.

migrations/0004_users_email.sql
```sql
<<<<<<< SEARCH
=======
CREATE INDEX users_email ON users (email);
>>>>>>> REPLACE
```

Tokens: 12k sent, 2.1k cache write, 9.8k cache hit, 1.2k received. Cost: $0.03 message, $0.03 session.

Applied edit to migrations/0004_users_email.sql
Tokens: 14k sent, 88 received. Cost: $0.01 message, $0.04 session.
";

#[test]
fn aider_sums_sent_and_received_over_its_tokens_lines() {
    let report = AgentPreset::Aider.read_output(AIDER_OK, "", 0).unwrap();
    assert_eq!(report.tokens_used, 12_000 + 1_200 + 14_000 + 88);
    assert_eq!(report.failed, None);
    assert!(report.final_message.starts_with("Aider v0.86.1"));
    assert!(report.final_message.ends_with("$0.04 session."));

    // No pricing known: no Cost part; a newer figure is ignored.
    let out = "Aider v0.90.0\nTokens: 2.3k sent, 512 received, 40 reasoning.\n";
    assert_eq!(
        AgentPreset::Aider
            .read_output(out, "", 0)
            .unwrap()
            .tokens_used,
        2_812
    );
    // The banner alone: a run that made no model call.
    assert_eq!(
        AgentPreset::Aider
            .read_output("Aider v0.86.1\n", "", 0)
            .unwrap()
            .tokens_used,
        0
    );
}

#[test]
fn aider_failures_and_garbage() {
    let out =
        "Aider v0.86.1\nTokens: 1.5k sent, 0 received.\nlitellm.AuthenticationError: bad key\n";
    let report = AgentPreset::Aider.read_output(out, "", 1).unwrap();
    assert_eq!(report.tokens_used, 1_500);
    assert_eq!(
        report.failed.as_deref(),
        Some("aider exited with code 1; last output: litellm.AuthenticationError: bad key")
    );
    let report = AgentPreset::Aider
        .read_output("", "Traceback …\nKeyError: 'x'", 1)
        .unwrap();
    assert_eq!(
        report.failed.as_deref(),
        Some("aider exited with code 1; stderr: Traceback …\nKeyError: 'x'")
    );

    let err = AgentPreset::Aider
        .read_output("hello\n", "", 0)
        .unwrap_err();
    assert!(matches!(
        err,
        PresetError::Unrecognised {
            preset: AgentPreset::Aider,
            ..
        }
    ));
    assert!(
        err.to_string()
            .starts_with("aider printed no `Aider v…` announcement"),
        "{err}"
    );
    let err = AgentPreset::Aider
        .read_output("Aider v1\nTokens: lots sent, 3 received.\n", "", 0)
        .unwrap_err();
    assert!(matches!(
        err,
        PresetError::Malformed {
            preset: AgentPreset::Aider,
            ..
        }
    ));
    assert!(
        err.to_string().contains("\"lots\" is not a number"),
        "{err}"
    );
    let err = AgentPreset::Aider
        .read_output("Tokens: 3 received.\n", "", 0)
        .unwrap_err();
    assert!(
        err.to_string().contains("no `sent` and `received`"),
        "{err}"
    );
}

#[test]
fn counts_with_k_and_m_suffixes() {
    let cases = [
        ("0", Some(0)),
        ("512", Some(512)),
        ("2.3k", Some(2_300)),
        ("9.9k", Some(9_900)),
        ("12k", Some(12_000)),
        ("1.5M", Some(1_500_000)),
        ("2M", Some(2_000_000)),
        ("1.25k", Some(1_250)),
        ("k", None),
        ("1.2.3k", None),
        ("-5", None),
        ("", None),
        ("3x", None),
        ("99999999999999999999k", None),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_count(text), expected, "{text}");
    }
}

#[test]
fn command_reads_stdout_as_is() {
    let report = AgentPreset::Command
        .read_output("{\"phase_id\":\"p\"}\n", "", 0)
        .unwrap();
    assert_eq!(
        report,
        AgentReport {
            tokens_used: 0,
            final_message: "{\"phase_id\":\"p\"}\n".to_owned(),
            failed: None
        }
    );
    let report = AgentPreset::Command.read_output("anything", "", 4).unwrap();
    assert_eq!(report.failed.as_deref(), Some("command exited with code 4"));
}

#[test]
fn result_json_in_finds_the_last_top_level_object() {
    let fenced = "Review done.\n\n```json\n{\"phase_id\": \"p\", \"recommendation\": \"revise\", \"review_notes\": \"use {braces} and \\\"quotes\\\" }\", \"confidence\": 0.7}\n```\n";
    let found = result_json_in(fenced).unwrap();
    let value: Value = serde_json::from_str(found).unwrap();
    assert_eq!(value["recommendation"], "revise");
    assert_eq!(value["review_notes"], "use {braces} and \"quotes\" }");

    let bare = "Early example {\"a\": 1}. Final: {\"phase_id\": \"p\", \"nested\": {\"b\": [1, {\"c\": 2}]}} thanks";
    assert_eq!(
        result_json_in(bare),
        Some("{\"phase_id\": \"p\", \"nested\": {\"b\": [1, {\"c\": 2}]}}")
    );
    assert_eq!(
        result_json_in("no json {at all} here { \"unclosed\": "),
        None
    );
    assert_eq!(result_json_in(""), None);
    assert_eq!(result_json_in("[1, 2]"), None);
    assert_eq!(result_json_in("{}"), Some("{}"));
    assert_eq!(
        result_json_in("ünïcode {\"é\": \"}\"} ✓"),
        Some("{\"é\": \"}\"}")
    );
    // Pathological input stays linear enough to finish at once.
    let many = "{".repeat(100_000);
    assert_eq!(result_json_in(&many), None);
}

#[test]
fn builder_prompt_says_what_to_do_and_how_to_report() {
    let prompt = builder_prompt(&builder_request());
    for needle in [
        "Name: Add the users index",
        "Id: p-users (phase 2 of run run-1, tier t1)",
        "Category: schema_change; complexity: medium",
        "Attempt: 2 of 3",
        "Create an index on users.email.",
        "- migrations/**",
        "- src/db/*.rs",
        "1. CI: test_indexes failed",
        "2. Auditor: name the index",
        "Do not commit, push",
        "$AUTOPACK_RESULT_FILE",
        "$AUTOPACK_REQUEST_FILE",
        "\"phase_id\": \"p-users\"",
    ] {
        assert!(prompt.contains(needle), "missing {needle:?} in:\n{prompt}");
    }
    assert!(!prompt.starts_with('-'));
}

#[test]
fn prompts_quote_the_last_red_ci_and_the_previous_patch() {
    let mut request = builder_request();
    let tail = format!("{}\nthe last line\n", "x".repeat(40 * 1024));
    request.last_ci = Some(CiFailure {
        output_tail: tail,
        failing_tests: vec!["db::test_indexes".into()],
    });
    request.previous_patch = Some("diff --git a/m.sql b/m.sql\n".into());
    let prompt = builder_prompt(&request);
    for needle in [
        "The last CI run of this phase was red",
        "Failing tests: db::test_indexes",
        "the last line",
        "Your previous attempt's patch",
        "diff --git a/m.sql b/m.sql",
    ] {
        assert!(prompt.contains(needle), "missing {needle:?}");
    }
    // The end of the output is kept, not all of it.
    assert!(prompt.len() < 30 * 1024, "{}", prompt.len());
    let mut audit = auditor_request(None);
    audit.last_ci = request.last_ci.clone();
    audit.name = "Add the users index".into();
    let prompt = auditor_prompt(&audit);
    assert!(prompt.contains("Failing tests: db::test_indexes"));
    assert!(prompt.contains("Name: Add the users index"));
}

#[test]
fn builder_prompt_without_scope_or_feedback() {
    let mut request = builder_request();
    request.scope.clear();
    request.feedback.clear();
    request.description.clear();
    let prompt = builder_prompt(&request);
    assert!(prompt.contains("Any file in the repository may change."));
    assert!(!prompt.contains("Feedback on earlier attempts"));
    assert!(prompt.contains("no description beyond its name"));
}

#[test]
fn auditor_prompt_quotes_the_patch_and_asks_for_the_verdict_json() {
    let patch = "diff --git a/x b/x\n+```\n+code\n";
    let prompt = auditor_prompt(&auditor_request(Some(patch)));
    for needle in [
        "Id: p-users (run run-1, tier t1)",
        "attempts_exhausted",
        "Review profile: schema_review",
        "diff --git a/x b/x",
        "1. gate: outside scope: README.md",
        "\"recommendation\": \"approve\" | \"revise\" | \"escalate\"",
        "\"confidence\"",
        "$AUTOPACK_RESULT_FILE",
        "end your final message with that JSON object",
    ] {
        assert!(prompt.contains(needle), "missing {needle:?} in:\n{prompt}");
    }
    // The fence is longer than the backtick run inside the patch.
    assert!(prompt.contains("````diff\n"));
    let none = auditor_prompt(&auditor_request(None));
    assert!(none.contains("There is no patch"));
}

#[test]
fn prompts_fit_one_argv_string_whatever_the_request() {
    let huge = "x".repeat(1_000_000);
    let mut request = builder_request();
    request.description = huge.clone();
    request.feedback = vec![huge.clone(); 50];
    let prompt = builder_prompt(&request);
    assert!(prompt.len() <= MAX_PROMPT_BYTES, "{}", prompt.len());
    assert!(prompt.contains("older entries are left out"));
    assert!(prompt.contains("more bytes; the full text is in $AUTOPACK_REQUEST_FILE"));

    let mut audit = auditor_request(Some(&huge));
    audit.failures = vec!["é".repeat(100_000); 20];
    let prompt = auditor_prompt(&audit);
    assert!(prompt.len() <= MAX_PROMPT_BYTES, "{}", prompt.len());
}
