# A ReLU layer is given pooling_param, which belongs to Pooling layers.
name: "convnet"
layer {
  name: "data"  type: "Data"
  top: "data"
  data_param { source: "mnist_train_lmdb" batch_size: 64 }
}
layer {
  name: "relu1"  type: "ReLU"
  bottom: "data"  top: "relu1"
  pooling_param { pool: MAX kernel_size: 2 }
}
