-- Double backpropagation (Drucker and LeCun, 1992) on the UCI handwritten
-- digits (data/digits.csv.gz): a tanh network whose loss also holds the
-- squared gradient of its cross-entropy with respect to the pixels, so
-- that training makes the loss flat around every digit it sees. That
-- gradient is a value of the model (grad()); the trainer's backward pass
-- differentiates it again: a second derivative, gradient-checked like any
-- other.
--   gradc build models/double_backprop.lua -o out
--   out/double_backprop_train --data x=data/digits.csv.gz \
--       --data labels=data/digits.csv.gz --val-split 0.2 --epochs 20
-- test config: -D batch=4 -D hidden=8
local dense = import("dense")

local N = config.batch or 32
local H = config.hidden or 64
local PENALTY = config.penalty or 0.1

local x      = input("x", {N, 64})
local labels = input("labels", {N}, "int32")

local pixels = x / 16
local h = tanh(dense(pixels, H, "fc1"))
local logits = dense(h, 10, "fc2")
local xent = mean(cross_entropy(logits, labels))

-- The gradient of the mean is each row's own over N: N times the sum of
-- its squares is the mean over rows of each row's squared norm.
local d_pixels = grad(xent, pixels)
local loss = xent + PENALTY * N * sum(d_pixels ^ 2)

return model {
  loss = loss,
  outputs = { logits = logits },
  optimizer = adamw { lr = 2e-3, weight_decay = 0.01 },
}
