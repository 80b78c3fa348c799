# The solver phase type "Adma" is a typo for "Adam".
name: "mlp"
layer {
  name: "data"  type: "Data"
  top: "data"  top: "label"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "fc1"  type: "InnerProduct"
  bottom: "data"  top: "fc1"
  inner_product_param { num_output: 10 }
}
layer {
  name: "loss"  type: "SoftmaxWithLoss"
  bottom: "fc1"  bottom: "label"  top: "loss"
}
solver {
  max_iter: 1000
  phase { name: "train" type: "Adma" base_lr: 0.001 }
}
