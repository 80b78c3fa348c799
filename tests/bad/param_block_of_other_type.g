# An InnerProduct layer is given convolution_param (a Convolution block) instead of inner_product_param.
name: "mlp"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "fc1"  type: "InnerProduct"
  bottom: "data"  top: "fc1"
  convolution_param { num_output: 500 }
}
