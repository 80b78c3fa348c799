# The optional field `bias_trem` is a typo for `bias_term`.
name: "mlp"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "fc1"  type: "InnerProduct"
  bottom: "data"  top: "fc1"
  inner_product_param { num_output: 10 bias_trem: false }
}
