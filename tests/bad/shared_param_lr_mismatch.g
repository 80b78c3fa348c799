# Layers "fc_a" and "fc_b" share the weight "shared_w" with different lr_mult.
name: "siamese"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "fc_a"  type: "InnerProduct"
  bottom: "data"  top: "a"
  param { name: "shared_w" lr_mult: 1 }
  inner_product_param { num_output: 100 }
}
layer {
  name: "fc_b"  type: "InnerProduct"
  bottom: "data"  top: "b"
  param { name: "shared_w" lr_mult: 2 }
  inner_product_param { num_output: 100 }
}
