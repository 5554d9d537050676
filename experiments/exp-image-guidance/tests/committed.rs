//! results/image-guidance comes from this code: its first training steps rerun now
//! give the committed losses (untrainable_test_support::committed).

untrainable_test_support::committed_results_test!(
    "exp-image-guidance",
    "image-guidance",
    ["train.max_steps", "guide_train.max_steps"],
    requires untrainable_test_support::fashion_mnist_installed()
);
