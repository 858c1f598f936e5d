-- A small smooth model for the optimizer tests; the build compiles one
-- copy per optimizer with gradc compile --optimizer KIND.
local x = input("x", {4, 3})
local w = param("w", {3, 2}, randn())
local b = param("b", {2}, uniform(-1, 1))
return model { loss = sum(tanh(x:matmul(w) + b)^2) }
