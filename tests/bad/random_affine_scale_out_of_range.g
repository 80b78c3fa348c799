# A RandomAffine layer asked to resize by up to 150%: a size factor of 1 − 1.5 would be negative.
name: "augmented"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "jitter"  type: "RandomAffine"
  bottom: "data"  top: "jitter"
  random_affine_param { rotation: 10 scale: 1.5 }
}
