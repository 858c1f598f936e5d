-- The benchmark's small CNN: models/digits_cnn.lua without its random
-- shift of the training images (a draw from gradc's own generator, which
-- NumPy and PyTorch could not repeat, so their losses could not be
-- compared): 8x8 images, two stages of 3x3 convolution (32 and 64
-- filters, padding 1), ReLU and 2x2 max pooling, a dense layer to ten
-- classes, label smoothing 0.1 and AdamW, batch 32.
local conv = import("conv")
local dense = import("dense")

local N = config.batch or 32
local F1, F2 = config.f1 or 32, config.f2 or 64
local SMOOTH = config.smoothing or 0.1

local x      = input("x", {N, 64})
local labels = input("labels", {N}, "int32")

local img = (x / 16):reshape({N, 1, 8, 8})
local h = max_pool2d(relu(conv(img, F1, 3, "c1", { padding = 1 })), 2)   -- [N, F1, 4, 4]
h = max_pool2d(relu(conv(h, F2, 3, "c2", { padding = 1 })), 2)           -- [N, F2, 2, 2]
local logits = dense(flatten(h), 10, "fc")

local loss = (1 - SMOOTH) * mean(cross_entropy(logits, labels))
           + SMOOTH * mean(-log_softmax(logits))

return model {
  loss = loss,
  outputs = { logits = logits },
  optimizer = adamw { lr = 3e-3, weight_decay = 0.2 },
}
