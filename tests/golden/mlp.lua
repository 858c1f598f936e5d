-- A small model on which every pass does something, for the golden
-- files beside it (make golden writes them again): the same matrix times
-- each step of a sequence (batch), constants to fold and a transpose
-- (simplify), a value nothing needs (dce), cheap values the backward
-- reads, those of gelu (remat).
local x = input("x", {2, 3, 4})
local y = input("y", {2, 2})
local w = param("w", {4, 2}, randn(0.1))
local b = param("b", {2}, zeros())
local acc = b
for t = 1, 3 do
  local xt = reshape(slice(x, 2, t, t), {2, 4})
  acc = acc + xt:matmul(w) * 2 * 0.5
end
local h = gelu(acc)
local unused = exp(h)
local err = h:t():t() - y
return model { loss = mean(err * err), outputs = { h = h } }
