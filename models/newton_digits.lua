-- Multinomial logistic regression on the UCI digits (data/digits.csv.gz),
-- trained by Newton's method: the whole data set is one batch, and each
-- step solves with the loss's Hessian by conjugate gradients, H v coming
-- from the Hessian-vector product gradc derives (newton_cg compiles the
-- model's --hvp twin). The loss is convex, so a handful of steps reach its
-- minimum (seven, to the last digits of a double); Adam takes hundreds.
-- test config: -D batch=8 -D damping=1e-3
local N = config.batch or 1797
local L2 = config.l2 or 1e-3
-- Every b moving alike changes no probability: H is singular that way,
-- which conjugate gradients from 0 never step along. A few rows leave
-- more of it near singular; damping lifts it.
local DAMPING = config.damping or 0

local x      = input("x", {N, 64})
local labels = input("labels", {N}, "int32")
local W      = param("W", {64, 10}, zeros())
local b      = param("b", {10}, zeros())

local logits = (x / 16):matmul(W) + b

return model {
  loss = mean(cross_entropy(logits, labels)) + L2 * l2({ W }),
  outputs = { logits = logits },
  optimizer = newton_cg { lr = 1, damping = DAMPING, cg_iters = 50 },
}
