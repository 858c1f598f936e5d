-- A 2-layer network for the UCI handwritten digits (data/digits.csv.gz):
-- 8x8 images of pixels 0..16 in, one of 10 digits out. The pixels are
-- scaled to 0..1 here, so the data file is used as it ships.
local dense = import("dense")

local N = config.batch or 32
local H = config.hidden or 64

local x      = input("x", {N, 64})
local labels = input("labels", {N}, "int32")

local h = relu(dense(x / 16, H, "fc1"))
local logits = dense(h, 10, "fc2")

return model {
  loss = mean(cross_entropy(logits, labels)),
  outputs = { logits = logits },
  optimizer = adam { lr = 1e-2 },
}
