# The blob "fc" is the top of two different layers (not in place).
name: "mlp"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "fc1"  type: "InnerProduct"
  bottom: "data"  top: "fc"
  inner_product_param { num_output: 100 }
}
layer {
  name: "fc2"  type: "InnerProduct"
  bottom: "data"  top: "fc"
  inner_product_param { num_output: 100 }
}
