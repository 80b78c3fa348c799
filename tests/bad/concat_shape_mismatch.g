# Concat along channels of a 64x20x24x24 and a 64x20x12x12 blob: the spatial sizes differ.
name: "convnet"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "conv1"  type: "Convolution"
  bottom: "data"  top: "conv1"
  convolution_param { num_output: 20 kernel_size: 5 }
}
layer {
  name: "pool1"  type: "Pooling"
  bottom: "conv1"  top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 }
}
layer {
  name: "concat"  type: "Concat"
  bottom: "conv1"  bottom: "pool1"  top: "concat"
  concat_param { axis: 1 }
}
