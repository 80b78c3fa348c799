//! The CUDA backend's kernels, as CUDA C for NVRTC: the hand-written ones (`kernels.cu`) and
//! those generated from the IR's fused expressions ([`codegen`]). Nothing here needs a GPU or
//! the CUDA libraries; `device` loads them.

pub mod codegen;
#[cfg(feature = "cuda")]
pub mod exec;
pub mod launch;
pub mod lowering;

/// Definitions every kernel source starts with: the grid-stride loop, strided views.
pub const PRELUDE: &str = include_str!("prelude.cuh");

/// The hand-written kernels (compiled after [`PRELUDE`]).
pub const KERNELS: &str = include_str!("kernels.cu");

/// The hand-written kernels as one translation unit.
pub fn hand_written() -> String {
    format!("{PRELUDE}\n{KERNELS}")
}

/// The entry points of a CUDA C translation unit: its `extern "C" __global__` functions.
pub fn entry_points(source: &str) -> Vec<&str> {
    signatures(source).into_iter().map(|(name, _)| name).collect()
}

/// Each entry point of a translation unit with its parameters' types, qualifiers and names
/// dropped (`const float* __restrict__ x0` is `float*`, `u64 n` is `u64`).
pub fn signatures(source: &str) -> Vec<(&str, Vec<String>)> {
    source
        .split("extern \"C\" __global__ void ")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once('(')?;
            let (params, _) = rest.split_once(')')?;
            let types = params
                .split(',')
                .map(|param| {
                    let words: Vec<&str> =
                        param.split_whitespace().filter(|w| !matches!(*w, "const" | "__restrict__")).collect();
                    let (ty, name) = words.split_at(words.len().saturating_sub(1));
                    let stars = name.first().map_or(0, |n| n.matches('*').count());
                    format!("{}{}", ty.concat(), "*".repeat(stars))
                })
                .collect();
            Some((name.trim(), types))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_kernels_are_listed() {
        let names = entry_points(KERNELS);
        for expected in ["fill", "gather", "reduce", "softmax", "pool2d", "pool2d_grad", "im2col", "col2im", "accuracy"]
        {
            assert!(names.contains(&expected), "{expected} missing from {names:?}");
        }
    }

    #[test]
    fn signatures_keep_the_types_only() {
        let unit = "extern \"C\" __global__ void k(float* __restrict__ out, const float *x, u64 n, View v) {}";
        assert_eq!(signatures(unit), [("k", vec!["float*".into(), "float*".into(), "u64".into(), "View".into()])]);
    }
}
