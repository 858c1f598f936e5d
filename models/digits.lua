-- A 2-layer network for the UCI handwritten digits (data/digits.csv.gz):
-- 8x8 images of pixels 0..16 in, one of 10 digits out. The pixels are
-- scaled to 0..1 here, so the data file is used as it ships; dropout and
-- AdamW's weight decay keep the 1437 training digits from being learned
-- by heart.
local dense = import("dense")

local N = config.batch or 32
local H = config.hidden or 256

local x      = input("x", {N, 64})
local labels = input("labels", {N}, "int32")

local h = dropout(relu(dense(x / 16, H, "fc1")), config.dropout or 0.3)
local logits = dense(h, 10, "fc2")

return model {
  loss = mean(cross_entropy(logits, labels)),
  outputs = { logits = logits },
  optimizer = adamw { lr = 2e-3, weight_decay = 0.05 },
}
