-- The seed network of the lecture notes: a 2-layer network with a sigmoid
-- hidden layer and a sum-of-squares loss, trained by plain SGD.
--   h = sigmoid(x W1);  y_pred = h W2;  loss = sum((y_pred - y)^2)
local N = config.batch or 64
local D_in, H, D_out = config.d_in or 1000, config.hidden or 100, 10

local x  = input("x", {N, D_in})
local y  = input("y", {N, D_out})
local w1 = param("w1", {D_in, H}, randn())
local w2 = param("w2", {H, D_out}, randn())

local h = sigmoid(x:matmul(w1))
local y_pred = h:matmul(w2)

return model {
  loss = sum((y_pred - y)^2),
  outputs = { y_pred = y_pred },
  optimizer = sgd { lr = 1e-4 },
}
