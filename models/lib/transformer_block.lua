-- transformer_block(width, heads, name): a pre-norm transformer block,
-- returned as a function of x [N, T, width]:
--   x + attention(layer_norm(x)), then + mlp(layer_norm(...)) with GELU,
-- the MLP four times as wide as the block.
local attention = import("attention")
local dense = import("dense")

return function(width, heads, name)
  local attend = attention(width, heads, name .. "_attn")
  local g1 = param(name .. "_ln1_g", {width}, ones())
  local b1 = param(name .. "_ln1_b", {width}, zeros())
  local g2 = param(name .. "_ln2_g", {width}, ones())
  local b2 = param(name .. "_ln2_b", {width}, zeros())
  return function(x)
    x = x + attend(layer_norm(x, g1, b1))
    local h = gelu(dense(layer_norm(x, g2, b2), 4 * width, name .. "_fc"))
    return x + dense(h, width, name .. "_proj")
  end
end
