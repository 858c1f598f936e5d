-- Causal attention weights, for the models suite's attention test: the
-- scores are an input's product with a parameter, scaled as attention
-- scales them, so the test knows what softmax sees; p is an output.
local a = input("a", {2, 5, 4})
local R = input("R", {2, 5, 5})
local k = param("k", {4, 5}, randn())
local p = softmax(causal_mask(a:matmul(k) * 0.25))
return model { loss = sum(p * R), outputs = { p = p }, optimizer = sgd { lr = 0.1 } }
