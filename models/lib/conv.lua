-- conv(x, filters, k, name [, {stride=, padding=, bias=}]): a convolution
-- layer over images x [N, C, H, W] with `filters` square k x k filters
-- NAME_w [filters, C, k, k] (He initialization) and a bias NAME_b, left
-- out with bias = false (before a batch norm, which would cancel it).
return function(x, filters, k, name, opts)
  local c = x.shape[2]
  local w = param(name .. "_w", {filters, c, k, k}, randn(math.sqrt(2 / (c * k * k))))
  if opts and opts.bias == false then
    return conv2d(x, w, { stride = opts.stride, padding = opts.padding })
  end
  local b = param(name .. "_b", {filters}, zeros())
  return conv2d(x, w, b, opts)
end
