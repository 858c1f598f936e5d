-- lstm_cell(d_in, hidden, name): an LSTM cell, returned as a function
-- step(x, h, c) -> h, c of inputs x [N, d_in], the last output h and the
-- last cell state c [N, hidden] (both nil at the first step: zero state). The four gates come out of one product
-- each for x and h, [N, 4 * hidden], sliced into input, forget, cell and
-- output gates; the forget gate's bias starts at 1, so the cell remembers
-- from the start.
return function(d_in, hidden, name)
  local w = param(name .. "_w", {d_in, 4 * hidden}, randn(1 / math.sqrt(d_in)))
  local u = param(name .. "_u", {hidden, 4 * hidden}, randn(1 / math.sqrt(hidden)))
  local b = param(name .. "_b", {4 * hidden}, zeros())
  local fb = param(name .. "_forget_b", {hidden}, ones())
  local H = hidden
  return function(x, h, c)
    local z = x:matmul(w) + b
    if h then
      z = z + h:matmul(u)
    end
    local i = sigmoid(z:slice(2, 1, H))
    local f = sigmoid(z:slice(2, H + 1, 2 * H) + fb)
    local g = tanh(z:slice(2, 2 * H + 1, 3 * H))
    local o = sigmoid(z:slice(2, 3 * H + 1, 4 * H))
    c = c and f * c + i * g or i * g
    return o * tanh(c), c
  end
end
