-- Softmax regression on Fisher's iris flowers (data/iris.csv): four
-- measurements in, one of three species out, through one linear layer.
local N = config.batch or 30

local x      = input("x", {N, 4})
local labels = input("labels", {N}, "int32")
local W      = param("W", {4, 3}, zeros())
local b      = param("b", {3}, zeros())

local logits = x:matmul(W) + b

return model {
  loss = mean(cross_entropy(logits, labels)),
  outputs = { logits = logits },
  optimizer = momentum { lr = 0.02, momentum = 0.9 },
}
