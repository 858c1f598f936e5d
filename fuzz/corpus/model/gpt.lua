-- A mini GPT on Shakespeare (data/tinyshakespeare.txt): byte tokens and
-- learned positions, two pre-norm transformer blocks of width 128 with 4
-- causal attention heads, over a context of 64. Train it with
-- --data x=FILE.txt --data y=FILE.txt:next.
local transformer_block = import("transformer_block")
local dense = import("dense")

local N, T = config.batch or 16, config.context or 64
local V, W, heads, layers = 128, config.width or 128, 4, config.layers or 2

local x = input("x", {N, T}, "int32")
local y = input("y", {N, T}, "int32")
local tokens = param("tokens", {V, W}, randn(0.02))
local positions = param("positions", {T, W}, randn(0.02))

local h = embedding(tokens, x) + positions      -- [N, T, W]
for i = 1, layers do
  h = transformer_block(W, heads, "block" .. i)(h)
end
local g = param("ln_g", {W}, ones())
local b = param("ln_b", {W}, zeros())
local logits = dense(layer_norm(h, g, b), V, "head")   -- [N, T, V]

return model {
  loss = mean(cross_entropy(logits, y)),
  outputs = { logits = logits },
  optimizer = adamw { lr = 1e-3, weight_decay = 0.01, clip = 1 },
}
