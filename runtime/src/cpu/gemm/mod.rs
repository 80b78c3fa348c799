//! The one matrix product every kernel goes through: a packed, blocked GEMM with micro-kernels
//! for AVX-512, AVX2+FMA and a portable fallback, chosen at run time ([`Isa::best`]).
//!
//! The loop nest is the classic one (Goto and van de Geijn): the k axis is cut into [`KC`]-deep
//! slices; for each slice a block of B (`KC`×up to [`NC`] columns) and of A ([`MC`] rows×`KC`) is
//! packed into panels, and the micro-kernel computes C tile by tile, the B panel staying in L1
//! while the A block streams from L2. Output blocks are independent tasks on the rayon pool.
//!
//! A product whose B is a transposed row-major matrix and the larger operand (x·Wᵀ, a fully
//! connected layer's forward pass) is computed as Cᵀ = W·xᵀ, with W read in place by the
//! micro-kernels instead of packed ([`transposed_product`]). A narrow product (at most
//! [`IN_PLACE_MAX_COLS`] columns, one image's convolution) whose A has contiguous rows reads A in
//! place too.
//!
//! A B that can pack itself more cheaply than a matrix it would first be written to (a
//! convolution's unfolded image) packs its own blocks ([`PackB`], [`sgemm_packing`]).
//!
//! Operands too large for the caches (a fully connected layer's weights, its weight gradient)
//! are prefetched as the kernels go, so that their memory traffic overlaps the arithmetic
//! ([`Streamed`]).
//!
//! Every element of C is one fused multiply-add chain over k in increasing order, cut at the same
//! multiples of [`KC`] whatever the blocking of m and n, so results are bit-identical for any
//! thread count, any task split and either formulation.

mod kernels;
mod pack;

use super::par::SharedOut;
use kernels::{ASource, LineStream, MicroKernel, Portable, Tile};
pub(crate) use pack::transpose;
use pack::{pack, AlignedScratch};
use rayon::prelude::*;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::OnceLock;

/// Depth of one k slice: a 32-column B panel of this depth is 32 KiB, within L1.
const KC: usize = 256;
/// Rows of A packed at once (rounded down to whole micro-panels): 240 KiB, within L2. Covering
/// the models' 128-row products in one block measured 10% faster than 120 rows (which repacks B).
const MC: usize = 240;
/// The widest block of B one task packs.
const NC: usize = 1024;
/// Multiply-adds below which a product runs on the calling thread, and the least work a task
/// gets: splitting smaller products costs more in scheduling than it saves.
const MIN_TASK_MACS: usize = 1 << 20;
/// The widest product whose A is read in place by the micro-kernels when its rows are contiguous.
/// Packing A pays when each packed row panel meets many B panels; in a narrow product (one
/// image's convolution, n = H·W) it meets few, and the strided reads cost less than the packing
/// (7–8% faster at 64×3200×196 and 128×1600×100; no gain, or a loss, at the wider shapes).
const IN_PLACE_MAX_COLS: usize = 256;
/// The cost of packing one row of A or one column of B, per unit of k, in multiply-adds: a
/// packed value costs about a cycle, in which the micro-kernel does 16 multiply-adds.
const PACK_COST: usize = 16;

/// A read-only strided matrix operand: element (i, j) is `data[i·row_stride + j·col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive columns.
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A contiguous row-major matrix with `cols` columns.
    pub fn row_major(data: &'a [f32], cols: usize) -> Self {
        Mat { data, row_stride: cols, col_stride: 1 }
    }

    /// The same storage read as the transposed matrix.
    pub fn t(self) -> Self {
        Mat { data: self.data, row_stride: self.col_stride, col_stride: self.row_stride }
    }

    /// Whether every element of a `rows`×`cols` matrix lies inside `data` (and the strides fit in
    /// `isize`).
    fn covers(&self, rows: usize, cols: usize) -> bool {
        let max_stride = isize::MAX as usize;
        if self.row_stride > max_stride || self.col_stride > max_stride {
            return false;
        }
        if rows == 0 || cols == 0 {
            return true;
        }
        let last = (rows - 1).checked_mul(self.row_stride).zip((cols - 1).checked_mul(self.col_stride));
        matches!(last, Some((r, c)) if r.checked_add(c).is_some_and(|i| i < self.data.len()))
    }
}

/// A B operand that packs its own blocks: a convolution's unfolded input, written straight into
/// the panel layout from the image, so that the unfolded matrix never exists in full.
pub trait PackB: Sync {
    /// Writes B's rows `ks` and columns `cols` into `dst` as panels of `width` columns: panel t
    /// (columns `cols.start + t·width` onwards) starts at `t·width·ks.len()` and holds, for each
    /// k in `ks` in order, `width` values. Lanes past `cols.end` in the last panel may be left as
    /// they are: the kernels compute those columns but never store them.
    fn pack(&self, ks: Range<usize>, cols: Range<usize>, width: usize, dst: &mut [f32]);
}

/// Where the micro-kernels read B.
#[derive(Clone, Copy)]
enum BOperand<'a> {
    /// A strided matrix, packed block by block.
    Strided(Mat<'a>),
    /// An operand that packs its own blocks.
    Packer(&'a dyn PackB),
}

impl BOperand<'_> {
    /// The cache lines of B(ks, cols), where B is a strided matrix with a contiguous axis (none
    /// for an empty block or an operand that packs itself).
    fn block_lines(&self, ks: Range<usize>, cols: Range<usize>) -> LineStream {
        match *self {
            _ if ks.is_empty() || cols.is_empty() => LineStream::NONE,
            BOperand::Strided(b) if b.col_stride == 1 => {
                let at = b.data[ks.start * b.row_stride + cols.start..].as_ptr();
                LineStream::block(at, ks.len(), cols.len(), b.row_stride)
            }
            BOperand::Strided(b) if b.row_stride == 1 => {
                let at = b.data[cols.start * b.col_stride + ks.start..].as_ptr();
                LineStream::block(at, cols.len(), ks.len(), b.col_stride)
            }
            _ => LineStream::NONE,
        }
    }
}

/// The micro-kernel families, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// 12×32 tiles in zmm registers (AVX-512F).
    Avx512,
    /// 6×16 tiles in ymm registers (AVX2 and FMA).
    Avx2,
    /// 4×16 tiles in plain arrays, vectorized by the compiler for the build's baseline.
    Portable,
}

impl Isa {
    /// Whether this CPU can run the family.
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx512 | Isa::Avx2 => false,
            Isa::Portable => true,
        }
    }

    /// Every family this CPU can run, best first.
    pub fn supported() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().filter(|isa| isa.is_supported()).collect()
    }

    /// The best family this CPU runs, detected once.
    pub fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| Isa::supported()[0])
    }

    /// The name benchmarks print, with the tile shape.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512f",
            Isa::Avx2 => "avx2+fma",
            Isa::Portable => "portable",
        }
    }
}

/// `c = a·b` (or `c += a·b` when `accumulate`), with `a` m×k, `b` k×n and `c` a contiguous
/// row-major m×n matrix, on the best micro-kernel this CPU runs.
///
/// # Panics
/// If an operand's storage is too small for its shape and strides.
pub fn sgemm(m: usize, n: usize, k: usize, a: Mat, b: Mat, c: &mut [f32], accumulate: bool) {
    sgemm_with(Isa::best(), m, n, k, a, b, c, accumulate)
}

/// [`sgemm`] on a chosen micro-kernel family (for tests and benchmarks).
///
/// # Panics
/// If an operand's storage is too small for its shape and strides, or the CPU does not support
/// `isa`.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_with(isa: Isa, m: usize, n: usize, k: usize, a: Mat, b: Mat, c: &mut [f32], accumulate: bool) {
    assert!(a.covers(m, k) && b.covers(k, n) && c.len() >= m * n, "sgemm operands too small for {m}×{k}·{k}×{n}");
    assert!(isa.is_supported(), "this CPU does not support the {} GEMM kernels", isa.name());
    if finished_without_terms(m, n, k, c, accumulate) {
        return;
    }
    if b.row_stride == 1 && a.col_stride == 1 && m < n {
        return transposed_product(isa, m, n, k, a, b, c, accumulate);
    }
    Product::new(m, n, k, a, BOperand::Strided(b), c, accumulate).run_on(isa);
}

/// `c = a·b` (or `c += a·b`) as [`sgemm`] computes it, bit for bit, with the k×n `b` packing
/// its own blocks.
///
/// # Panics
/// If A's or C's storage is too small for the shape.
pub fn sgemm_packing(m: usize, n: usize, k: usize, a: Mat, b: &dyn PackB, c: &mut [f32], accumulate: bool) {
    assert!(a.covers(m, k) && c.len() >= m * n, "sgemm operands too small for {m}×{k}·{k}×{n}");
    if !finished_without_terms(m, n, k, c, accumulate) {
        Product::new(m, n, k, a, BOperand::Packer(b), c, accumulate).run_on(Isa::best());
    }
}

/// Completes a product that has no multiply-adds (C empty, or k = 0: C zeroed unless
/// accumulating) and says whether it was one.
fn finished_without_terms(m: usize, n: usize, k: usize, c: &mut [f32], accumulate: bool) -> bool {
    if k == 0 && !accumulate {
        c[..m * n].fill(0.0);
    }
    m == 0 || n == 0 || k == 0
}

/// C = A·B when B's columns are contiguous (a transposed row-major matrix: x·Wᵀ), A's rows are,
/// and B is the larger: computed as Cᵀ = Bᵀ·Aᵀ into a scratch that is then transposed into C, so
/// that Bᵀ, read in place as the kernel's A operand (its rows are contiguous), is never packed,
/// and only the smaller Aᵀ is. Every element is the same multiply-add chain as in the direct
/// product, so the results are bit-identical to it; with `accumulate` the scratch starts as Cᵀ.
#[allow(clippy::too_many_arguments)]
fn transposed_product(isa: Isa, m: usize, n: usize, k: usize, a: Mat, b: Mat, c: &mut [f32], accumulate: bool) {
    let mut scratch = TRANSPOSED.take();
    scratch.resize(m * n, 0.0);
    if accumulate {
        transpose(c, m, n, &mut scratch);
    }
    let c_t = SharedOut(scratch.as_mut_ptr());
    let b_t = BOperand::Strided(a.t());
    Product { m: n, n: m, k, a: b.t(), b: b_t, c: c_t, accumulate, a_in_place: true }.run_on(isa);
    transpose(&scratch, n, m, c);
    TRANSPOSED.set(scratch);
}

impl<'a> Product<'a> {
    /// The product C (+)= A·B into `c`, with A read in place when it is narrow enough.
    #[allow(clippy::too_many_arguments)]
    fn new(m: usize, n: usize, k: usize, a: Mat<'a>, b: BOperand<'a>, c: &mut [f32], accumulate: bool) -> Self {
        let a_in_place = a.col_stride == 1 && n <= IN_PLACE_MAX_COLS;
        Product { m, n, k, a, b, c: SharedOut(c.as_mut_ptr()), accumulate, a_in_place }
    }

    /// Runs the product on `isa`'s micro-kernels.
    fn run_on(self, isa: Isa) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => self.run::<kernels::Avx512>(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => self.run::<kernels::Avx2>(),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx512 | Isa::Avx2 => unreachable!("checked by is_supported"),
            Isa::Portable => self.run::<Portable>(),
        }
    }
}

/// One checked product: the operands and where the result goes.
#[derive(Clone, Copy)]
struct Product<'a> {
    m: usize,
    n: usize,
    k: usize,
    a: Mat<'a>,
    b: BOperand<'a>,
    /// C's storage: tasks write disjoint blocks of it (see [`Product::run`]), and `sgemm_with`
    /// borrows C mutably until every task has finished.
    c: SharedOut,
    accumulate: bool,
    /// A's rows are read in place by the kernels (contiguous rows), not packed.
    a_in_place: bool,
}

thread_local! {
    /// Each thread's packing buffers (A block, B block), reused so that a product allocates
    /// nothing once a step has run.
    static PACKED: RefCell<(AlignedScratch, AlignedScratch)> = RefCell::default();
    /// The calling thread's Cᵀ of [`transposed_product`], reused likewise.
    static TRANSPOSED: RefCell<Vec<f32>> = RefCell::default();
}

/// Which operands of a product are too large to stay in cache, so that the kernels prefetch
/// them: without, packing a fully connected layer's weights waited on memory for a third of the
/// product (64×6272·6272×1024), and a 25 MB weight gradient's stores on each line of C.
#[derive(Clone, Copy)]
struct Streamed {
    /// A, read in place.
    a: bool,
    /// B, packed slice by slice.
    b: bool,
    /// C.
    c: bool,
}

/// The smallest operand, in bytes, that the kernels prefetch: larger than the L2 cache of the
/// CPUs we run on (2 MiB a core on Intel's server parts, 1 MiB on AMD's Zen 4). Smaller ones
/// stay in cache from one use to the next, where prefetching them would only take issue slots.
const STREAMED_BYTES: usize = 4 << 20;

impl Product<'_> {
    /// Which operands [`Streamed`] names, by their sizes.
    fn streamed(&self) -> Streamed {
        let large = |values: usize| values * size_of::<f32>() >= STREAMED_BYTES;
        Streamed {
            a: self.a_in_place && large(self.m * self.k),
            b: matches!(self.b, BOperand::Strided(_)) && large(self.k * self.n),
            c: large(self.m * self.n),
        }
    }

    /// Splits C into blocks of whole micro-panels and runs them as tasks: of all splits at least
    /// as fine as the cache blocking asks ([`MC`] rows, [`NC`] columns) into at most as many
    /// blocks as there are [`MIN_TASK_MACS`] of work (and at most 8 per thread), the one that
    /// finishes first on this pool, counting waves of tasks times the largest block's cost (its
    /// multiply-adds and the packing of its rows and columns, [`PACK_COST`] each); the fewest
    /// tasks among equals.
    fn run<K: MicroKernel>(self) {
        let (row_panels, col_panels) = (self.m.div_ceil(K::MR), self.n.div_ceil(K::NR));
        let (min_rows, min_cols) = (row_panels.div_ceil((MC / K::MR).max(1)), col_panels.div_ceil(NC / K::NR));
        let threads = rayon::current_num_threads().max(1);
        let most_tasks = (self.m * self.n * self.k / MIN_TASK_MACS).clamp(1, 8 * threads);
        let block_size =
            |blocks: usize, panels: usize, width: usize, len: usize| (panels.div_ceil(blocks) * width).min(len);
        let mut best = (usize::MAX, usize::MAX, min_rows, min_cols);
        for row_blocks in min_rows..=row_panels.min(min_rows.max(most_tasks)) {
            for col_blocks in min_cols..=col_panels.min(min_cols.max(most_tasks)) {
                let tasks = row_blocks * col_blocks;
                if tasks > most_tasks && tasks > min_rows * min_cols {
                    continue;
                }
                let rows = block_size(row_blocks, row_panels, K::MR, self.m);
                let cols = block_size(col_blocks, col_panels, K::NR, self.n);
                let finish = tasks.div_ceil(threads) * (rows * cols + PACK_COST * (rows + cols));
                best = best.min((finish, tasks, row_blocks, col_blocks));
            }
        }
        let (_, _, row_blocks, col_blocks) = best;
        // Blocks of nearly equal numbers of whole micro-panels.
        let rows_per_block = row_panels.div_ceil(row_blocks) * K::MR;
        let cols_per_block = col_panels.div_ceil(col_blocks) * K::NR;
        let row_blocks = self.m.div_ceil(rows_per_block);
        let tasks = row_blocks * self.n.div_ceil(cols_per_block);
        let block = |t: usize| {
            let (rb, cb) = (t % row_blocks, t / row_blocks);
            let rows = rb * rows_per_block..self.m.min((rb + 1) * rows_per_block);
            let cols = cb * cols_per_block..self.n.min((cb + 1) * cols_per_block);
            self.block::<K>(rows, cols);
        };
        if tasks == 1 {
            block(0);
        } else {
            (0..tasks).into_par_iter().for_each(block);
        }
    }

    /// C[rows, cols] (+)= A[rows, :]·B[:, cols], slice by slice of k.
    fn block<K: MicroKernel>(&self, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>) {
        // Taken out of the thread-local (and put back after), so that a task stolen while this one
        // runs cannot find the buffers borrowed.
        let (mut a_scratch, mut b_scratch) = PACKED.take();
        let (row_panels, col_panels) = (rows.len().div_ceil(K::MR), cols.len().div_ceil(K::NR));
        let streamed = self.streamed();
        for k0 in (0..self.k).step_by(KC) {
            let ks = k0..self.k.min(k0 + KC);
            let depth = ks.len();
            let packed_a = a_scratch.slice(if self.a_in_place { 0 } else { row_panels * K::MR * depth });
            let packed_b = b_scratch.slice(col_panels * K::NR * depth);
            match self.b {
                BOperand::Strided(b) => pack(b, ks.clone(), cols.clone(), K::NR, packed_b),
                BOperand::Packer(b) => b.pack(ks.clone(), cols.clone(), K::NR, packed_b),
            }
            if !self.a_in_place {
                pack(self.a.t(), ks.clone(), rows.clone(), K::MR, packed_a);
            }
            // While this slice's tiles run, B's block for the next slice comes into L2 line by
            // line, so that packing it reads from L2 instead of waiting on memory.
            let next_b = match streamed.b {
                true => self.b.block_lines(ks.end..self.k.min(ks.end + KC), cols.clone()),
                false => LineStream::NONE,
            };
            let tiles = col_panels * row_panels;
            let per_tile = next_b.count.div_ceil(tiles).min(depth / 2);
            for (jp, b_panel) in packed_b.chunks_exact(K::NR * depth).enumerate() {
                let j = cols.start + jp * K::NR;
                for ip in 0..row_panels {
                    let i = rows.start + ip * K::MR;
                    let a_panel = match self.a_in_place {
                        // Row i of A from column k0: `covers` checked it lies inside A's storage.
                        true => {
                            ASource::Rows(self.a.data[i * self.a.row_stride + ks.start..].as_ptr(), self.a.row_stride)
                        }
                        false => ASource::Packed(packed_a[ip * K::MR * depth..].as_ptr()),
                    };
                    let tile = Tile {
                        // SAFETY: (i, j) lies inside C: i < m and j < n.
                        c: unsafe { self.c.0.add(i * self.n + j) },
                        ldc: self.n,
                        rows: K::MR.min(rows.end - i),
                        cols: K::NR.min(cols.end - j),
                        accumulate: self.accumulate || k0 > 0,
                        prefetch: next_b.part((jp * row_panels + ip) * per_tile, per_tile),
                        prefetch_a: streamed.a,
                        prefetch_c: streamed.c,
                    };
                    // SAFETY: the packed panels hold depth·MR and depth·NR values, and A read in
                    // place has `tile.rows` rows of `depth` values from (i, k0) inside its storage
                    // (`covers`); the tile lies inside this task's block of C, which no other task
                    // writes; `sgemm_with` checked that the CPU runs K's instructions.
                    unsafe { K::tile(depth, a_panel, b_panel.as_ptr(), tile) };
                }
            }
        }
        PACKED.set((a_scratch, b_scratch));
    }
}
