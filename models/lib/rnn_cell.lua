-- rnn_cell(d_in, hidden, name): a vanilla RNN cell, returned as a function
-- step(x, h) = tanh(x W + h U + b) of inputs x [N, d_in] and the last
-- state h [N, hidden] (nil at the first step: a zero state). Every call shares the one set of parameters
-- NAME_w, NAME_u and NAME_b, so an unrolled network accumulates their
-- gradients over the time steps.
return function(d_in, hidden, name)
  local w = param(name .. "_w", {d_in, hidden}, randn(1 / math.sqrt(d_in)))
  local u = param(name .. "_u", {hidden, hidden}, randn(1 / math.sqrt(hidden)))
  local b = param(name .. "_b", {hidden}, zeros())
  return function(x, h)
    local z = x:matmul(w) + b
    if h then
      z = z + h:matmul(u)
    end
    return tanh(z)
  end
end
