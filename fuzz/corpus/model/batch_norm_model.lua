-- Batch norm of images, for the models suite's batch norm test: x is an
-- input, so the test knows what the layer sees; y is an output.
local x = input("x", {4, 3, 2, 2})
local R = input("R", {4, 3, 2, 2})
local g = param("g", {3}, uniform(0.5, 1.5))
local b = param("b", {3}, uniform(-0.5, 0.5))
local y = batch_norm(x, g, b, "bn", { momentum = 0.25, eps = 0.01 })
return model { loss = sum(y * R), outputs = { y = y }, optimizer = sgd { lr = 0.1 } }
