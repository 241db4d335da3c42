//! The prompts the presets hand an agent CLI: built from the request, clipped to fit one
//! argv string; the full request is always in `$AUTOPACK_REQUEST_FILE`.

use autopack_core::message::{AuditReason, AuditorRequest, BuilderRequest, CiFailure};

use super::{clip_end, clip_start};

/// The most bytes [`builder_prompt`] and [`auditor_prompt`] produce, under Linux's 128 KiB
/// limit on one argv string.
pub const MAX_PROMPT_BYTES: usize = 120 * 1024;
/// Bytes of a patch quoted in an Auditor prompt.
const PATCH_LIMIT: usize = 64 * 1024;
/// Bytes of the last CI output quoted in a prompt (its end; all of it is in the request).
const CI_TAIL_LIMIT: usize = 16 * 1024;
/// Bytes of a phase description quoted in a Builder prompt.
const DESCRIPTION_LIMIT: usize = 16 * 1024;
/// Bytes of one feedback or failure entry quoted in a prompt.
const ENTRY_LIMIT: usize = 4 * 1024;
/// Feedback or failure entries quoted in a prompt (the newest ones).
const ENTRY_COUNT: usize = 8;

/// Prompt text built section by section, so a new request field is one more section.
struct Prompt {
    text: String,
}

impl Prompt {
    fn new(first_line: &str) -> Prompt {
        let mut text = String::with_capacity(4096);
        text.push_str(first_line);
        text.push('\n');
        Prompt { text }
    }

    fn line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
    }

    fn section(&mut self, title: &str) {
        self.text.push_str("\n## ");
        self.text.push_str(title);
        self.text.push_str("\n\n");
    }

    /// A numbered list of the newest [`ENTRY_COUNT`] entries, each clipped.
    fn entries(&mut self, entries: &[String]) {
        let skipped = entries.len().saturating_sub(ENTRY_COUNT);
        if skipped > 0 {
            self.line(&format!(
                "({skipped} older entries are left out here; all are in $AUTOPACK_REQUEST_FILE.)"
            ));
        }
        for (i, entry) in entries.iter().enumerate().skip(skipped) {
            self.line(&format!(
                "{}. {}",
                i + 1,
                clipped(entry.trim(), ENTRY_LIMIT)
            ));
        }
    }

    /// `text` in a code fence longer than any backtick run inside it.
    fn fenced(&mut self, info: &str, text: &str) {
        let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat((longest + 1).max(3));
        self.line(&format!("{fence}{info}"));
        self.line(text.trim_end_matches('\n'));
        self.line(&fence);
    }

    fn finish(self) -> String {
        // The section limits keep well under this; the cut is a last guard for the argv.
        let mut text = self.text;
        if text.len() > MAX_PROMPT_BYTES {
            let keep = clip_start(&text, MAX_PROMPT_BYTES - 100).len();
            text.truncate(keep);
            text.push_str("\n[prompt cut here; the full request is in $AUTOPACK_REQUEST_FILE]\n");
        }
        text
    }
}

/// `text`, or its first `max` bytes and a note that the rest is in the request file.
fn clipped(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let head = clip_start(text, max);
    format!(
        "{head}\n[… {} more bytes; the full text is in $AUTOPACK_REQUEST_FILE]",
        text.len() - head.len()
    )
}

/// The Builder's prompt for one attempt: the phase, its scope, the attempt number, the
/// feedback of earlier attempts, how to work in the workspace, and how to report extra
/// information through `$AUTOPACK_RESULT_FILE`.
pub fn builder_prompt(request: &BuilderRequest) -> String {
    let mut p = Prompt::new(
        "You are the Builder for one phase of an Autopack run: make the change this phase asks for.",
    );
    p.section("Phase");
    p.line(&format!("Name: {}", request.name));
    p.line(&format!(
        "Id: {} (phase {} of run {}, tier {})",
        request.phase_id, request.phase_index, request.run_id, request.tier_id
    ));
    p.line(&format!(
        "Category: {}; complexity: {}",
        request.task_category, request.complexity
    ));
    if let Some(mode) = &request.builder_mode {
        p.line(&format!("Approach: {mode}"));
    }
    p.line(&format!(
        "Attempt: {} of {}",
        request.attempt, request.max_attempts
    ));
    p.line(&format!(
        "Token budget for this phase: {}",
        request.incident_token_cap
    ));

    p.section("What to do");
    if request.description.trim().is_empty() {
        p.line("The phase has no description beyond its name.");
    } else {
        p.line(&clipped(request.description.trim(), DESCRIPTION_LIMIT));
    }

    p.section("Scope");
    if request.scope.is_empty() {
        p.line("Any file in the repository may change.");
    } else {
        p.line("Change only files whose paths match one of these globs; a change outside them is rejected:");
        for glob in &request.scope {
            p.line(&format!("- {glob}"));
        }
    }

    if !request.feedback.is_empty() {
        p.section("Feedback on earlier attempts (oldest first)");
        p.entries(&request.feedback);
        p.line("");
        p.line("Address every point above in this attempt.");
    }

    last_ci_section(&mut p, request.last_ci.as_ref());
    if let Some(patch) = request
        .previous_patch
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        p.section("Your previous attempt's patch (it did not pass)");
        p.fenced("diff", &clipped(patch, PATCH_LIMIT));
    }

    p.section("How to work");
    p.line("- Your current directory is a private git checkout of the project. Make the change by editing files there; nothing else is needed.");
    p.line("- Do not commit, push, create branches or tags, or change git configuration: the host turns the changes in the working tree into the patch.");
    p.line("- Run the project's tests or checks if you can, and fix what they report.");
    p.line("- The full request is JSON in the file named by $AUTOPACK_REQUEST_FILE.");
    p.line("- When you are done, stop. If you want to say more (a verdict on your own work, tests that fail, issues you noticed), write one JSON object to the file named by $AUTOPACK_RESULT_FILE:");
    p.line(&format!(
        "  {{\"phase_id\": \"{}\", \"status\": \"success\" | \"failed\" | \"needs_review\", \"tokens_used\": 0, \"notes\": \"…\", \"failing_tests\": [\"…\"]}}",
        request.phase_id
    ));
    p.line("  Leave out \"patch\" (the host takes it from the working tree) and put 0 in \"tokens_used\" (the host counts tokens).");
    p.finish()
}

/// The Auditor's prompt: the patch under review, the failures so far, and the instruction
/// to write its verdict to `$AUTOPACK_RESULT_FILE` (or end its message with it).
pub fn auditor_prompt(request: &AuditorRequest) -> String {
    let mut p = Prompt::new(
        "You are the Auditor for one phase of an Autopack run: review the work and give a verdict.",
    );
    p.section("Phase");
    if !request.name.is_empty() {
        p.line(&format!("Name: {}", request.name));
    }
    p.line(&format!(
        "Id: {} (run {}, tier {})",
        request.phase_id, request.run_id, request.tier_id
    ));
    if let Some(category) = &request.task_category {
        p.line(&format!("Category: {category}"));
    }
    if !request.description.trim().is_empty() {
        p.line(&format!(
            "What it is to do: {}",
            clipped(request.description.trim(), DESCRIPTION_LIMIT)
        ));
    }
    p.line(&format!(
        "Why you are called: {}",
        reason_text(request.reason)
    ));
    if let Some(profile) = &request.auditor_profile {
        p.line(&format!("Review profile: {profile}"));
    }
    p.line(&format!("Audit attempt: {}", request.attempt));

    p.section("The patch under review");
    match request.patch.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(patch) => p.fenced("diff", &clipped(patch, PATCH_LIMIT)),
        None => p.line("There is no patch: judge from the failures and the repository."),
    }

    if !request.failures.is_empty() {
        p.section("Failures so far (oldest first)");
        p.entries(&request.failures);
    }
    last_ci_section(&mut p, request.last_ci.as_ref());

    p.section("What to do");
    p.line("- Your current directory is a private git checkout of the project; read whatever you need. Do not commit or push.");
    p.line("- The full request is JSON in the file named by $AUTOPACK_REQUEST_FILE.");
    p.line("- Recommend \"approve\" (the patch may proceed), \"revise\" (send it back to the Builder with notes on what to change) or \"escalate\" (the phase cannot succeed this way).");
    p.line("- Write your verdict as one JSON object to the file named by $AUTOPACK_RESULT_FILE:");
    p.line(&format!(
        "  {{\"phase_id\": \"{}\", \"recommendation\": \"approve\" | \"revise\" | \"escalate\", \"review_notes\": \"…\", \"confidence\": 0.0 to 1.0}}",
        request.phase_id
    ));
    p.line("- If you cannot write files, end your final message with that JSON object instead.");
    p.finish()
}

/// The last red CI run: the failing tests and the end of its output.
fn last_ci_section(p: &mut Prompt, last_ci: Option<&CiFailure>) {
    let Some(ci) = last_ci else { return };
    p.section("The last CI run of this phase was red");
    if !ci.failing_tests.is_empty() {
        p.line(&format!("Failing tests: {}", ci.failing_tests.join(", ")));
    }
    let tail = ci.output_tail.trim();
    if !tail.is_empty() {
        p.line("The end of its output:");
        p.fenced("text", clip_end(tail, CI_TAIL_LIMIT));
    }
}

fn reason_text(reason: AuditReason) -> &'static str {
    match reason {
        AuditReason::AttemptsExhausted => "the Builder used up its attempts (attempts_exhausted)",
        AuditReason::HighRiskApproval => {
            "a high-risk phase needs an approve before its patch applies (high_risk_approval)"
        }
        AuditReason::FailureLoop => "the same failure keeps repeating (failure_loop)",
        AuditReason::MajorIssue => "a major issue was reported (major_issue)",
    }
}
