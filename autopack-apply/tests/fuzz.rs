//! Arbitrary input as a patch never panics and never writes a ref, HEAD, the index or the
//! work tree; only patches that pass every rule may leave (unreferenced) objects behind.

mod common;

use autopack_apply::PatchPolicy;
use autopack_core::vocabulary::BuilderMode;
use common::{Fixture, Snapshot};
use proptest::prelude::*;

fn header_like() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "diff --git a/README b/README\n",
        "diff --git a/x b/x\n",
        "diff --git /etc/x /etc/x\n",
        "new file mode 100644\n",
        "new file mode 120000\n",
        "deleted file mode 100644\n",
        "old mode 100644\n",
        "new mode 100755\n",
        "--- a/README\n",
        "+++ b/README\n",
        "--- /dev/null\n",
        "+++ b/x\n",
        "+++ /etc/x\n",
        "@@ -1 +1 @@\n",
        "@@ -0,0 +1,2 @@\n",
        "-hello\n",
        "+bye\n",
        " hello\n",
        "\\ No newline at end of file\n",
        "rename from README\n",
        "rename to ../x\n",
        "similarity index 100%\n",
        "GIT binary patch\n",
        "index 0000000..e69de29\n",
    ]);
    prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
}

#[test]
fn arbitrary_patches_never_panic_or_write() {
    // One repository for every case: a check that wrote anything would show in the next.
    let fx = Fixture::new();
    let branch = fx.branch("fuzz");
    let before = Snapshot::take(fx.path());
    let tip = branch.tip().unwrap();
    let policy = PatchPolicy::for_mode(&BuilderMode::RefactorHeavy);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    });
    let strategy = (prop::collection::vec(any::<u8>(), 0..512), header_like());
    runner
        .run(&strategy, |(bytes, text)| {
            let _ = policy.check(&branch, &bytes);
            let _ = policy.check(&branch, text.as_bytes());
            let mut mixed = text.into_bytes();
            mixed.extend_from_slice(&bytes);
            let _ = policy.check(&branch, &mixed);
            prop_assert_eq!(branch.tip().unwrap(), tip);
            prop_assert!(Snapshot::take(fx.path()) == before, "the invariant broke");
            Ok(())
        })
        .unwrap();
    let repo = fx.repo();
    let refs: Vec<String> = repo
        .references()
        .unwrap()
        .map(|r| r.unwrap().name().unwrap().to_owned())
        .collect();
    assert_eq!(
        refs,
        vec![
            "refs/heads/autonomous/fuzz".to_owned(),
            "refs/heads/main".to_owned()
        ]
    );
}
