# A ReLU layer has two tops; it produces exactly one.
name: "mlp"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "fc1"  type: "InnerProduct"
  bottom: "data"  top: "fc1"
  inner_product_param { num_output: 10 }
}
layer { name: "relu1" type: "ReLU" bottom: "fc1" top: "relu1" top: "relu1b" }
