# "fc1" reads the output of "fc2", which reads the output of "fc1": a cycle.
name: "loop"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "fc1"  type: "InnerProduct"
  bottom: "fc2"  top: "fc1"
  inner_product_param { num_output: 10 }
}
layer {
  name: "fc2"  type: "InnerProduct"
  bottom: "fc1"  top: "fc2"
  inner_product_param { num_output: 10 }
}
