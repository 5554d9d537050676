//! results/parity comes from this code: its first training steps rerun now
//! give the committed losses (untrainable_test_support::committed).

untrainable_test_support::committed_results_test!(
    "exp-parity",
    "parity",
    ["train.max_steps", "guide_train.max_steps"]
);
