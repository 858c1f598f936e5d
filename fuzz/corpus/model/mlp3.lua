-- The notes' 3-layer network, f = W3 max(0, W2 max(0, W1 x + b1) + b2) + b3,
-- written with rows as examples (x W + b), and trained with a softmax
-- cross-entropy loss on integer labels.
local dense = import("dense")

local N = config.batch or 64
local D, H1, H2, C = config.features or 64, config.hidden or 100, config.hidden or 100, 10

local x      = input("x", {N, D})
local labels = input("labels", {N}, "int32")

local h1 = relu(dense(x, H1, "fc1"))
local h2 = relu(dense(h1, H2, "fc2"))
local logits = dense(h2, C, "fc3")

return model {
  loss = mean(cross_entropy(logits, labels)),
  outputs = { logits = logits },
  optimizer = sgd { lr = 0.1 },
}
