# The layer type "Convlution" is a typo for "Convolution".
name: "convnet"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "conv1"  type: "Convlution"
  bottom: "data"  top: "conv1"
  convolution_param { num_output: 20 kernel_size: 5 }
}
