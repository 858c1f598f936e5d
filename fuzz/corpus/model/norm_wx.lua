-- The notes' vectorized example: f(x, W) = ||W x||^2, whose gradient is
-- df/dW = 2 q x^T with q = W x. Each row of x is one vector x in R^n, so
-- the loss is f summed over a batch of them.
local N = config.batch or 8
local n = config.n or 16

local x = input("x", {N, n})
local W = param("W", {n, n}, randn(0.25))

local q = x:matmul(W:t())   -- row i is (W x_i)^T

return model {
  loss = sum(q^2),
  outputs = { q = q },
  optimizer = sgd { lr = 1e-3 },
}
