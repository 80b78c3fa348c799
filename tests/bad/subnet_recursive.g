# The sub-network "generator" applies itself.
name: "gan"
subnet {
  name: "generator"
  input: "z"
  output: "image"
  layer {
    name: "fc"  type: "InnerProduct"
    bottom: "z"  top: "fc"
    inner_product_param { num_output: 100 }
  }
  layer {
    name: "again"  type: "Subnet"
    bottom: "fc"  top: "image"
    subnet_param { name: "generator" }
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
  subnet_param { name: "generator" }
}
