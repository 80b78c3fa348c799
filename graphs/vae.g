# Variational autoencoder on MNIST, 30-d latent.
#
# Follows cdoersch/vae_tutorial (mnist_vae.prototxt, mnist_vae_solver_adam.prototxt), the code of
# C. Doersch, "Tutorial on Variational Autoencoders" (2016): a 784-1000-500-250 ReLU encoder
# producing mu and log sd of a 30-d Gaussian code, a 250-500-1000-784 ReLU decoder producing
# Bernoulli logits, data scaled by 1/255 (not binarized), batch 100.
#
# Parameters (weights + biases): 2,844,844
#   encoder  encode1 785,000  encode2 500,500  encode3 125,250  mu 7,530  logsd 7,530  (1,425,810)
#   decoder  decode4 7,750  decode3 125,500  decode2 501,000  decode1 784,784  (1,419,034)
#
# The encoder, the reparameterized sample and the losses run in TRAIN; the TEST phase (which
# generation compiles) only draws z ~ N(0, I) and applies the shared decoder.

name: "mnist_vae"

# ---- decoder: z (30) -> Bernoulli logits (784) ---------------------------------------------
# Parameters are shared by every application: decoder/decode4.weight, ...

subnet {
  name: "decoder"
  input: "z"
  output: "decode1"

  layer {
    name: "decode4"  type: "InnerProduct"
    bottom: "z"  top: "decode4"
    param { lr_mult: 1 decay_mult: 1 }
    param { lr_mult: 1 decay_mult: 0 }
    inner_product_param {
      num_output: 250
      weight_filler { type: "gaussian" std: 0.1 sparse: 15 }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "decode4neuron" type: "ReLU" bottom: "decode4" top: "decode4neuron" }

  layer {
    name: "decode3"  type: "InnerProduct"
    bottom: "decode4neuron"  top: "decode3"
    param { lr_mult: 1 decay_mult: 1 }
    param { lr_mult: 1 decay_mult: 0 }
    inner_product_param {
      num_output: 500
      weight_filler { type: "gaussian" std: 0.1 sparse: 15 }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "decode3neuron" type: "ReLU" bottom: "decode3" top: "decode3neuron" }

  layer {
    name: "decode2"  type: "InnerProduct"
    bottom: "decode3neuron"  top: "decode2"
    param { lr_mult: 1 decay_mult: 1 }
    param { lr_mult: 1 decay_mult: 0 }
    inner_product_param {
      num_output: 1000
      weight_filler { type: "gaussian" std: 0.1 sparse: 15 }
      bias_filler { type: "constant" value: 0 }
    }
  }
  layer { name: "decode2neuron" type: "ReLU" bottom: "decode2" top: "decode2neuron" }

  layer {
    name: "decode1"  type: "InnerProduct"
    bottom: "decode2neuron"  top: "decode1"     # logits, no non-linearity
    param { lr_mult: 1 decay_mult: 1 }
    param { lr_mult: 1 decay_mult: 0 }
    inner_product_param {
      num_output: 784
      weight_filler { type: "gaussian" std: 0.1 sparse: 15 }
      bias_filler { type: "constant" value: 0 }
    }
  }
}

# ---- data -----------------------------------------------------------------------------------

layer {
  name: "data"  type: "Data"
  top: "data"
  transform_param { scale: 0.0039215684 }      # 1/255: grey levels in [0, 1], not binarized
  data_param { source: "mnist_train_lmdb" backend: LMDB batch_size: 100 }
  include { phase: TRAIN }
}
layer {
  name: "flatdata"  type: "Flatten"
  bottom: "data"  top: "flatdata"              # 100 x 784, the reconstruction targets
  include { phase: TRAIN }
}

# ---- encoder: image (784) -> 250 ------------------------------------------------------------

layer {
  name: "encode1"  type: "InnerProduct"
  bottom: "data"  top: "encode1"
  param { lr_mult: 1 decay_mult: 1 }
  param { lr_mult: 1 decay_mult: 0 }
  inner_product_param {
    num_output: 1000
    weight_filler { type: "gaussian" std: 0.1 sparse: 15 }
    bias_filler { type: "constant" value: 0 }
  }
  include { phase: TRAIN }
}
layer {
  name: "encode1neuron"  type: "ReLU"
  bottom: "encode1"  top: "encode1neuron"
  include { phase: TRAIN }
}

layer {
  name: "encode2"  type: "InnerProduct"
  bottom: "encode1neuron"  top: "encode2"
  param { lr_mult: 1 decay_mult: 1 }
  param { lr_mult: 1 decay_mult: 0 }
  inner_product_param {
    num_output: 500
    weight_filler { type: "gaussian" std: 0.1 sparse: 15 }
    bias_filler { type: "constant" value: 0 }
  }
  include { phase: TRAIN }
}
layer {
  name: "encode2neuron"  type: "ReLU"
  bottom: "encode2"  top: "encode2neuron"
  include { phase: TRAIN }
}

layer {
  name: "encode3"  type: "InnerProduct"
  bottom: "encode2neuron"  top: "encode3"
  param { lr_mult: 1 decay_mult: 1 }
  param { lr_mult: 1 decay_mult: 0 }
  inner_product_param {
    num_output: 250
    weight_filler { type: "gaussian" std: 0.1 sparse: 15 }
    bias_filler { type: "constant" value: 0 }
  }
  include { phase: TRAIN }
}
# Not in place: logsd below reads encode3 before this ReLU.
layer {
  name: "encode3neuron"  type: "ReLU"
  bottom: "encode3"  top: "encode3neuron"
  include { phase: TRAIN }
}

# ---- approximate posterior q(z|x) = N(mu, sd^2) ---------------------------------------------

layer {
  name: "mu"  type: "InnerProduct"
  bottom: "encode3neuron"  top: "mu"
  param { lr_mult: 1 decay_mult: 1 }
  param { lr_mult: 1 decay_mult: 0 }
  inner_product_param {
    num_output: 30                             # latent size
    weight_filler { type: "gaussian" std: 0.1 }
    bias_filler { type: "constant" value: 0 }
  }
  include { phase: TRAIN }
}
# Log sd, so that sd = exp(logsd) is positive. A quirk of the original kept on purpose: logsd
# reads encode3 BEFORE its ReLU, while mu reads the rectified encode3neuron.
layer {
  name: "logsd"  type: "InnerProduct"
  bottom: "encode3"  top: "logsd"
  param { lr_mult: 1 decay_mult: 1 }
  param { lr_mult: 1 decay_mult: 0 }
  inner_product_param {
    num_output: 30                             # latent size
    weight_filler { type: "gaussian" std: 0.1 }
    bias_filler { type: "constant" value: 0 }
  }
  include { phase: TRAIN }
}
layer {
  name: "sd"  type: "Exp"                      # base e
  bottom: "logsd"  top: "sd"
  include { phase: TRAIN }
}

# ---- KL(q(z|x) || N(0, I)) = sum 0.5 (mu^2 + sd^2) - log sd - 0.5 ---------------------------

layer {
  name: "musq"  type: "Eltwise"
  bottom: "mu"  bottom: "mu"  top: "musq"
  eltwise_param { operation: PROD }
  include { phase: TRAIN }
}
layer {
  name: "sdsq"  type: "Eltwise"
  bottom: "sd"  bottom: "sd"  top: "sdsq"
  eltwise_param { operation: PROD }
  include { phase: TRAIN }
}
layer {
  name: "kldiv_plus_half"  type: "Eltwise"
  bottom: "musq"  bottom: "sdsq"  bottom: "logsd"
  top: "kldiv_plus_half"
  eltwise_param { operation: SUM coeff: 0.5 coeff: 0.5 coeff: -1 }
  include { phase: TRAIN }
}
layer {
  name: "kldiv"  type: "Power"
  bottom: "kldiv_plus_half"  top: "kldiv"
  power_param { shift: -0.5 }
  include { phase: TRAIN }
}
# Sum over batch and latent. loss_weight 0.01 = 1 / batch size, because SigmoidCrossEntropyLoss
# divides by the batch size and Reduction does not.
layer {
  name: "klloss"  type: "Reduction"
  bottom: "kldiv"  top: "klloss"
  reduction_param { operation: SUM axis: 0 }
  loss_weight: 0.01
  include { phase: TRAIN }
}

# ---- reparameterized sample z = mu + sd * noise ---------------------------------------------

layer {
  name: "noise"  type: "DummyData"
  top: "noise"
  dummy_data_param {
    shape { dim: 100 dim: 30 }                 # batch x latent
    data_filler { type: "gaussian" std: 1 }
  }
  include { phase: TRAIN }
}
layer {
  name: "sinput"  type: "Eltwise"
  bottom: "sd"  bottom: "noise"  top: "sinput"
  eltwise_param { operation: PROD }
  include { phase: TRAIN }
}
layer {
  name: "sample"  type: "Eltwise"
  bottom: "mu"  bottom: "sinput"  top: "sample"
  eltwise_param { operation: SUM }
  include { phase: TRAIN }
}

# ---- reconstruction p(x|z) and losses -------------------------------------------------------

layer {
  name: "decode"  type: "Subnet"
  bottom: "sample"  top: "decode1"
  subnet_param { name: "decoder" }
  include { phase: TRAIN }
}
layer {
  name: "cross_entropy_loss"  type: "SigmoidCrossEntropyLoss"
  bottom: "decode1"  bottom: "flatdata"
  top: "cross_entropy_loss"
  loss_weight: 1
  include { phase: TRAIN }
}
layer {
  name: "decode1neuron"  type: "Sigmoid"
  bottom: "decode1"  top: "decode1neuron"
  include { phase: TRAIN }
}
# A metric, not optimized: loss_weight 0.
layer {
  name: "l2_error"  type: "EuclideanLoss"
  bottom: "decode1neuron"  bottom: "flatdata"
  top: "l2_error"
  loss_weight: 0
  include { phase: TRAIN }
}

# ---- generation (TEST): z ~ N(0, I) through the same decoder --------------------------------
# No loss layers here.

layer {
  name: "z_prior"  type: "DummyData"
  top: "z_prior"
  dummy_data_param {
    shape { dim: 100 dim: 30 }                 # samples x latent
    data_filler { type: "gaussian" std: 1 }
  }
  include { phase: TEST }
}
layer {
  name: "decode_prior"  type: "Subnet"
  bottom: "z_prior"  top: "prior_logits"
  subnet_param { name: "decoder" }
  include { phase: TEST }
}
layer {
  name: "prior_prob"  type: "Sigmoid"
  bottom: "prior_logits"  top: "prior_prob"
  include { phase: TEST }
}
layer {
  name: "generated"  type: "Reshape"
  bottom: "prior_prob"  top: "generated"
  reshape_param { shape { dim: 0 dim: 1 dim: 28 dim: 28 } }   # 100 x 1 x 28 x 28
  include { phase: TEST }
}

generate {
  image: "generated"
  latent: "z_prior"
}

# ---- solver ---------------------------------------------------------------------------------

solver {
  random_seed: 1
  max_iter: 10000        # iterations of 100 images: 1,000,000 examples, about 16.7 epochs of
                         # MNIST's 60,000 (the original solver ran 60,000 iterations)
  display: 100
  snapshot: 1000
  phase {
    name: "train"
    # No loss entries: minimizes every loss layer by its loss_weight
    # (cross_entropy_loss 1, klloss 0.01, l2_error 0). No update entries: every parameter.
    # The original solver set no momentum, so Caffe ran Adam with beta1 = 0; we use 0.9, the
    # Adam paper's default.
    type: "Adam"
    base_lr: 0.001
    momentum: 0.9
    momentum2: 0.999
    weight_decay: 0.0005
  }
}
