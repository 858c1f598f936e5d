-- A gradient penalty through a convolution, for the models suite's
-- second-order test against PyTorch (tests/second_order_torch.py): the
-- loss holds the squared gradient of a small CNN's cross-entropy with
-- respect to its input images, so training differentiates conv2d, tanh,
-- max_pool2d, relu and the cross-entropy twice.
local x      = input("x", {2, 1, 6, 6})
local labels = input("labels", {2}, "int32")
local k      = param("k", {3, 1, 3, 3}, randn(0.5))
local kb     = param("kb", {3}, randn(0.1))
local w      = param("w", {27, 4}, randn(0.3))
local b      = param("b", {4}, randn(0.1))

local h = relu(max_pool2d(tanh(conv2d(x, k, kb, {padding = 1})), 2))
local logits = flatten(h):matmul(w) + b
local xent = mean(cross_entropy(logits, labels))
local loss = xent + 0.5 * sum(grad(xent, x) ^ 2)
return model { loss = loss, outputs = { logits = logits }, optimizer = sgd { lr = 0.1 } }
