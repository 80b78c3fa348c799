//! Host-side launch logic of the CUDA kernels, all testable without a GPU: the strided views the
//! kernels index with (the `View` of prelude.cuh, same layout), built from the plan's shapes for
//! broadcasts, slices and reductions; the launch configuration; and the cache of compiled kernels.

use std::collections::HashMap;

use super::codegen::{translation_unit, KernelSource};

/// The most axes a [`View`] describes (`MAX_RANK` in prelude.cuh).
pub const MAX_RANK: usize = 8;

/// A strided view, laid out as prelude.cuh's `struct View`: element `i` (row-major over `size`)
/// sits at `Σ coordinate_d · stride_d`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    /// Number of axes used.
    pub rank: i32,
    /// Elements along each axis.
    pub size: [i64; MAX_RANK],
    /// Memory distance between neighbours along each axis (0 repeats an element).
    pub stride: [i64; MAX_RANK],
}

impl View {
    /// The view over `sizes` with `strides`; `None` beyond [`MAX_RANK`] axes.
    pub fn new(sizes: &[usize], strides: &[i64]) -> Option<Self> {
        if sizes.len() > MAX_RANK {
            return None;
        }
        let mut view = View { rank: sizes.len() as i32, size: [1; MAX_RANK], stride: [0; MAX_RANK] };
        for (d, (size, stride)) in sizes.iter().zip(strides).enumerate() {
            view.size[d] = *size as i64;
            view.stride[d] = *stride;
        }
        Some(view)
    }

    /// Row-major strides of `shape`.
    pub fn contiguous(shape: &[usize]) -> Vec<i64> {
        let mut strides = vec![0i64; shape.len()];
        let mut step = 1i64;
        for d in (0..shape.len()).rev() {
            strides[d] = step;
            step *= shape[d] as i64;
        }
        strides
    }

    /// How the `gather` kernel reads an input of shape `input` broadcast to `output`: input axis
    /// `i` is output axis `dims[i]` (equal size, or 1 and repeated); other output axes repeat.
    pub fn broadcast(input: &[usize], output: &[usize], dims: &[usize]) -> Option<Self> {
        let input_strides = Self::contiguous(input);
        let mut strides = vec![0i64; output.len()];
        for (i, &d) in dims.iter().enumerate() {
            strides[d] = if input[i] == 1 { 0 } else { input_strides[i] };
        }
        Self::new(output, &strides)
    }

    /// How the `reduce` kernels walk an input of shape `shape` reduced over the sorted `axes`:
    /// the kept axes (whose row-major order numbers the outputs) and the reduced ones, each with
    /// the input's strides, and the number of elements summed per output.
    pub fn reduction(shape: &[usize], axes: &[usize]) -> Option<(Self, Self, u64)> {
        let strides = Self::contiguous(shape);
        let pick = |reduced: bool| -> (Vec<usize>, Vec<i64>) {
            (0..shape.len()).filter(|d| axes.contains(d) == reduced).map(|d| (shape[d], strides[d])).unzip()
        };
        let ((kept_sizes, kept_strides), (red_sizes, red_strides)) = (pick(false), pick(true));
        let count = red_sizes.iter().product::<usize>() as u64;
        Some((Self::new(&kept_sizes, &kept_strides)?, Self::new(&red_sizes, &red_strides)?, count))
    }

    /// The offset of element `i`, as prelude.cuh's `offset_of` computes it.
    pub fn offset(&self, mut i: u64) -> i64 {
        let mut offset = 0;
        for d in (0..self.rank as usize).rev() {
            offset += (i % self.size[d] as u64) as i64 * self.stride[d];
            i /= self.size[d] as u64;
        }
        offset
    }
}

/// Pooling geometry, laid out as kernels.cu's `struct Pool`: input h×w, output ho×wo, window,
/// stride, padding, and `max` (1 for MAX, 0 for AVE).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    pub h: i32,
    pub w: i32,
    pub ho: i32,
    pub wo: i32,
    pub kh: i32,
    pub kw: i32,
    pub sh: i32,
    pub sw: i32,
    pub ph: i32,
    pub pw: i32,
    pub max: i32,
}

/// Convolution geometry of one image, laid out as kernels.cu's `struct Conv`: c×h×w input,
/// kh×kw window, stride, padding, ho×wo output.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub c: i32,
    pub h: i32,
    pub w: i32,
    pub kh: i32,
    pub kw: i32,
    pub sh: i32,
    pub sw: i32,
    pub ph: i32,
    pub pw: i32,
    pub ho: i32,
    pub wo: i32,
}

/// Threads per block of every kernel.
pub const BLOCK: u32 = 256;

/// Threads per output of the kernels that give each output a block: prelude.cuh's `WIDE_BLOCK`,
/// which sizes their shared memory, so every block must have exactly this many threads.
pub const WIDE_BLOCK: u32 = BLOCK;

/// Grid and block sizes for `n` outputs on a device with `multiprocessors` SMs: enough blocks to
/// cover `n` up to 32 per SM (the kernels loop grid-stride over the rest), at least one.
pub fn launch_config(n: u64, multiprocessors: u32) -> (u32, u32) {
    let needed = n.div_ceil(BLOCK as u64).max(1);
    let cap = (multiprocessors.max(1) as u64) * 32;
    (needed.min(cap) as u32, BLOCK)
}

/// Loaded kernels by name (generated names hash their source), so that each distinct kernel is
/// compiled once per device however many nodes and programs use it. `F` is the loaded form: a
/// CUDA function handle on a device, anything in tests.
#[derive(Debug)]
pub struct KernelCache<F> {
    loaded: HashMap<String, F>,
    compilations: usize,
}

impl<F> Default for KernelCache<F> {
    fn default() -> Self {
        KernelCache { loaded: HashMap::new(), compilations: 0 }
    }
}

impl<F> KernelCache<F> {
    /// Loads those of `kernels` not yet cached: `compile` gets one translation unit holding all
    /// of them and their names, and returns each one's loaded form in that order. Nothing is
    /// compiled when all are cached.
    pub fn load<E>(
        &mut self,
        kernels: &[KernelSource],
        compile: impl FnOnce(&str, &[&str]) -> Result<Vec<F>, E>,
    ) -> Result<(), E> {
        let missing: Vec<KernelSource> =
            kernels.iter().filter(|k| !self.loaded.contains_key(&k.name)).cloned().collect();
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = missing.iter().map(|k| k.name.as_str()).collect();
        let loaded = compile(&translation_unit(&missing), &names)?;
        self.compilations += 1;
        self.loaded.extend(names.iter().map(|n| n.to_string()).zip(loaded));
        Ok(())
    }

    /// Loads a whole translation unit (the hand-written kernels) under its entry points' names.
    pub fn load_unit<E>(
        &mut self,
        source: &str,
        compile: impl FnOnce(&str, &[&str]) -> Result<Vec<F>, E>,
    ) -> Result<(), E> {
        let names = super::entry_points(source);
        let loaded = compile(source, &names)?;
        self.compilations += 1;
        self.loaded.extend(names.iter().map(|n| n.to_string()).zip(loaded));
        Ok(())
    }

    /// The loaded kernel `name`.
    pub fn get(&self, name: &str) -> Option<&F> {
        self.loaded.get(name)
    }

    /// How many times the cache has compiled.
    pub fn compilations(&self) -> usize {
        self.compilations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{execute, NoiseKey, View as CpuView};
    use crate::ops::ReduceOp;
    use crate::Kernel;

    fn values(n: usize) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.37).sin()).collect()
    }

    #[test]
    fn broadcast_views_read_what_the_cpu_kernel_writes() {
        // (input shape, output shape, dims)
        let cases: [(&[usize], &[usize], &[usize]); 4] =
            [(&[3], &[2, 3], &[1]), (&[4], &[2, 4, 3, 3], &[1]), (&[2, 1], &[2, 5], &[0, 1]), (&[], &[3, 2], &[])];
        for (input, output, dims) in cases {
            let x = values(input.iter().product());
            let mut expected = vec![0.0; output.iter().product()];
            let view = [CpuView { data: &x, shape: input }];
            let kernel = Kernel::Broadcast { dims: dims.to_vec() };
            execute(&kernel, &view, &mut expected, output, &NoiseKey { seed: 0, draw: 0 });
            let v = View::broadcast(input, output, dims).unwrap();
            let gathered: Vec<f32> = (0..expected.len() as u64).map(|i| x[v.offset(i) as usize]).collect();
            assert_eq!(gathered, expected, "{input:?} -> {output:?} by {dims:?}");
        }
    }

    #[test]
    fn reduction_views_sum_what_the_cpu_kernel_sums() {
        let shape = [3, 4, 5, 2];
        let x = values(shape.iter().product());
        for axes in [vec![0], vec![1, 3], vec![0, 2, 3], vec![0, 1, 2, 3]] {
            let out_len: usize = (0..4).filter(|d| !axes.contains(d)).map(|d| shape[d]).product();
            let mut expected = vec![0.0; out_len];
            let out_shape: Vec<usize> = (0..4).filter(|d| !axes.contains(d)).map(|d| shape[d]).collect();
            let kernel = Kernel::Reduce { op: ReduceOp::Sum, axes: axes.clone() };
            execute(
                &kernel,
                &[CpuView { data: &x, shape: &shape }],
                &mut expected,
                &out_shape,
                &NoiseKey { seed: 0, draw: 0 },
            );
            let (kept, reduced, count) = View::reduction(&shape, &axes).unwrap();
            for (i, e) in expected.iter().enumerate() {
                let base = kept.offset(i as u64);
                let sum: f64 = (0..count).map(|j| x[(base + reduced.offset(j)) as usize] as f64).sum();
                assert!((sum as f32 - e).abs() <= 1e-6, "axes {axes:?} output {i}: {sum} vs {e}");
            }
        }
    }

    #[test]
    fn views_beyond_the_rank_limit_are_refused() {
        assert!(View::broadcast(&[1], &[1; 9], &[0]).is_none());
    }

    #[test]
    fn the_wide_block_is_the_preludes() {
        assert!(crate::cuda::PRELUDE.contains(&format!("#define WIDE_BLOCK {WIDE_BLOCK}\n")));
        assert!(WIDE_BLOCK.is_power_of_two(), "block_sum halves the block");
    }

    #[test]
    fn launches_cover_small_outputs_and_cap_large_ones() {
        assert_eq!(launch_config(0, 132), (1, BLOCK));
        assert_eq!(launch_config(1000, 132), (4, BLOCK));
        assert_eq!(launch_config(1 << 30, 132), (132 * 32, BLOCK));
    }

    #[test]
    fn the_cache_compiles_missing_kernels_once_in_one_unit() {
        use crate::cuda::codegen::bias_activation_kernel;
        use crate::ops::{UnaryOp, F32};
        let (a, b) = (bias_activation_kernel(None), bias_activation_kernel(Some(UnaryOp::Tanh)));
        let c = bias_activation_kernel(Some(UnaryOp::LeakyRelu(F32::new(0.1))));
        let mut cache: KernelCache<String> = KernelCache::default();
        let compile = |unit: &str, names: &[&str]| -> Result<Vec<String>, ()> {
            assert!(names.iter().all(|n| unit.contains(&format!("void {n}("))), "{names:?} not all in the unit");
            Ok(names.iter().map(|n| format!("loaded {n}")).collect())
        };
        cache.load(&[a.clone(), b.clone()], compile).unwrap();
        cache.load(&[a.clone(), b.clone()], |_, _| Err(())).unwrap();
        assert_eq!(cache.compilations(), 1);
        assert_eq!(cache.get(&b.name).map(String::as_str), Some(format!("loaded {}", b.name).as_str()));
        cache
            .load(&[a.clone(), c.clone()], |_, names: &[&str]| {
                assert_eq!(names, [c.name.as_str()]);
                Ok::<_, ()>(vec!["c".to_string()])
            })
            .unwrap();
        assert_eq!(cache.compilations(), 2);
        let rejected = bias_activation_kernel(Some(UnaryOp::Exp));
        assert!(cache.load(std::slice::from_ref(&rejected), |_, _| Err("rejected")).is_err());
        assert!(cache.get(&rejected.name).is_none());
        assert_eq!(cache.compilations(), 2);
    }
}
