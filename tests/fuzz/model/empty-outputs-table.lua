local x = input("x", {4, 8})
local w = param("w", {8, 3}, randn())
return model { loss = sum(x:matmul(w)), outputs = { } }
