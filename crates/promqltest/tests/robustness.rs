//! Arbitrary scripts must yield a summary, never a panic.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_scripts_never_panic(s in "(load 1m\n  m [0-9 x+_-]{0,12}\n\n|eval instant at [0-9]m [a-z(){}\\[\\]0-9 ]{0,12}\n  [{}a-z0-9 ]{0,8}\n\n|clear\n|expect [a-z]{0,6}\n){0,5}") {
        let _ = cairn_promqltest::run_script(std::path::Path::new("x.test"), &s);
    }
}
