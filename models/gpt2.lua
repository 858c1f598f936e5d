-- GPT-2 as llm.c's train_gpt2.c trains it (github.com/karpathy/llm.c):
-- token embeddings wte and learned positions wpe, `layers` pre-norm blocks
-- of causal self-attention and a GELU MLP, a final layer norm, and an
-- output head tied to wte. The default is GPT-2 small (124M parameters);
-- the parameters carry llm.c's names, one .npy each (h0_qkv_w.npy, ...),
-- matrices stored [out, in] as llm.c and PyTorch's nn.Linear store them.
-- Train it on GPT-2 token ids: x.npy and y.npy int32 [rows, context], each
-- row of y the tokens of the same row of x one position later, as llm.c's
-- DataLoader gives inputs and targets (train_gpt2.c runs batch 4, context
-- 64, 40 steps):
--   gradc build models/gpt2.lua -D context=64 -o out
--   out/gpt2_train --data x=x.npy --data y=y.npy --steps 40
-- make test, generated/gpt2/ and gradient checks use this small size
-- (gradc --test-config):
-- test config: -D layers=2 -D width=32 -D heads=4 -D context=8 -D max_context=16 -D vocab=200 -D batch=2
local N = config.batch or 4
local T, maxT = config.context or 1024, config.max_context or 1024
local L, C, NH = config.layers or 12, config.width or 768, config.heads or 12
local V = config.vocab or 50257
-- llm.c pads the vocabulary to a multiple of 128 (50304) for speed; the
-- padded rows of wte are trained only where ids name them, never by the loss.
local Vp = (V + 127) // 128 * 128
assert(C % NH == 0, "gpt2: width must be a multiple of heads")
assert(T <= maxT, "gpt2: context must be at most max_context")
local hs = C // NH

local x = input("x", {N, T}, "int32")
local y = input("y", {N, T}, "int32")

local wte = param("wte", {Vp, C}, randn(0.02))
local wpe = param("wpe", {maxT, C}, randn(0.02))

-- nn.Linear: x W^T + b, W [out, in].
local function linear(x, w, b)
  return x:matmul(w:t()) + b
end

-- [N, T, C] -> [N, NH, T, hs]: head h holds features h*hs .. (h+1)*hs - 1.
local function heads(t)
  return t:reshape({N, T, NH, hs}):permute({1, 3, 2, 4})
end

-- Block `name`: x + attention(ln1(x)), then + mlp(ln2(...)). The residual
-- projections start smaller, by 1/sqrt(2 layers), as GPT-2's do.
local function block(x, name)
  local function p(suffix, shape, init)
    return param(name .. "_" .. suffix, shape, init)
  end
  local ln1_w, ln1_b = p("ln1_w", {C}, ones()), p("ln1_b", {C}, zeros())
  local qkv_w, qkv_b = p("qkv_w", {3 * C, C}, randn(0.02)), p("qkv_b", {3 * C}, zeros())
  local attproj_w = p("attproj_w", {C, C}, randn(0.02 / math.sqrt(2 * L)))
  local attproj_b = p("attproj_b", {C}, zeros())
  local ln2_w, ln2_b = p("ln2_w", {C}, ones()), p("ln2_b", {C}, zeros())
  local fc_w, fc_b = p("fc_w", {4 * C, C}, randn(0.02)), p("fc_b", {4 * C}, zeros())
  local fcproj_w = p("fcproj_w", {C, 4 * C}, randn(0.02 / math.sqrt(2 * L)))
  local fcproj_b = p("fcproj_b", {C}, zeros())

  -- The activations carry llm.c's names, so the C reads beside its.
  local qkv = linear(layer_norm(x, ln1_w, ln1_b), qkv_w, qkv_b)   -- [N, T, 3C]
  local q = heads(qkv:slice(3, 1, C))
  local k = heads(qkv:slice(3, C + 1, 2 * C))
  local v = heads(qkv:slice(3, 2 * C + 1, 3 * C))
  local preatt = matmul(q, transpose(k, 3, 4)) * (1 / math.sqrt(hs))   -- [N, NH, T, T]
  local att = softmax(causal_mask(preatt))
  local atty = matmul(att, v):permute({1, 3, 2, 4}):reshape({N, T, C})
  local attproj = linear(atty, attproj_w, attproj_b)
  local residual2 = x + attproj
  local fch = linear(layer_norm(residual2, ln2_w, ln2_b), fc_w, fc_b)   -- [N, T, 4C]
  local fcproj = linear(gelu(fch), fcproj_w, fcproj_b)
  return residual2 + fcproj
end

local residual = embedding(wte, x) + wpe:slice(1, 1, T)   -- [N, T, C]
for l = 0, L - 1 do
  residual = block(residual, "h" .. l)
end
local lnf = layer_norm(residual, param("lnf_w", {C}, ones()), param("lnf_b", {C}, zeros()))
local logits = lnf:matmul(wte:t())                        -- [N, T, Vp]

-- The padded columns V .. Vp-1 take no part in the loss.
local loss = mean(cross_entropy(logits:slice(3, 1, V), y))

return model {
  loss = loss,
  outputs = { logits = logits },
  optimizer = adamw { lr = 1e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0 },
}
