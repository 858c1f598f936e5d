-- 100000 params made in a loop: each name was checked against every node
-- before it, the params array grew by copying (quadratic under ASan), the
-- arena scanned every param for every node, and the C emitter recursed once
-- per op of the chain (a stack overflow in the libFuzzer build).
local x = input("x", {4, 8})
local s = x
for i = 1, 100000 do s = s + param("p" .. i, {4, 1}, randn()) end
return model { loss = sum(s * s) }
