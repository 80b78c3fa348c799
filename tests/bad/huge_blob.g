# A DummyData shape of 99999999 x 99999999 x 99999999 has more elements than fit in a machine word.
name: "huge"
layer {
  name: "noise"  type: "DummyData"
  top: "noise"
  dummy_data_param {
    shape { dim: 99999999 dim: 99999999 dim: 99999999 }
    data_filler { type: "gaussian" std: 1 }
  }
}
layer { name: "flat" type: "Flatten" bottom: "noise" top: "flat" }
