# InfoGAN on MNIST.
#
# Follows openai/InfoGAN (the MNIST experiment: infogan/models/regularized_gan.py,
# infogan/algos/infogan_trainer.py, launchers/run_mnist_exp.py) and X. Chen et al., "InfoGAN:
# Interpretable Representation Learning by Information Maximizing Generative Adversarial Nets"
# (2016). Latent: 62 uniform noise variables, one 10-way categorical code and two continuous codes
# U(-1, 1); Q models the categorical code by a softmax and each continuous code by a Gaussian
# with a learned mean and std fixed at 1. The mutual-information lower bound (lambda = 1) is
# maximized by both D/Q and G. Images in [0, 1], batch 128. One change from the paper: Q reads
# the categorical code from a randomly warped copy of the fakes (`fake_warped` below), which
# makes the code values sort the digits by shape instead of by style.
#
# Parameters (weights + biases; BatchNorm running statistics are state, not counted):
#   generator  6,652,481  fc1 76,800  bn1 scale 2,048  fc2 6,428,800  bn2 scale 12,544
#                         deconv3 131,136  bn3 scale 128  deconv4 1,025
#   trunk      6,558,144  conv1 1,088  conv2 131,200  bn2 scale 256  fc3 6,423,552
#                         bn3 scale 2,048
#   D head         1,025  d_fc 1,025
#   Q head       133,004  q_fc1 131,200  q_bn1 scale 256  q_fc2 1,548
#   trunk + D head + Q head 6,692,173; total 13,344,654
#
# Weights N(0, 0.02), biases 0; BatchNorm scale (gamma) N(1, 0.02), shift (beta) 0, eps 1e-5.
# The generator's BatchNorm layers normalize by batch statistics when sampling too
# (use_global_stats: false), as the reference draws its samples (TensorFlow batch norm in training
# mode): with running statistics the same checkpoint scored 5.1 instead of 9.3 on `graphc eval`'s
# classifier score. The discriminator/Q trunk keeps running statistics at TEST;
# moving_average_fraction 0.9 (PyTorch's default momentum of 0.1) instead of Caffe's 0.999, which
# would take thousands of steps to forget the initial mean 0 and variance 1.

name: "mnist_infogan"

# ---- generator: z (74) -> image 1 x 28 x 28 in [0, 1] ----------------------------------------

subnet {
  name: "generator"
  input: "z"
  output: "image"

  layer {
    name: "fc1"  type: "InnerProduct"
    bottom: "z"  top: "fc1"
    inner_product_param {
      num_output: 1024
      weight_filler { type: "gaussian" std: 0.02 }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "bn1" type: "BatchNorm" bottom: "fc1" top: "fc1"
          batch_norm_param { eps: 0.00001 moving_average_fraction: 0.9
                             use_global_stats: false } }
  layer { name: "bn1_scale" type: "Scale" bottom: "fc1" top: "fc1"
          scale_param { bias_term: true
                        filler { type: "gaussian" mean: 1 std: 0.02 }
                        bias_filler { type: "constant" value: 0 } } }
  layer { name: "fc1_relu" type: "ReLU" bottom: "fc1" top: "fc1" }

  layer {
    name: "fc2"  type: "InnerProduct"
    bottom: "fc1"  top: "fc2"
    inner_product_param {
      num_output: 6272                         # 128 x 7 x 7
      weight_filler { type: "gaussian" std: 0.02 }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "bn2" type: "BatchNorm" bottom: "fc2" top: "fc2"
          batch_norm_param { eps: 0.00001 moving_average_fraction: 0.9
                             use_global_stats: false } }
  layer { name: "bn2_scale" type: "Scale" bottom: "fc2" top: "fc2"
          scale_param { bias_term: true
                        filler { type: "gaussian" mean: 1 std: 0.02 }
                        bias_filler { type: "constant" value: 0 } } }
  layer { name: "fc2_relu" type: "ReLU" bottom: "fc2" top: "fc2" }
  layer {
    name: "fc2_reshape"  type: "Reshape"
    bottom: "fc2"  top: "fc2_reshape"
    reshape_param { shape { dim: 0 dim: 128 dim: 7 dim: 7 } }
  }

  layer {
    name: "deconv3"  type: "Deconvolution"     # 7 -> 14
    bottom: "fc2_reshape"  top: "deconv3"
    convolution_param {
      num_output: 64  kernel_size: 4  stride: 2  pad: 1
      weight_filler { type: "gaussian" std: 0.02 }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "bn3" type: "BatchNorm" bottom: "deconv3" top: "deconv3"
          batch_norm_param { eps: 0.00001 moving_average_fraction: 0.9
                             use_global_stats: false } }
  layer { name: "bn3_scale" type: "Scale" bottom: "deconv3" top: "deconv3"
          scale_param { bias_term: true
                        filler { type: "gaussian" mean: 1 std: 0.02 }
                        bias_filler { type: "constant" value: 0 } } }
  layer { name: "deconv3_relu" type: "ReLU" bottom: "deconv3" top: "deconv3" }

  layer {
    name: "deconv4"  type: "Deconvolution"     # 14 -> 28
    bottom: "deconv3"  top: "deconv4"
    convolution_param {
      num_output: 1  kernel_size: 4  stride: 2  pad: 1
      weight_filler { type: "gaussian" std: 0.02 }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "image" type: "Sigmoid" bottom: "deconv4" top: "image" }
}

# ---- shared D/Q trunk: image 1 x 28 x 28 -> 1024 features -----------------------------------
# Leaky ReLU slope 0.1 as in the paper (the released code used 0.01).

subnet {
  name: "trunk"
  input: "image"
  output: "features"

  layer {
    name: "conv1"  type: "Convolution"         # 28 -> 14
    bottom: "image"  top: "conv1"
    convolution_param {
      num_output: 64  kernel_size: 4  stride: 2  pad: 1
      weight_filler { type: "gaussian" std: 0.02 }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "conv1_lrelu" type: "ReLU" bottom: "conv1" top: "conv1"
          relu_param { negative_slope: 0.1 } }

  layer {
    name: "conv2"  type: "Convolution"         # 14 -> 7: 128 x 7 x 7 = 6272
    bottom: "conv1"  top: "conv2"
    convolution_param {
      num_output: 128  kernel_size: 4  stride: 2  pad: 1
      weight_filler { type: "gaussian" std: 0.02 }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "bn2" type: "BatchNorm" bottom: "conv2" top: "conv2"
          batch_norm_param { eps: 0.00001 moving_average_fraction: 0.9 } }
  layer { name: "bn2_scale" type: "Scale" bottom: "conv2" top: "conv2"
          scale_param { bias_term: true
                        filler { type: "gaussian" mean: 1 std: 0.02 }
                        bias_filler { type: "constant" value: 0 } } }
  layer { name: "conv2_lrelu" type: "ReLU" bottom: "conv2" top: "conv2"
          relu_param { negative_slope: 0.1 } }

  layer {
    name: "fc3"  type: "InnerProduct"          # flattens 6272
    bottom: "conv2"  top: "fc3"
    inner_product_param {
      num_output: 1024
      weight_filler { type: "gaussian" std: 0.02 }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "bn3" type: "BatchNorm" bottom: "fc3" top: "fc3"
          batch_norm_param { eps: 0.00001 moving_average_fraction: 0.9 } }
  layer { name: "bn3_scale" type: "Scale" bottom: "fc3" top: "fc3"
          scale_param { bias_term: true
                        filler { type: "gaussian" mean: 1 std: 0.02 }
                        bias_filler { type: "constant" value: 0 } } }
  layer { name: "fc3_lrelu" type: "ReLU" bottom: "fc3" top: "features"
          relu_param { negative_slope: 0.1 } }
}

# ---- discriminator: trunk + D head -> logit (pre-sigmoid) -----------------------------------

subnet {
  name: "discriminator"
  input: "image"
  output: "logit"

  layer { name: "trunk" type: "Subnet" bottom: "image" top: "features"
          subnet_param { name: "trunk" } }
  layer {
    name: "d_fc"  type: "InnerProduct"
    bottom: "features"  top: "logit"
    inner_product_param {
      num_output: 1
      weight_filler { type: "gaussian" std: 0.02 }
      bias_filler { type: "constant" value: 0 }
    }
  }
}

# ---- Q network: trunk + Q head -> 12 = 10 categorical logits + 2 Gaussian means -------------

subnet {
  name: "q_network"
  input: "image"
  output: "dist_info"

  layer { name: "trunk" type: "Subnet" bottom: "image" top: "features"
          subnet_param { name: "trunk" } }
  layer {
    name: "q_fc1"  type: "InnerProduct"
    bottom: "features"  top: "q_fc1"
    inner_product_param {
      num_output: 128
      weight_filler { type: "gaussian" std: 0.02 }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "q_bn1" type: "BatchNorm" bottom: "q_fc1" top: "q_fc1"
          batch_norm_param { eps: 0.00001 moving_average_fraction: 0.9 } }
  layer { name: "q_bn1_scale" type: "Scale" bottom: "q_fc1" top: "q_fc1"
          scale_param { bias_term: true
                        filler { type: "gaussian" mean: 1 std: 0.02 }
                        bias_filler { type: "constant" value: 0 } } }
  layer { name: "q_fc1_lrelu" type: "ReLU" bottom: "q_fc1" top: "q_fc1"
          relu_param { negative_slope: 0.1 } }
  layer {
    name: "q_fc2"  type: "InnerProduct"
    bottom: "q_fc1"  top: "dist_info"          # the continuous codes' std is fixed at 1
    inner_product_param {
      num_output: 12
      weight_filler { type: "gaussian" std: 0.02 }
      bias_filler { type: "constant" value: 0 }
    }
  }
}

# ---- inputs ---------------------------------------------------------------------------------

layer {
  name: "data"  type: "Data"
  top: "data"
  transform_param { scale: 0.00392156862745 }  # 1/255: [0, 1]
  data_param { source: "mnist_train_lmdb" backend: LMDB batch_size: 128 }
}

# The latent code: incompressible noise and the two regularized codes c.
layer {
  name: "latent"  type: "DummyData"
  top: "noise"  top: "disc_code"  top: "cont_code"
  dummy_data_param {
    shape { dim: 128 dim: 62 }
    shape { dim: 128 dim: 10 }
    shape { dim: 128 dim: 2 }
    data_filler { type: "uniform" min: -1 max: 1 }   # noise
    data_filler { type: "categorical" }              # disc_code: one-hot over 10 classes
    data_filler { type: "uniform" min: -1 max: 1 }   # cont_code
  }
}
layer {
  name: "reg_z"  type: "Concat"                # 128 x 12
  bottom: "disc_code"  bottom: "cont_code"  top: "reg_z"
  concat_param { axis: 1 }
}
layer {
  name: "reg_z_slice"  type: "Slice"           # 10 | 2
  bottom: "reg_z"  top: "disc_reg_z"  top: "cont_reg_z"
  slice_param { axis: 1 slice_point: 10 }
}
layer {
  name: "z"  type: "Concat"                    # 128 x 74
  bottom: "noise"  bottom: "reg_z"  top: "z"
  concat_param { axis: 1 }
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

# ---- generator, discriminator and Q applications --------------------------------------------

layer {
  name: "gen"  type: "Subnet"
  bottom: "z"  top: "fake"
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
# A separate application: d_fake and q_fake both run the trunk on `fake` with the same
# parameters. Merging the two into one trunk evaluation is the optimizer's job, not this file's.
layer {
  name: "q_fake"  type: "Subnet"
  bottom: "fake"  top: "fake_reg_z_dist_info"
  subnet_param { name: "q_network" }
}
layer {
  name: "dist_info_slice"  type: "Slice"       # 10 logits (unused: see below) | 2 means
  bottom: "fake_reg_z_dist_info"
  top: "unwarped_disc_reg_dist_info"  top: "cont_reg_dist_info"
  slice_param { axis: 1 slice_point: 10 }
}

# The categorical code is read from a randomly warped copy of each fake image (an extension of
# the paper, as Elastic-InfoGAN and IIC make codes invariant to such changes): a code value must
# then survive up to 15 degrees of rotation, 15% of rescaling and 2 pixels of shift, so it
# cannot be carried by slant, size or position and must be carried by the digit's shape. Without
# it the code values split some digits by style (4 and 9, 3 and 5 shared by pairs of values):
# 81-84% categorical-code accuracy at 2,000 iterations, against 98.5-99.1% with it on the same
# four seeds (README, GAN section).
# The continuous codes (width and slant) are still read from the unwarped images, by q_fake.
layer {
  name: "fake_warped"  type: "RandomAffine"
  bottom: "fake"  top: "fake_warped"
  random_affine_param { rotation: 15 scale: 0.15 translation: 2 }
}
layer {
  name: "q_fake_warped"  type: "Subnet"
  bottom: "fake_warped"  top: "fake_warped_dist_info"
  subnet_param { name: "q_network" }
}
layer {
  name: "warped_dist_info_slice"  type: "Slice"  # 10 logits | 2 means (unused)
  bottom: "fake_warped_dist_info"
  top: "disc_reg_dist_info"  top: "warped_cont_reg_dist_info"
  slice_param { axis: 1 slice_point: 10 }
}

# ---- mutual information, categorical code ---------------------------------------------------
# MI(c; G(z, c)) >= H(c) - H(c | x) with H(c | x) estimated by the cross entropy
# -E log Q(c | x). Names as in the book's figure 10-13.

layer {
  name: "disc_log_softmax"  type: "LogSoftmax"
  bottom: "disc_reg_dist_info"  top: "disc_log_softmax"
  softmax_param { axis: 1 }
}
layer {
  name: "disc_log_q_c_given_x_elem"  type: "Eltwise"
  bottom: "disc_log_softmax"  bottom: "disc_reg_z"
  top: "disc_log_q_c_given_x_elem"
  eltwise_param { operation: PROD }
}
layer {
  name: "disc_log_q_c_given_x"  type: "Reduction"   # per example: log Q(c | x)
  bottom: "disc_log_q_c_given_x_elem"  top: "disc_log_q_c_given_x"
  reduction_param { operation: SUM axis: 1 }
}
layer {
  name: "disc_log_q_c_elem"  type: "Power"     # one-hot c times log(1/10)
  bottom: "disc_reg_z"  top: "disc_log_q_c_elem"
  power_param { scale: -2.302585093 }          # ln(1/10)
}
layer {
  name: "disc_log_q_c"  type: "Reduction"      # per example: log p(c) = log(1/10)
  bottom: "disc_log_q_c_elem"  top: "disc_log_q_c"
  reduction_param { operation: SUM axis: 1 }
}
layer {
  name: "disc_cross_ent"  type: "Reduction"    # -mean log Q(c | x)
  bottom: "disc_log_q_c_given_x"  top: "disc_cross_ent"
  reduction_param { operation: MEAN axis: 0 coeff: -1 }
}
layer {
  name: "disc_ent"  type: "Reduction"          # -mean log p(c) = H(c) = ln 10
  bottom: "disc_log_q_c"  top: "disc_ent"
  reduction_param { operation: MEAN axis: 0 coeff: -1 }
}
layer {
  name: "disc_mi_est"  type: "Eltwise"         # disc_ent - disc_cross_ent
  bottom: "disc_ent"  bottom: "disc_cross_ent"  top: "disc_mi_est"
  eltwise_param { operation: SUM coeff: 1 coeff: -1 }
}

# ---- mutual information, continuous codes ---------------------------------------------------
# Q(c | x) = N(mean, 1). As in the original code the prior term uses N(0, 1) although c is
# drawn from U(-1, 1) (its Uniform distribution models prior and posterior as Gaussians).

layer {
  name: "cont_log_q_c_given_x"  type: "GaussianLogLikelihood"   # per example: log Q(c | x)
  bottom: "cont_reg_z"  bottom: "cont_reg_dist_info"
  top: "cont_log_q_c_given_x"
  gaussian_param { std: 1 }
}
layer {
  name: "cont_log_q_c"  type: "GaussianLogLikelihood"           # per example: log N(c; 0, 1)
  bottom: "cont_reg_z"
  top: "cont_log_q_c"
  gaussian_param { std: 1 }
}
layer {
  name: "cont_cross_ent"  type: "Reduction"
  bottom: "cont_log_q_c_given_x"  top: "cont_cross_ent"
  reduction_param { operation: MEAN axis: 0 coeff: -1 }
}
layer {
  name: "cont_ent"  type: "Reduction"
  bottom: "cont_log_q_c"  top: "cont_ent"
  reduction_param { operation: MEAN axis: 0 coeff: -1 }
}
layer {
  name: "cont_mi_est"  type: "Eltwise"         # cont_ent - cont_cross_ent
  bottom: "cont_ent"  bottom: "cont_cross_ent"  top: "cont_mi_est"
  eltwise_param { operation: SUM coeff: 1 coeff: -1 }
}

# ---- GAN losses -----------------------------------------------------------------------------
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
  name: "g_loss"  type: "SigmoidCrossEntropyLoss"        # -log D(G(z))
  bottom: "d_fake_logit"  bottom: "ones"
  top: "g_loss"
}

generate {
  image: "fake"          # in [0, 1]
  latent: "noise"
  latent: "disc_code"
  latent: "cont_code"
}

# ---- solver ---------------------------------------------------------------------------------
# Both players maximize the MI estimates (weight -1 = lambda 1).

solver {
  random_seed: 1
  # 2,000 iterations of 128 images: 256,000 examples, 28 passes over the bundled 9,000 digits.
  # openai/InfoGAN runs 5,000 (50 "epochs" of 100 updates); the categorical code has sorted the
  # digits long before, and 2,000 fit in 20 minutes on 2 cores (`--max-steps 5000` for the rest).
  max_iter: 2000
  display: 50
  snapshot: 500
  phase {
    name: "discriminator"
    steps: 1
    loss { blob: "d_real_loss" weight: 1 }
    loss { blob: "d_fake_loss" weight: 1 }
    loss { blob: "disc_mi_est" weight: -1 }
    loss { blob: "cont_mi_est" weight: -1 }
    update: "discriminator"
    update: "q_network"
    # The trunk's parameters (trunk/...) belong to the sub-network "trunk", which both
    # discriminator and q_network apply; named too, so D/Q's update set is complete either way.
    update: "trunk"
    type: "Adam" base_lr: 0.0002 momentum: 0.5 momentum2: 0.999
  }
  phase {
    name: "generator"
    steps: 1
    loss { blob: "g_loss" weight: 1 }
    loss { blob: "disc_mi_est" weight: -1 }
    loss { blob: "cont_mi_est" weight: -1 }
    update: "generator"
    type: "Adam" base_lr: 0.001 momentum: 0.5 momentum2: 0.999
  }
}
