local x = input("x", {4, 8})
local w = param("w", {8, 3}, randn())
local h = x:matmul(w)
for i = 1, 300 do h = h * 1.0001 + x:sum() * 0.0001 end
return model { loss = sum(h) }
