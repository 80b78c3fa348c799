# A Convolution reads the 2-D output of an InnerProduct; it needs a 4-D N×C×H×W bottom.
name: "convnet"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "fc1"  type: "InnerProduct"
  bottom: "data"  top: "fc1"
  inner_product_param { num_output: 6272 }
}
layer {
  name: "conv2"  type: "Convolution"
  bottom: "fc1"  top: "conv2"
  convolution_param { num_output: 64 kernel_size: 5 pad: 2 }
}
