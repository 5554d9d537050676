//! results/image-guidance comes from this code: its first training steps rerun now
//! give the committed losses (untrainable_test_support::committed).

use untrainable_test_support::committed::first_steps_match_committed;

#[test]
#[ignore = "slow: reruns the first steps of every arm of the cpu preset"]
fn committed_results_are_those_of_this_code() {
    if !untrainable_test_support::fashion_mnist_installed() {
        return;
    }
    first_steps_match_committed(
        env!("CARGO_BIN_EXE_exp-image-guidance"),
        "image-guidance",
        &["train.max_steps", "guide_train.max_steps"],
    );
}
