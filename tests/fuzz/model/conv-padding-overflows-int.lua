local x = input("x", {4, 8})
local w = param("w", {8, 3}, randn())
local h = x:matmul(w)
h = conv2d(reshape(h, {1,1,4,3}), param("k", {1,1,1,1}, randn()), {padding = 2147483647})
return model { loss = sum(h) }
