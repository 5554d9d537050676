//! results/fcn-warmup comes from this code: its first training steps rerun now
//! give the committed losses (untrainable_test_support::committed).

untrainable_test_support::committed_results_test!(
    "exp-fcn-warmup",
    "fcn-warmup",
    ["train.max_steps"],
    requires untrainable_test_support::fashion_mnist_installed()
);
