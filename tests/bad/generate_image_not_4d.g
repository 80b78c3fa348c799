# The generated image "flat" is 64x784, not N×C×H×W.
name: "gen"
layer {
  name: "noise"  type: "DummyData"
  top: "noise"
  dummy_data_param {
    shape { dim: 64 dim: 100 }
    data_filler { type: "gaussian" std: 1 }
  }
}
layer {
  name: "fc"  type: "InnerProduct"
  bottom: "noise"  top: "flat"
  inner_product_param { num_output: 784 }
}
generate {
  image: "flat"
  latent: "noise"
}
