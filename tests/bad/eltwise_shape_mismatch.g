# Eltwise SUM of a 64x10 blob and a 64x2 blob.
name: "residual"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "fc_a"  type: "InnerProduct"
  bottom: "data"  top: "a"
  inner_product_param { num_output: 10 }
}
layer {
  name: "fc_b"  type: "InnerProduct"
  bottom: "data"  top: "b"
  inner_product_param { num_output: 2 }
}
layer {
  name: "sum"  type: "Eltwise"
  bottom: "a"  bottom: "b"  top: "sum"
  eltwise_param { operation: SUM }
}
