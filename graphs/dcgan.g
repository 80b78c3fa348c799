# DC-GAN on MNIST.
#
# Follows jacobgil/keras-dcgan (dcgan.py): a fully connected + upsampling-convolution generator
# with tanh activations and one BatchNorm, a convolution + max-pooling discriminator with tanh
# activations, uniform noise U(-1, 1)^100, batch 128, images scaled to [-1, 1], both networks
# trained by SGD with Nesterov momentum (lr 0.0005, momentum 0.9), alternating one
# discriminator step and one generator step. The generator step uses the non-saturating loss
# -log D(G(z)) (the Keras code trains the stacked G+D model on labels 1).
#
# Parameters (weights + biases; BatchNorm running statistics are state, not counted):
#   generator      6,751,233  fc1 103,424  fc2 6,428,800  bn2 scale 12,544  conv3 204,864
#                             conv4 1,601
#   discriminator  3,485,441  conv1 1,664  conv2 204,928  fc3 3,277,824  fc4 1,025
#   total         10,236,674
#
# Kernels are Glorot-uniform (Keras's default): Caffe's xavier filler with variance_norm AVERAGE
# draws U(-a, a) with a = sqrt(6 / (fan_in + fan_out)). Biases start at 0.

name: "mnist_dcgan"

# ---- generator: z (100) -> image 1 x 28 x 28 in [-1, 1] --------------------------------------

subnet {
  name: "generator"
  input: "z"
  output: "image"

  layer {
    name: "fc1"  type: "InnerProduct"
    bottom: "z"  top: "fc1"
    inner_product_param {
      num_output: 1024
      weight_filler { type: "xavier" variance_norm: AVERAGE }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "fc1_tanh" type: "TanH" bottom: "fc1" top: "fc1" }

  layer {
    name: "fc2"  type: "InnerProduct"
    bottom: "fc1"  top: "fc2"
    inner_product_param {
      num_output: 6272                         # 128 x 7 x 7
      weight_filler { type: "xavier" variance_norm: AVERAGE }
      bias_filler { type: "constant" value: 0 }
    }
  }
  # Keras BatchNormalization defaults: momentum 0.99, epsilon 0.001; gamma 1, beta 0.
  layer {
    name: "bn2"  type: "BatchNorm"
    bottom: "fc2"  top: "fc2"
    batch_norm_param { moving_average_fraction: 0.99 eps: 0.001 }
  }
  layer {
    name: "bn2_scale"  type: "Scale"             # the learned scale (gamma) and shift (beta)
    bottom: "fc2"  top: "fc2"
    scale_param {
      bias_term: true
      filler { type: "constant" value: 1 }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "fc2_tanh" type: "TanH" bottom: "fc2" top: "fc2" }
  layer {
    name: "fc2_reshape"  type: "Reshape"
    bottom: "fc2"  top: "fc2_reshape"
    reshape_param { shape { dim: 0 dim: 128 dim: 7 dim: 7 } }
  }

  layer {
    name: "up3"  type: "Upsample"              # 7 -> 14
    bottom: "fc2_reshape"  top: "up3"
    upsample_param { scale: 2 }
  }
  layer {
    name: "conv3"  type: "Convolution"
    bottom: "up3"  top: "conv3"
    convolution_param {
      num_output: 64  kernel_size: 5  pad: 2     # 'same'
      weight_filler { type: "xavier" variance_norm: AVERAGE }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "conv3_tanh" type: "TanH" bottom: "conv3" top: "conv3" }

  layer {
    name: "up4"  type: "Upsample"              # 14 -> 28
    bottom: "conv3"  top: "up4"
    upsample_param { scale: 2 }
  }
  layer {
    name: "conv4"  type: "Convolution"
    bottom: "up4"  top: "conv4"
    convolution_param {
      num_output: 1  kernel_size: 5  pad: 2      # 'same'
      weight_filler { type: "xavier" variance_norm: AVERAGE }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "image" type: "TanH" bottom: "conv4" top: "image" }
}

# ---- discriminator: image 1 x 28 x 28 -> logit (pre-sigmoid) ---------------------------------

subnet {
  name: "discriminator"
  input: "image"
  output: "logit"

  layer {
    name: "conv1"  type: "Convolution"
    bottom: "image"  top: "conv1"
    convolution_param {
      num_output: 64  kernel_size: 5  pad: 2     # 'same': 28 x 28
      weight_filler { type: "xavier" variance_norm: AVERAGE }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "conv1_tanh" type: "TanH" bottom: "conv1" top: "conv1" }
  layer {
    name: "pool1"  type: "Pooling"             # 28 -> 14
    bottom: "conv1"  top: "pool1"
    pooling_param { pool: MAX kernel_size: 2 stride: 2 }
  }

  layer {
    name: "conv2"  type: "Convolution"
    bottom: "pool1"  top: "conv2"
    convolution_param {
      num_output: 128  kernel_size: 5  pad: 0    # 'valid': 14 -> 10
      weight_filler { type: "xavier" variance_norm: AVERAGE }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "conv2_tanh" type: "TanH" bottom: "conv2" top: "conv2" }
  layer {
    name: "pool2"  type: "Pooling"             # 10 -> 5: 128 x 5 x 5 = 3200
    bottom: "conv2"  top: "pool2"
    pooling_param { pool: MAX kernel_size: 2 stride: 2 }
  }

  layer {
    name: "fc3"  type: "InnerProduct"          # flattens 3200
    bottom: "pool2"  top: "fc3"
    inner_product_param {
      num_output: 1024
      weight_filler { type: "xavier" variance_norm: AVERAGE }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "fc3_tanh" type: "TanH" bottom: "fc3" top: "fc3" }

  layer {
    name: "fc4"  type: "InnerProduct"
    bottom: "fc3"  top: "logit"                # the Keras model's sigmoid is in the loss
    inner_product_param {
      num_output: 1
      weight_filler { type: "xavier" variance_norm: AVERAGE }
      bias_filler { type: "constant" value: 0 }
    }
  }
}

# ---- inputs ---------------------------------------------------------------------------------

layer {
  name: "data"  type: "Data"
  top: "data"
  transform_param { mean_value: 127.5 scale: 0.0078431372549 }   # (x - 127.5) / 127.5
  data_param { source: "mnist_train_lmdb" backend: LMDB batch_size: 128 }
}
layer {
  name: "noise"  type: "DummyData"
  top: "noise"
  dummy_data_param {
    shape { dim: 128 dim: 100 }
    data_filler { type: "uniform" min: -1 max: 1 }
  }
}
layer {
  name: "ones"  type: "DummyData"              # label "real"
  top: "ones"
  dummy_data_param {
    shape { dim: 128 dim: 1 }
    data_filler { type: "constant" value: 1 }
  }
}
layer {
  name: "zeros"  type: "DummyData"             # label "fake"
  top: "zeros"
  dummy_data_param {
    shape { dim: 128 dim: 1 }
    data_filler { type: "constant" value: 0 }
  }
}

# ---- generator and discriminator applications -----------------------------------------------

layer {
  name: "gen"  type: "Subnet"
  bottom: "noise"  top: "fake"
  subnet_param { name: "generator" }
}
layer {
  name: "d_real"  type: "Subnet"
  bottom: "data"  top: "d_real_logit"
  subnet_param { name: "discriminator" }
}
layer {
  name: "d_fake"  type: "Subnet"
  bottom: "fake"  top: "d_fake_logit"
  subnet_param { name: "discriminator" }
}

# ---- losses ---------------------------------------------------------------------------------
# The solver phases name the losses they minimize, so no loss_weight is set here.

layer {
  name: "d_real_loss"  type: "SigmoidCrossEntropyLoss"   # -log D(x)
  bottom: "d_real_logit"  bottom: "ones"
  top: "d_real_loss"
}
layer {
  name: "d_fake_loss"  type: "SigmoidCrossEntropyLoss"   # -log(1 - D(G(z)))
  bottom: "d_fake_logit"  bottom: "zeros"
  top: "d_fake_loss"
}
layer {
  name: "g_loss"  type: "SigmoidCrossEntropyLoss"        # -log D(G(z)), non-saturating
  bottom: "d_fake_logit"  bottom: "ones"
  top: "g_loss"
}

# ---- logging: D's probabilities -------------------------------------------------------------

layer { name: "d_real_prob" type: "Sigmoid" bottom: "d_real_logit" top: "d_real_prob" }
layer { name: "d_fake_prob" type: "Sigmoid" bottom: "d_fake_logit" top: "d_fake_prob" }

generate {
  image: "fake"          # in [-1, 1]
  latent: "noise"
}

# ---- solver ---------------------------------------------------------------------------------

solver {
  random_seed: 1
  # 1,500 iterations of 128 images: 192,000 examples, 21 passes over the bundled 9,000 digits,
  # about 25 minutes on 2 cores (keras-dcgan runs 100 epochs of MNIST's 60,000, far out of reach
  # of a CPU; `--max-steps` sets any other length).
  max_iter: 1500
  display: 50
  snapshot: 250
  phase {
    name: "discriminator"
    steps: 1
    loss { blob: "d_real_loss" weight: 1 }
    loss { blob: "d_fake_loss" weight: 1 }
    update: "discriminator"
    type: "Nesterov" base_lr: 0.0005 momentum: 0.9
  }
  phase {
    name: "generator"
    steps: 1
    loss { blob: "g_loss" weight: 1 }
    # Saturating alternative (the original minimax game): instead of g_loss, minimize
    # log(1 - D(G(z))) = -d_fake_loss, whose gradient vanishes while D rejects the fakes:
    # loss { blob: "d_fake_loss" weight: -1 }
    update: "generator"
    type: "Nesterov" base_lr: 0.0005 momentum: 0.9
  }
}
