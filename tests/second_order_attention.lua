-- One MAML-style step through causal self-attention, for the models
-- suite's second-order test against PyTorch (tests/second_order_torch.py):
-- an inner SGD step on the query weight, and the outer loss at the
-- stepped weight, so training differentiates through the inner gradient
-- (softmax, the causal mask, layer_norm and products, twice).
local T, D = 4, 8
local x      = input("x", {2, T, D})
local target = input("target", {2, T, D})
local wq     = param("wq", {D, D}, randn(0.4))
local wk     = param("wk", {D, D}, randn(0.4))
local wv     = param("wv", {D, D}, randn(0.4))
local ln_g   = param("ln_g", {D}, ones())
local ln_b   = param("ln_b", {D}, zeros())

local function block(q_w)
  local q, k, v = x:matmul(q_w), x:matmul(wk), x:matmul(wv)
  local scores = causal_mask(q:matmul(transpose(k, 2, 3)) / math.sqrt(D))
  return layer_norm(x + softmax(scores):matmul(v), ln_g, ln_b)
end

local inner = mse(block(wq), target)
local stepped = wq - 0.5 * grad(inner, wq)
local y = block(stepped)
return model { loss = mse(y, target), outputs = { y = y }, optimizer = sgd { lr = 0.1 } }
