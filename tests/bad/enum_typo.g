# `operation: SUMM` is a typo for SUM.
name: "residual"
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
layer {
  name: "fc2"  type: "InnerProduct"
  bottom: "data"  top: "fc2"
  inner_product_param { num_output: 10 }
}
layer {
  name: "sum"  type: "Eltwise"
  bottom: "fc1"  bottom: "fc2"  top: "sum"
  eltwise_param { operation: SUMM }
}
