# The Subnet layer applies "generater", a typo for the sub-network "generator".
name: "gan"
subnet {
  name: "generator"
  input: "z"
  output: "image"
  layer {
    name: "fc"  type: "InnerProduct"
    bottom: "z"  top: "fc"
    inner_product_param { num_output: 784 }
  }
  layer { name: "tanh" type: "TanH" bottom: "fc" top: "fc" }
  layer {
    name: "reshape"  type: "Reshape"
    bottom: "fc"  top: "image"
    reshape_param { shape { dim: 0 dim: 1 dim: 28 dim: 28 } }
  }
}
layer {
  name: "noise"  type: "DummyData"
  top: "noise"
  dummy_data_param {
    shape { dim: 64 dim: 100 }
    data_filler { type: "uniform" min: -1 max: 1 }
  }
}
layer {
  name: "gen"  type: "Subnet"
  bottom: "noise"  top: "fake"
  subnet_param { name: "generater" }
}
