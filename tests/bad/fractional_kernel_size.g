# kernel_size is not an integer.
name: "convnet"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "conv1"  type: "Convolution"
  bottom: "data"  top: "conv1"
  convolution_param { num_output: 20 kernel_size: 2.5 }
}
