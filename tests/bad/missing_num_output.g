# The InnerProduct layer's inner_product_param has no `num_output`.
name: "mlp"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "fc1"  type: "InnerProduct"
  bottom: "data"  top: "fc1"
  inner_product_param { weight_filler { type: "xavier" } }
}
