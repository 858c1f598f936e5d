-- dense(x, n_out, name): a fully connected layer, x W + b, over the last
-- axis of x (so rows [N, D] or sequences [N, T, D]), with W [n_in, n_out]
-- drawn from N(0, 2 / n_in) (He initialization, for ReLU networks) and
-- b [n_out] starting at zero. The parameters are named NAME_w and NAME_b.
return function(x, n_out, name)
  local n_in = x.shape[#x.shape]
  local w = param(name .. "_w", {n_in, n_out}, randn(math.sqrt(2 / n_in)))
  local b = param(name .. "_b", {n_out}, zeros())
  return x:matmul(w) + b
end
