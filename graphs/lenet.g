# LeNet on MNIST, as Caffe's examples/mnist/lenet_train_test.prototxt defines it: two
# convolution + max-pooling stages, InnerProduct 500, ReLU, InnerProduct 10, SoftmaxWithLoss.
# `graphc eval` classifies generated digits with it: its softmax gives the classifier score, its
# 500 ReLU features the Fréchet distance.
#
# Solver as Caffe's lenet_solver.prototxt (SGD, lr 0.01, momentum 0.9, weight decay 5e-4,
# batch 64) but for a fixed learning rate (graphc has no lr_policy "inv" yet) and 1,500
# iterations: 96,000 examples, about 11 passes over the bundled 9,000 digits.

name: "LeNet"

layer {
  name: "mnist"  type: "Data"
  top: "data"  top: "label"
  transform_param { scale: 0.00390625 }
  data_param { source: "mnist_train_lmdb" backend: LMDB batch_size: 64 }
}
layer {
  name: "conv1"  type: "Convolution"
  bottom: "data"  top: "conv1"
  param { lr_mult: 1 }
  param { lr_mult: 2 }
  convolution_param {
    num_output: 20  kernel_size: 5  stride: 1
    weight_filler { type: "xavier" }
    bias_filler { type: "constant" }
  }
}
layer {
  name: "pool1"  type: "Pooling"
  bottom: "conv1"  top: "pool1"
  pooling_param { pool: MAX  kernel_size: 2  stride: 2 }
}
layer {
  name: "conv2"  type: "Convolution"
  bottom: "pool1"  top: "conv2"
  param { lr_mult: 1 }
  param { lr_mult: 2 }
  convolution_param {
    num_output: 50  kernel_size: 5  stride: 1
    weight_filler { type: "xavier" }
    bias_filler { type: "constant" }
  }
}
layer {
  name: "pool2"  type: "Pooling"
  bottom: "conv2"  top: "pool2"
  pooling_param { pool: MAX  kernel_size: 2  stride: 2 }
}
layer {
  name: "ip1"  type: "InnerProduct"
  bottom: "pool2"  top: "ip1"
  param { lr_mult: 1 }
  param { lr_mult: 2 }
  inner_product_param {
    num_output: 500
    weight_filler { type: "xavier" }
    bias_filler { type: "constant" }
  }
}
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer {
  name: "ip2"  type: "InnerProduct"
  bottom: "ip1"  top: "ip2"
  param { lr_mult: 1 }
  param { lr_mult: 2 }
  inner_product_param {
    num_output: 10
    weight_filler { type: "xavier" }
    bias_filler { type: "constant" }
  }
}
layer {
  name: "accuracy"  type: "Accuracy"
  bottom: "ip2"  bottom: "label"  top: "accuracy"
  include { phase: TEST }
}
layer {
  name: "loss"  type: "SoftmaxWithLoss"
  bottom: "ip2"  bottom: "label"  top: "loss"
}

solver {
  random_seed: 1
  max_iter: 1500
  display: 100
  snapshot: 500
  phase {
    name: "train"
    type: "SGD"
    base_lr: 0.01
    momentum: 0.9
    weight_decay: 0.0005
  }
}
