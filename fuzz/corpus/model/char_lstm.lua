-- A character-level LSTM on Shakespeare (data/tinyshakespeare.txt),
-- unrolled over T = 32 steps. Train it with --data x=FILE.txt
-- --data y=FILE.txt:next.
local lstm_cell = import("lstm_cell")
local dense = import("dense")

local N, T = config.batch or 32, config.steps or 32
local V, H = 128, config.hidden or 256

local x = input("x", {N, T}, "int32")
local y = input("y", {N, T}, "int32")
local embed = param("embed", {V, H}, randn(0.1))

local e = embedding(embed, x)                   -- [N, T, H]
local step = lstm_cell(H, H, "lstm")
local h, c, hs = nil, nil, {}
for t = 1, T do
  h, c = step(e:slice(2, t):reshape({N, H}), h, c)
  hs[t] = h:reshape({N, 1, H})
end
local logits = dense(concat(hs, 2), V, "out")   -- [N, T, V]

return model {
  loss = mean(cross_entropy(logits, y)),
  outputs = { logits = logits },
  optimizer = adam { lr = 2e-3, clip = 5 },
}
