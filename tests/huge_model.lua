-- More values than a 32-bit count reaches (2^38 in all, one tensor of
-- 2^36), for a test that builds it and sees it refuse to start on a
-- machine without the memory.
local x = input("x", {1, 1048576})
local ids = input("ids", {1, 4}, "int32")
local w = param("w", {1048576, 65536}, zeros())
local table = param("table", {1048576, 4096}, randn(0.02))
return model {
  loss = sum(x:matmul(w)) + sum(w * w) + sum(softmax(embedding(table, ids))),
  optimizer = adam { lr = 1e-3 },
}
