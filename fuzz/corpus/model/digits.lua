-- A 2-layer network for the UCI handwritten digits (data/digits.csv.gz):
-- 8x8 images of pixels 0..16 in, one of 10 digits out. The pixels are
-- scaled to 0..1 here, so the data file is used as it ships. Two things
-- keep the 1437 training digits from being learned by heart: each training
-- image moves by up to a pixel each way (random_shift, never in
-- evaluation), and the targets are smoothed.
local dense = import("dense")

local N = config.batch or 32
local H = config.hidden or 2048
local SMOOTH = config.smoothing or 0.4

local x      = input("x", {N, 64})
local labels = input("labels", {N}, "int32")

local img = random_shift((x / 16):reshape({N, 1, 8, 8}), 1)
local h = relu(dense(flatten(img), H, "fc1"))
local logits = dense(h, 10, "fc2")

-- Label smoothing: the target keeps 1 - SMOOTH on the label and spreads
-- SMOOTH evenly over all ten digits.
local loss = (1 - SMOOTH) * mean(cross_entropy(logits, labels))
           + SMOOTH * mean(-log_softmax(logits))

return model {
  loss = loss,
  outputs = { logits = logits },
  optimizer = adamw { lr = 2e-3, weight_decay = 0.05 },
}
