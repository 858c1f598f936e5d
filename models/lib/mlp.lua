-- mlp(x, sizes, name [, activation]): dense layers of the given sizes,
-- with `activation` (relu by default) between them and none after the
-- last. Layer i's parameters are NAME<i>_w and NAME<i>_b.
local dense = import("dense")

return function(x, sizes, name, activation)
  activation = activation or relu
  for i, n in ipairs(sizes) do
    x = dense(x, n, name .. i)
    if i < #sizes then
      x = activation(x)
    end
  end
  return x
end
