# The convolution's pad of 99999999 makes its output too large to count (found by tests/fuzz.rs).
name: "convnet"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "conv1"  type: "Convolution"
  bottom: "data"  top: "conv1"
  convolution_param { num_output: 64 kernel_size: 5 pad: 99999999 }
}
layer {
  name: "fc1"  type: "InnerProduct"
  bottom: "conv1"  top: "fc1"
  inner_product_param { num_output: 10 }
}
