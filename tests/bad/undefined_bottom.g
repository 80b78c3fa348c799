# The layer "decode1" reads "encode1nueron", a misspelling of the blob "encode1neuron".
name: "autoencoder"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "encode1"  type: "InnerProduct"
  bottom: "data"  top: "encode1"
  inner_product_param { num_output: 100 }
}
layer { name: "encode1neuron" type: "ReLU" bottom: "encode1" top: "encode1neuron" }
layer {
  name: "decode1"  type: "InnerProduct"
  bottom: "encode1nueron"  top: "decode1"
  inner_product_param { num_output: 784 }
}
