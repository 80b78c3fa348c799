//! graphc-runtime: tensors and the backends that execute compiled graphs.
//!
//! This crate knows nothing of the graph language or the IR. Today it holds the tensor type the
//! backends will share; the CPU backend (and later CUDA) arrive with the execution-plan work.

/// A dense, row-major `f32` tensor of any rank.
pub type Tensor = ndarray::ArrayD<f32>;

/// A zero-filled tensor of the given shape.
pub fn zeros(shape: &[usize]) -> Tensor {
    Tensor::zeros(ndarray::IxDyn(shape))
}

#[cfg(test)]
mod tests {
    #[test]
    fn zeros_has_the_shape_asked_for() {
        let t = super::zeros(&[2, 3]);
        assert_eq!(t.shape(), &[2, 3]);
        assert!(t.iter().all(|v| *v == 0.0));
    }
}
