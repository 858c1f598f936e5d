-- attention(width, heads, name): causal multi-head self-attention,
-- returned as a function of x [N, T, width]. Each head attends over
-- width / heads of the features: softmax(q k^T / sqrt(d) + causal mask) v,
-- and the heads' results are joined and projected back to width.
local dense = import("dense")

return function(width, heads, name)
  assert(width % heads == 0, "attention: width must be a multiple of heads")
  local d = width // heads
  local function split(t, N, T)   -- [N, T, width] -> [N, heads, T, d]
    return t:reshape({N, T, heads, d}):permute({1, 3, 2, 4})
  end
  local q_w = param(name .. "_q", {width, width}, randn(1 / math.sqrt(width)))
  local k_w = param(name .. "_k", {width, width}, randn(1 / math.sqrt(width)))
  local v_w = param(name .. "_v", {width, width}, randn(1 / math.sqrt(width)))
  return function(x)
    local N, T = x.shape[1], x.shape[2]
    local q = split(x:matmul(q_w), N, T)
    local k = split(x:matmul(k_w), N, T)
    local v = split(x:matmul(v_w), N, T)
    local scores = matmul(q, transpose(k, 3, 4)) * (1 / math.sqrt(d))
    local y = matmul(softmax(causal_mask(scores)), v)      -- [N, heads, T, d]
    y = y:permute({1, 3, 2, 4}):reshape({N, T, width})
    return dense(y, width, name .. "_out")
  end
end
