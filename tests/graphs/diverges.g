# A net whose loss, -(w·x + 1)², grows without bound under SGD: not finite by iteration 4
# (tests/train.rs, tests/device.rs).
layer { name: "data" type: "Data" top: "data" data_param { batch_size: 4 } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
        inner_product_param { num_output: 1 bias_filler { type: "constant" value: 1 } } }
layer { name: "square" type: "Power" bottom: "fc" top: "square" power_param { power: 2 } }
layer { name: "gain" type: "Power" bottom: "square" top: "gain" power_param { scale: -1 } }
layer { name: "loss" type: "Reduction" bottom: "gain" top: "loss" loss_weight: 1 }
solver { max_iter: 50 display: 100 snapshot: 2 phase { name: "p" type: "SGD" base_lr: 0.01 } }
