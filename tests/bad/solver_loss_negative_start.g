# A loss term's start_iter is negative; it counts iterations from 0.
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
  phase {
    name: "train"
    loss { blob: "loss" start_iter: -100 }
    type: "SGD" base_lr: 0.01
  }
}
