-- A character-level vanilla RNN on Shakespeare (data/tinyshakespeare.txt),
-- unrolled over T = 32 steps: bytes in, the next byte's distribution out.
-- Train it with --data x=FILE.txt --data y=FILE.txt:next.
local rnn_cell = import("rnn_cell")
local dense = import("dense")

local N, T = config.batch or 32, config.steps or 32
local V, H = 128, config.hidden or 256

local x = input("x", {N, T}, "int32")
local y = input("y", {N, T}, "int32")
local embed = param("embed", {V, H}, randn(0.1))

local e = embedding(embed, x)                   -- [N, T, H]
local step = rnn_cell(H, H, "rnn")
local h, hs = nil, {}
for t = 1, T do
  h = step(e:slice(2, t):reshape({N, H}), h)
  hs[t] = h:reshape({N, 1, H})
end
local logits = dense(concat(hs, 2), V, "out")   -- [N, T, V]

return model {
  loss = mean(cross_entropy(logits, y)),
  outputs = { logits = logits },
  optimizer = adam { lr = 2e-3, clip = 5 },
}
