//! Git-format patches for the scripted agents: new files and whole-file rewrites.
//!
//! Only git-format diffs (`diff --git` headers) pass the gate. A new file needs
//! `new file mode 100644`, `--- /dev/null`, `+++ b/{path}` and a `@@ -0,0 +1,N @@` hunk; a
//! rewrite replaces every line in one hunk, which needs no context lines.

/// A patch creating `path` with `content` (which should end with a newline).
pub fn new_file(path: &str, content: &str) -> String {
    let lines: Vec<&str> = content.lines().collect();
    let mut out = format!(
        "diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{} @@\n",
        lines.len()
    );
    for line in lines {
        out.push('+');
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A patch replacing the whole content of `path` (`old`, as committed) with `new`.
pub fn rewrite_file(path: &str, old: &str, new: &str) -> String {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let mut out = format!(
        "diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1,{} +1,{} @@\n",
        old_lines.len(),
        new_lines.len()
    );
    for line in old_lines {
        out.push('-');
        out.push_str(line);
        out.push('\n');
    }
    for line in new_lines {
        out.push('+');
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_have_the_headers_git_needs() {
        let p = new_file("docs/a.md", "one\ntwo\n");
        assert!(p.starts_with("diff --git a/docs/a.md b/docs/a.md\nnew file mode 100644\n--- /dev/null\n+++ b/docs/a.md\n@@ -0,0 +1,2 @@\n+one\n+two\n"));
        let r = rewrite_file("README.md", "a\n", "b\nc\n");
        assert!(r.contains("@@ -1,1 +1,2 @@\n-a\n+b\n+c\n"));
    }
}
