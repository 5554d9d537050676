//! results/lm comes from this code: its first training steps rerun now
//! give the committed losses (untrainable_test_support::committed).

untrainable_test_support::committed_results_test!(
    "exp-lm",
    "lm",
    ["train.max_steps", "guide_train.max_steps"],
    requires untrainable_test_support::real_data_dir(&untrainable_tasks::sotu::SOURCE).is_some()
);
