# Phase "train_b" minimizes loss_a, which does not depend on branch b that it updates.
name: "two_heads"
layer {
  name: "data"  type: "Data"
  top: "data"  top: "label"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "fc_a"  type: "InnerProduct"
  bottom: "data"  top: "fc_a"
  inner_product_param { num_output: 10 }
}
layer {
  name: "fc_b"  type: "InnerProduct"
  bottom: "data"  top: "fc_b"
  inner_product_param { num_output: 10 }
}
layer {
  name: "loss_a"  type: "SoftmaxWithLoss"
  bottom: "fc_a"  bottom: "label"  top: "loss_a"
}
layer {
  name: "loss_b"  type: "SoftmaxWithLoss"
  bottom: "fc_b"  bottom: "label"  top: "loss_b"
}
solver {
  max_iter: 1000
  phase {
    name: "train_a"
    loss { blob: "loss_a" }
    update: "fc_a"
    type: "SGD" base_lr: 0.01
  }
  phase {
    name: "train_b"
    loss { blob: "loss_a" }
    update: "fc_b"
    type: "SGD" base_lr: 0.01
  }
}
