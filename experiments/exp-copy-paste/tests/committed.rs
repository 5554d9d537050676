//! results/copy-paste comes from this code: its first training steps rerun now
//! give the committed losses (untrainable_test_support::committed).

untrainable_test_support::committed_results_test!(
    "exp-copy-paste",
    "copy-paste",
    ["train.max_steps", "guide_train.max_steps"]
);
