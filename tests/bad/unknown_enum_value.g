# `pool: MIN` is not a pooling method (MAX or AVE).
name: "convnet"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "pool1"  type: "Pooling"
  bottom: "data"  top: "pool1"
  pooling_param { pool: MIN kernel_size: 2 stride: 2 }
}
