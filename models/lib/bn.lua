-- bn(x, name [, {momentum=, eps=}]): batch norm over the channels (axis 2)
-- of x [N, C, ...], with a scale NAME_g (starting at 1) and a shift NAME_b
-- (at 0), and running averages NAME_mean and NAME_var that evaluation uses.
return function(x, name, opts)
  local c = x.shape[2]
  local g = param(name .. "_g", {c}, ones())
  local b = param(name .. "_b", {c}, zeros())
  return batch_norm(x, g, b, name, opts)
end
