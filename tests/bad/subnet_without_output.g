# The sub-network "generator" has no `output`.
name: "gan"
subnet {
  name: "generator"
  input: "z"
  layer {
    name: "fc"  type: "InnerProduct"
    bottom: "z"  top: "fc"
    inner_product_param { num_output: 784 }
  }
}
