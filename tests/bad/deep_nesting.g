# Blocks nested deeper than the compiler accepts (more than 64 levels).
name: "deep"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { batch_size: 1 }
  a { a { a { a { a { a { a { a { a { a {
  a { a { a { a { a { a { a { a { a { a {
  a { a { a { a { a { a { a { a { a { a {
  a { a { a { a { a { a { a { a { a { a {
  a { a { a { a { a { a { a { a { a { a {
  a { a { a { a { a { a { a { a { a { a {
  a { a { a { a { a { a { a { a { a { a {
  } } } } } } } } } }
  } } } } } } } } } }
  } } } } } } } } } }
  } } } } } } } } } }
  } } } } } } } } } }
  } } } } } } } } } }
  } } } } } } } } } }
}
